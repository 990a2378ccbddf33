"""evaluate_gzllava.py end to end on tiny random models: hand-made gz-talk-instruct splits, the real
DECaLS example images, a local judge, the model card. Random models score at chance: these tests
check the pipeline and its outputs, not the scores."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import evaluate_gzllava
from dataset_builder.decision_tree import QUESTIONS
from gzllava.evaluation.answers import candidate_texts
from fake_openai import FakeOpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_outputs(out: Path, plots: set[str]) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    report = (out / "report.md").read_text()
    assert report.startswith("# Evaluation of")
    for name in plots:
        path = out / "plots" / name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        assert f"plots/{name}" in report
    assert (out / "predictions.jsonl").stat().st_size > 0
    return metrics


def test_decision_tree_split_with_base_model_and_model_card(tmp_path, instruct_folder, gz_tiny_folder, stock_tiny_folder):
    out = tmp_path / "out"
    code = evaluate_gzllava.main([
        "--model_name_or_path", str(gz_tiny_folder), "--baseline-model", str(stock_tiny_folder), "--dataset_name", str(instruct_folder),
        "--dataset_config", "decision_tree", "--split", "test", "--output_dir", str(out), "--batch-size", "4",
        "--answer-max-new-tokens", "6", "--update-model-card",
    ])
    assert code == 0
    metrics = _check_outputs(out, {"accuracy_by_question.png", "confusion_generation.png",
                                   "confusion_likelihood.png", "reliability.png"})
    es = metrics["eval_set"]
    assert es["samples"] == 21 and es["skips"]["bad_input"] == 3 and es["morphology_items"] == 21
    for role in ("model", "base"):
        morph = metrics["models"][role]["morphology"]
        assert set(morph["likelihood"]["per_question"]) == {"smooth-or-featured", "disk-edge-on", "bar",
                                                           "has-spiral-arms", "how-rounded", "merging"}
        overall = morph["likelihood"]["overall"]
        assert overall["n"] == 21 and 0 <= overall["accuracy"] <= 1 and 0 <= overall["brier"] <= 2
        assert morph["likelihood"]["per_question"]["bar"]["calibration_target"] == "votes"
    majority = metrics["baselines"]["majority"]["per_question"]
    assert majority["smooth-or-featured"]["source"] == "train"
    assert metrics["baselines"]["random"]["per_question"]["bar"]["accuracy"] == 0.5
    assert metrics["models"]["model"]["not_run"]["descriptions"] == "no reference descriptions in this set"
    report = (out / "report.md").read_text()
    assert "| majority |" in report and "| base (likelihood) |" in report and "Δ vs majority" in report
    # the model-index went into the model folder's card
    card = (gz_tiny_folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    results = meta["model-index"][0]["results"]
    assert results[0]["dataset"]["config"] == "decision_tree" and results[0]["dataset"]["split"] == "test"
    types = {m["type"] for r in results for m in r["metrics"]}
    assert {"accuracy", "f1", "brier"} <= types


@pytest.fixture
def scoring_calls(monkeypatch):
    """[(reduction in effect, candidates)] for every `LlavaEvaluator.score_candidates` call."""
    from gzllava.evaluation.inference import LlavaEvaluator

    calls, score = [], LlavaEvaluator.score_candidates
    signature = inspect.signature(score)

    def recording(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        calls.append((bound.arguments["reduction"], list(bound.arguments["candidates"])))
        return score(self, *args, **kwargs)

    monkeypatch.setattr(LlavaEvaluator, "score_candidates", recording)
    return calls


def test_questions_limit_the_scored_morphology_questions(tmp_path, instruct_folder, gz_tiny_folder, capsys,
                                                         scoring_calls):
    out = tmp_path / "out"
    flags = ["--model_name_or_path", str(gz_tiny_folder), "--dataset_name", str(instruct_folder), "--split", "test",
             "--tasks", "morphology", "--batch-size", "4", "--answer-max-new-tokens", "4"]
    # the description config's galaxies reach several questions along their vote paths: only the asked ones count
    code = evaluate_gzllava.main([*flags, "--dataset_config", "description", "--questions", "bar,has-spiral-arms",
                                  "--output_dir", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    per_question = metrics["models"]["model"]["morphology"]["likelihood"]["per_question"]
    assert set(per_question) == {"bar", "has-spiral-arms"}
    assert {r for r, _ in scoring_calls} == {"sum"}  # answer labels: log P(label), not its per-token mean
    assert metrics["settings"]["questions"] == ["bar", "has-spiral-arms"]
    assert "(questions: bar, has-spiral-arms)" in (out / "report.md").read_text()
    code = evaluate_gzllava.main([*flags, "--dataset_config", "description", "--questions", "spiral-winding",
                                  "--output_dir", str(tmp_path / "none")])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and "--questions spiral-winding: no sample of" in errors[0], errors


def test_description_split_with_retrieval_hallucination_and_local_judge(tmp_path, instruct_folder, gz_tiny_folder,
                                                                       scoring_calls):
    out = tmp_path / "out"
    with FakeOpenAI([(200, "6")] * 6) as judge:
        code = evaluate_gzllava.main([
            "--model_name_or_path", str(gz_tiny_folder), "--dataset_name", str(instruct_folder), "--dataset_config", "description",
            "--output_dir", str(out), "--metrics", "bleu,rouge_l,cider", "--description-max-new-tokens", "12",
            "--judge-url", judge.url, "--judge-model", "local-judge",
        ])
    assert code == 0 and len(judge.requests) == 6
    metrics = _check_outputs(out, {"accuracy_by_question.png", "retrieval.png", "reliability.png"})
    model = metrics["models"]["model"]
    assert model["descriptions"]["n"] == 6 and 0 <= model["descriptions"]["bleu4"] <= 1
    assert model["judge"]["mean_score"] == 6.0 and model["judge"]["model"] == "local-judge"
    retrieval = model["retrieval"]
    assert retrieval["n"] == 6 and metrics["models"]["model"]["retrieval"]["random"]["top_10%"] == pytest.approx(1 / 6)
    # retrieval compares descriptions of different lengths per token; answer labels are summed
    labels = {label for question in QUESTIONS.values() for label in candidate_texts(question)}
    assert {r for r, c in scoring_calls if len(c) == 6 and not set(c) <= labels} == {"mean"}
    assert {r for r, c in scoring_calls if set(c) <= labels} == {"sum"}
    assert model["hallucination"]["n"] == 6
    assert metrics["baselines"]["reference_hallucination"]["contradiction_rate"] == 0.0
    # the references describe other galaxies in the shuffled baseline: below identical, above nothing
    assert 0 < metrics["baselines"]["shuffled_references"]["bleu4"] < 1
    # description rows have votes: morphology items come from the majority path
    assert model["morphology"]["likelihood"]["overall"]["n"] > 0
    # ... and the majority baseline counts the same items on the train split
    assert metrics["baselines"]["majority"]["per_question"]["bar"]["source"] == "train"
    report = (out / "report.md").read_text()
    for section in ("## Descriptions", "## Retrieval", "## Hallucination and refusal", "LLM judge (local-judge)"):
        assert section in report


def test_an_unusable_set_exits_with_a_clear_error(tmp_path, gz_tiny_folder, caplog, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not an image")
    (folder / "labels.csv").write_text("image,question_index,answer_index,answer_kind\na.jpg,0,0,answer\n")
    code = evaluate_gzllava.main(["--model_name_or_path", str(gz_tiny_folder), "--image-folder", str(folder),
                                  "--output_dir", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no usable samples" in error[0] and "unreadable image" in error[0]
    assert "unreadable image" in caplog.text  # the skip summary is logged too
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_dataset_needs_a_config():
    with pytest.raises(SystemExit):
        evaluate_gzllava.parse_args(["--model_name_or_path", "m", "--dataset_name", "d"])


@pytest.mark.integration
def test_real_decals_examples_through_the_command_line(tmp_path, decals_examples, gz_tiny_folder):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "evaluate_gzllava.py"), "--model_name_or_path", str(gz_tiny_folder), "--image-folder",
         str(decals_examples), "--output_dir", str(out), "--batch-size", "8", "--answer-max-new-tokens", "8",
         "--description-max-new-tokens", "16", "--tasks", "morphology,hallucination"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = _check_outputs(out, {"accuracy_by_question.png", "confusion_generation.png",
                                   "confusion_likelihood.png", "reliability.png"})
    es = metrics["eval_set"]
    assert es["samples"] == 72 and es["skips"]["total"] == 0 and es["morphology_items"] == 72
    per_question = metrics["models"]["model"]["morphology"]["likelihood"]["per_question"]
    assert len(per_question) == 11 and per_question["spiral-arm-count"]["n"] == 10
    assert per_question["bar"]["calibration_target"] == "expert"
    assert metrics["models"]["model"]["hallucination"]["n"] == 72
    assert metrics["models"]["model"]["hallucination"]["rules"]["bar, none seen"]["checkable"] == 2
