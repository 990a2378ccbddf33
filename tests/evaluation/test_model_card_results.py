"""An evaluation's results in the model card's model-index, on a local and a Hub card (`gzllava.model_card`)."""

from __future__ import annotations

import math

import yaml
from huggingface_hub import HfApi, ModelCard

from conftest import report_metrics
from gzllava.evaluation.report import jsonable
from gzllava.model_card import eval_results, update_model_card


def test_eval_results_skip_missing_values():
    results = eval_results(jsonable(report_metrics()))
    names = {r.metric_name for r in results}
    assert "decision-tree accuracy (likelihood)" in names and "BLEU-4" in names
    assert "METEOR" not in names  # NaN is not a result
    assert all(r.dataset_type == "org/gz-talk-instruct" and r.dataset_split == "test" for r in results)
    assert all(math.isfinite(r.metric_value) for r in results)


def test_local_card_keeps_other_splits_and_replaces_the_same_one(tmp_path):
    update_model_card(str(tmp_path), report_metrics("validation", 0.6))
    update_model_card(str(tmp_path), report_metrics("test", 0.7))
    update_model_card(str(tmp_path), report_metrics("test", 0.8))
    meta = yaml.safe_load((tmp_path / "README.md").read_text().split("---")[1])
    results = meta["model-index"][0]["results"]
    accuracies = {(r["dataset"]["split"], m["name"]): m["value"] for r in results for m in r["metrics"]
                  if m["type"] == "accuracy"}
    assert accuracies[("validation", "decision-tree accuracy (generation)")] == 0.6
    assert accuracies[("test", "decision-tree accuracy (generation)")] == 0.8
    assert len([k for k in accuracies if k[0] == "test"]) == 2


def test_hub_card_is_updated_through_huggingface_hub(hub_server, hub_repo_id):
    api = HfApi()
    api.create_repo(hub_repo_id)
    api.upload_file(path_or_fileobj=b"---\nlicense: apache-2.0\n---\n# A model\n", path_in_repo="README.md",
                    repo_id=hub_repo_id)
    where = update_model_card(hub_repo_id, report_metrics())
    assert where == f"hub:{hub_repo_id}"
    card = ModelCard.load(hub_repo_id)
    assert card.data.license == "apache-2.0"
    assert any(r.metric_name == "decision-tree accuracy (likelihood)" and r.metric_value == 0.75
               for r in card.data.eval_results)


def test_model_index_names_a_local_dataset_folder_without_its_absolute_path(tmp_path):
    dataset = tmp_path / "home" / "someone" / "gz-talk-instruct"
    dataset.mkdir(parents=True)
    metrics = report_metrics()
    metrics["settings"]["dataset_name"] = str(dataset)
    update_model_card(str(tmp_path), metrics)
    card = (tmp_path / "README.md").read_text()
    assert "<local>/gz-talk-instruct" in card and str(tmp_path / "home") not in card
    # a catalogue's results carry their split too
    catalogue = report_metrics()
    catalogue["settings"] = {"dataset_name": None, "catalogue": str(dataset / "labels.csv"), "dataset_config": None,
                             "split": "test", "batch_size": 8}
    catalogue["eval_set"]["name"] = "gz2_kaggle_5000/labels.csv:test"
    results = eval_results(jsonable(catalogue))
    assert {(r.dataset_type, r.dataset_split) for r in results} == {("gz2_kaggle_5000/labels.csv:test", "test")}
