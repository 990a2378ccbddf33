"""Tiny GZ-CLIP runs: train -> Hub folder -> zero-shot pipeline -> compose_gzllava / train_sft's tower loader."""

import json

import pytest
import torch
from transformers import BertConfig, BertModel, pipeline

from gzllava.compose import compose_gzllava, load_vision_tower
from gzllava.tiny import tiny_language_model, tiny_tokenizer
from gzllava.tower.arguments import parse_arguments
from gzllava.tower.model import load_tower, tiny_wordpiece_tokenizer
from gzllava.tower.run import prepare_training, run_training, save_trained_model, train



@pytest.fixture(scope="module")
def clip_folder(tiny_args, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-clip")
    return run_training(*parse_arguments(tiny_args(out)))


def test_folder_is_hub_ready(clip_folder):
    names = {p.name for p in clip_folder.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "morphology_head.safetensors", "morphology_head.json",
            "tokenizer.json"} <= names
    card = (clip_folder / "README.md").read_text()
    assert "pipeline_tag: zero-shot-image-classification" in card and "## Training curve" in card
    summary = json.loads((clip_folder / "training_summary.json").read_text())
    assert summary["train_galaxies"] > 0 and "train_loss" in summary["metrics"]


def test_zero_shot_pipeline_and_head(clip_folder, synthetic_build):
    import datasets

    image = datasets.load_dataset(str(synthetic_build), "description", split="train")[0]["image"]
    labels = ["a smooth galaxy", "a disk galaxy", "an edge-on disk"]
    result = pipeline("zero-shot-image-classification", model=str(clip_folder))(image, candidate_labels=labels)
    assert sorted(r["label"] for r in result) == sorted(labels)
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-4)
    model, processor, head, schema = load_tower(clip_folder)
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape[-1] == model.config.vision_config.image_size
    logits = head(model.vision_model(pixel_values=pixel_values).pooler_output)
    assert logits.shape == (1, schema.num_answers)


def test_tower_plugs_into_gzllava(clip_folder):
    tower = load_vision_tower(str(clip_folder))
    assert type(tower).__name__ == "CLIPVisionModel"
    tokenizer = tiny_tokenizer()
    model, processor = compose_gzllava(str(clip_folder), tiny_language_model(len(tokenizer) + 2, hidden_size=32,
                                                                             layers=1), tokenizer=tokenizer)
    saved = json.loads((clip_folder / "processor_config.json").read_text())["image_processor"]
    # the tower's own preprocessing (galaxy mean/std, resize + crop), not CLIP's defaults
    assert list(processor.image_processor.image_mean) == pytest.approx(saved["image_mean"])
    trained = load_tower(clip_folder)[0].vision_model.state_dict()
    for key, value in model.model.vision_tower.state_dict().items():
        assert torch.equal(value, trained[key])


def test_dual_encoder_with_locked_text_tower(synthetic_build, tiny_args, tmp_path):
    tokenizer = tiny_wordpiece_tokenizer()
    bert = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    run = prepare_training(*parse_arguments(tiny_args(tmp_path / "out", "--text_model_name_or_path",
                                                      str(bert), "--lock_text_tower", "true")))
    dual = run.model.dual_encoder
    before_text = {k: v.clone() for k, v in dual.text_model.state_dict().items()}
    before_vision = {k: v.clone() for k, v in dual.vision_model.state_dict().items()}
    train(run)
    assert all(torch.equal(v, dual.text_model.state_dict()[k]) for k, v in before_text.items())
    assert any(not torch.equal(v, dual.vision_model.state_dict()[k]) for k, v in before_vision.items())
    folder = save_trained_model(run)
    import gzllava.tower  # noqa: F401  (registers the dual encoder for the zero-shot pipeline)
    import datasets

    image = datasets.load_dataset(str(synthetic_build), "description", split="train")[0]["image"]
    result = pipeline("zero-shot-image-classification", model=str(folder))(image, candidate_labels=["smooth", "disk"])
    assert len(result) == 2
    assert type(load_vision_tower(str(folder))).__name__ == "CLIPVisionModel"


def test_continue_from_a_clip_folder_with_the_head_alone(clip_folder, tiny_args, tmp_path):
    run = prepare_training(*parse_arguments(tiny_args(tmp_path / "out", "--clip_model_name_or_path", str(clip_folder),
                                                      "--contrastive_weight", "0", "--head_questions", "gz2")))
    assert type(run.model.dual_encoder).__name__ == "CLIPModel" and run.model.head.proj.out_features == 8
    trained = load_tower(clip_folder)[0].vision_model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in run.model.dual_encoder.vision_model.state_dict().items())
    train(run)
    assert "input_ids" not in run.trainer.data_collator([{"index": 0}])  # no texts without the contrastive loss
    assert json.loads((save_trained_model(run) / "morphology_head.json").read_text())["questions"][0]["key"] == \
        "smooth-or-featured"


def _gz2_folder(folder, n: int = 80):
    """A GZ2-Kaggle-shaped folder (labels.csv + images/<GalaxyID>.jpg) of n random galaxies."""
    import numpy as np
    from PIL import Image

    from gzllava.tower.data import GZ2_KAGGLE_COLUMNS

    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    columns = [c for answers in GZ2_KAGGLE_COLUMNS.values() for c in answers.values()]
    lines = [",".join(["GalaxyID", *columns])]
    for galaxy in range(100000, 100000 + n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / "images" / f"{galaxy}.jpg")
        lines.append(",".join([str(galaxy), *(f"{v:.3f}" for v in rng.dirichlet(np.ones(len(columns))))]))
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_gz2_validation_side_is_measured_apart_from_test(clip_folder, tmp_path):
    """Towers are compared on the held-out tenth of train (`--gz2_side validation`), never on the test side."""
    from gzllava.splits import split_of
    from gzllava.tower.evaluate import TowerEvaluationArguments, evaluate, report

    gz2 = _gz2_folder(tmp_path / "gz2")
    ids = [str(i) for i in range(100000, 100080)]
    sides = {}
    for side in ("test", "validation"):
        result = evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2), gz2_side=side, validation_percent=30))
        assert f"({side} side of gzllava.splits)" in result["source"]
        sides[side] = result["galaxies"]
    row = result["head"]["disk-edge-on"]["all"]  # the report's ROC AUC and cross-entropy columns are the metrics'
    assert 0 <= row["auc"] <= 1 and row["cross_entropy"] > 0
    assert f"| {row['balanced_accuracy']:.3f} | {row['auc']:.3f} | {row['cross_entropy']:.3f} |" in report(result)
    assert "cross_entropy" not in result["zero_shot"]["disk-edge-on"]["all"]  # cosines are not vote shares
    assert sides["test"] == sum(split_of(i) == "test" for i in ids)
    assert sides["validation"] == sum(split_of(i, validation_percent=30) == "validation" for i in ids) > 0
    with pytest.raises(ValueError, match="gz2_side 'train'"):
        TowerEvaluationArguments(str(clip_folder), gz2=str(gz2), gz2_side="train")


def test_train_holdout_measures_the_galaxies_train_clip_held_out(clip_folder, synthetic_build, tiny_args, tmp_path):
    """`--split train_holdout`: a build's validation side (e.g. GZ1's weak labels, ~4x the GZ2 validation side's
    edge-on galaxies), the same galaxies as `train_clip.py --dataset_eval_split train_holdout`, twins included."""
    from gzllava.splits import split_of
    from gzllava.tower.data import split_holdout
    from gzllava.tower.evaluate import TowerEvaluationArguments, evaluate

    run = prepare_training(*parse_arguments(tiny_args(tmp_path / "run", "--dataset_eval_split", "train_holdout",
                                                      "--validation_percent", "40")))
    args = dict(dataset_name=str(synthetic_build), split="train_holdout", validation_percent=40)
    result = evaluate(TowerEvaluationArguments(str(clip_folder), **args))
    assert result["galaxies"] == len(run.eval_table) > 0
    assert "the validation side (40% of gzllava.splits) of split train" in result["source"]
    assert 0 < result["head"]["smooth-or-featured"]["all"]["n"] <= len(run.eval_table)

    kept = run.train_table.ids[0]
    gz2 = next(str(k) for k in range(100000, 101000) if split_of(k, validation_percent=40) == "validation")
    twins = tmp_path / "same_galaxy_in_gz2_kaggle_5000.csv"
    twins.write_text(f"gz1_objid,kaggle_galaxyid\n{kept},{gz2}\n")  # a training galaxy whose twin is validation
    with_twin = evaluate(TowerEvaluationArguments(str(clip_folder), validation_twins=str(twins), **args))
    assert with_twin["galaxies"] == len(run.eval_table) + 1 and "twins on their GZ2 side" in with_twin["source"]

    with pytest.raises(ValueError, match=f"--split train_holdout: validation_percent 40 holds out none of the "
                                         f"{len(run.train_table)} training galaxies"):
        split_holdout(run.train_table, 40, source="--split train_holdout")  # its validation side is already gone
    with pytest.raises(ValueError, match="--validation_percent 0: expected 1..99 with --split train_holdout"):
        TowerEvaluationArguments(str(clip_folder), dataset_name=str(synthetic_build), split="train_holdout",
                                 validation_percent=0)


def test_items_restrict_the_head_to_the_galaxy_questions_an_lm_evaluation_scored(clip_folder, tmp_path):
    """`--items predictions.jsonl`: the head measured on exactly the (galaxy, question) pairs GZ-LLaVA answered."""
    from gzllava.splits import split_of
    from gzllava.tower.evaluate import TowerEvaluationArguments, evaluate, report

    gz2 = _gz2_folder(tmp_path / "gz2")
    full = evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2)))
    test_ids = [str(i) for i in range(100000, 100080) if split_of(str(i)) == "test"]
    chosen = test_ids[:5]
    rows = [{"role": "model", "sample": g, "question": "smooth-or-featured", "target": "smooth"} for g in chosen]
    rows += [{"role": "model", "sample": chosen[0], "question": "disk-edge-on", "target": "no"},
             {"role": "baseline", "sample": chosen[1], "question": "disk-edge-on", "target": "no"},  # not the model's
             {"role": "model", "sample": "999999", "question": "disk-edge-on", "target": "no"}]  # not in this side
    items = tmp_path / "predictions.jsonl"
    items.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2), items=str(items)))
    head = result["head"]
    assert head["smooth-or-featured"]["all"]["n"] == 5 < full["head"]["smooth-or-featured"]["all"]["n"]
    assert head["disk-edge-on"]["all"]["n"] == 1 and "how-rounded" not in head
    assert "only the 6 (galaxy, question) items" in result["source"] and str(items) in report(result)

    elsewhere = tmp_path / "other.jsonl"
    elsewhere.write_text(json.dumps({"role": "model", "sample": "5", "question": "smooth-or-featured"}) + "\n")
    with pytest.raises(ValueError, match=r"--items .*other.jsonl: none of its 1 \(galaxy, question\) items"):
        evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2), items=str(elsewhere)))
    with pytest.raises(FileNotFoundError, match=r"--items .*missing.jsonl: no such file"):
        evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2), items=str(tmp_path / "missing.jsonl")))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"broken.jsonl: line 2 is not a prediction row"):
        evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2), items=str(broken)))


def test_majority_path_items_follow_the_votes_without_a_predictions_file(clip_folder, tmp_path):
    """`--items majority_path`: each galaxy's questions along its vote-majority path, the head's ones only."""
    from dataset_builder.decision_tree import majority_answer
    from gzllava.evaluation.morphology_metrics import majority_path
    from gzllava.splits import split_of
    from gzllava.tower.data import gz2_votes, read_gz2_labels
    from gzllava.tower.evaluate import TowerEvaluationArguments, evaluate

    gz2 = _gz2_folder(tmp_path / "gz2")
    full = evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2)))
    result = evaluate(TowerEvaluationArguments(str(clip_folder), gz2=str(gz2), items="majority_path"))
    expected = {}
    for row in read_gz2_labels(gz2):
        votes = gz2_votes(row)
        if split_of(row["GalaxyID"]) == "test":
            for q in majority_path(votes):
                if majority_answer(q, votes) is not None:
                    expected[q.key] = expected.get(q.key, 0) + 1
    head = result["head"]
    assert {key: head[key]["all"]["n"] for key in head} == {key: expected[key] for key in head}
    assert head["disk-edge-on"]["all"]["n"] < full["head"]["disk-edge-on"]["all"]["n"]  # smooth majorities dropped
    assert "items of majority_path" in result["source"]
