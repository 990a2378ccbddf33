"""The report's pieces: JSON without NaN, the markdown, and the model-index on a local and a Hub card."""

from __future__ import annotations

import json
import math

import numpy as np
import yaml
from huggingface_hub import HfApi, ModelCard

from gzllava.evaluation.report import eval_results, jsonable, render_markdown, update_model_card


def _metrics(split="test", accuracy=0.75):
    per_q = {"bar": {"n": 4, "accuracy": accuracy, "macro_f1": 0.7, "brier": 0.2, "unparsed": 0,
                     "confusion": {"answers": ["yes", "no", "(unparsed)"], "matrix": [[2, 0, 0], [1, 1, 0]]}}}
    overall = {"n": 4, "accuracy": accuracy, "mean_macro_f1": 0.7, "brier": 0.2}
    morph = {"generation": {"per_question": per_q, "overall": overall, "parse_rate": 1.0},
             "likelihood": {"per_question": per_q, "overall": overall,
                            "reliability": {"bins": [], "ece": 0.1}},
             "timing": {"generation_items_per_s": 10.0, "likelihood_items_per_s": 20.0}}
    return {
        "model": "m", "baseline_model": None,
        "eval_set": {"name": "gz:decision_tree/" + split, "kind": "gz-talk-instruct", "samples": 4, "rows_read": 5,
                     "morphology_items": 4, "skips": {"total": 1, "bad_input": 1, "by_reason": {"bad label": 1}}},
        "settings": {"dataset": "org/gz-talk-instruct", "config": "decision_tree", "split": split, "batch_size": 8},
        "models": {"model": {"morphology": morph, "not_run": {"retrieval": "no references"},
                             "descriptions": {"n": 4, "bleu4": 0.2, "rouge_l": 0.4, "meteor": float("nan"),
                                              "cider": 0.5}}},
        "baselines": {"majority": {"per_question": {"bar": {**per_q["bar"], "accuracy": 0.5, "source": "train"}},
                                   "overall": {**overall, "accuracy": 0.5}}},
    }


def test_jsonable_turns_nan_and_numpy_into_json():
    value = jsonable({"a": float("nan"), "b": np.float32(0.5), "c": np.arange(2), "d": (1, float("inf"))})
    assert value == {"a": None, "b": 0.5, "c": [0, 1], "d": [1, None]}
    json.dumps(value, allow_nan=False)


def test_markdown_reads_as_deltas_against_baselines():
    text = render_markdown(jsonable(_metrics()), {})
    assert "| model (likelihood) | 4 | 0.750 | +0.250 |" in text
    assert "retrieval: not run (no references)" in text
    assert "1 skipped ({'bad label': 1})" in text


def test_eval_results_skip_missing_values():
    results = eval_results(jsonable(_metrics()))
    names = {r.metric_name for r in results}
    assert "decision-tree accuracy (likelihood)" in names and "BLEU-4" in names
    assert "METEOR" not in names  # NaN is not a result
    assert all(r.dataset_type == "org/gz-talk-instruct" and r.dataset_split == "test" for r in results)
    assert all(math.isfinite(r.metric_value) for r in results)


def test_local_card_keeps_other_splits_and_replaces_the_same_one(tmp_path):
    update_model_card(str(tmp_path), _metrics("validation", 0.6))
    update_model_card(str(tmp_path), _metrics("test", 0.7))
    update_model_card(str(tmp_path), _metrics("test", 0.8))
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
    where = update_model_card(hub_repo_id, _metrics())
    assert where == f"hub:{hub_repo_id}"
    card = ModelCard.load(hub_repo_id)
    assert card.data.license == "apache-2.0"
    assert any(r.metric_name == "decision-tree accuracy (likelihood)" and r.metric_value == 0.75
               for r in card.data.eval_results)


def test_model_index_names_a_local_dataset_folder_without_its_absolute_path(tmp_path):
    dataset = tmp_path / "home" / "someone" / "gz-talk-instruct"
    dataset.mkdir(parents=True)
    metrics = _metrics()
    metrics["settings"]["dataset"] = str(dataset)
    update_model_card(str(tmp_path), metrics)
    card = (tmp_path / "README.md").read_text()
    assert "<local>/gz-talk-instruct" in card and str(tmp_path / "home") not in card
    # a catalogue's results carry their split too
    catalogue = _metrics()
    catalogue["settings"] = {"dataset": None, "catalogue": str(dataset / "labels.csv"), "config": None, "split": "test",
                             "batch_size": 8}
    catalogue["eval_set"]["name"] = "gz2_kaggle_5000/labels.csv:test"
    results = eval_results(jsonable(catalogue))
    assert {(r.dataset_type, r.dataset_split) for r in results} == {("gz2_kaggle_5000/labels.csv:test", "test")}
