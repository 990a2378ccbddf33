"""The shipped `evaluate` metric modules, loaded by path (offline), on inputs with known scores."""

from __future__ import annotations

import shutil

import evaluate
import pytest

from gzllava.evaluation.descriptions import description_metrics, load_metric
from gzllava.metrics import METRIC_NAMES, metric_path

SPIRAL = "a barred spiral galaxy with two loose arms"
SMOOTH = "a smooth round elliptical galaxy with a bright core"
EDGE = "an edge on disk galaxy with a dark dust lane"


def test_every_module_loads_by_path_without_the_hub():
    for name in METRIC_NAMES:
        module = evaluate.load(metric_path(name))
        assert isinstance(module, evaluate.Metric)
    with pytest.raises(ValueError, match="unknown metric 'spice'"):
        metric_path("spice")


def test_bleu_identical_is_one_disjoint_is_zero_partial_between():
    bleu = load_metric("bleu")
    assert bleu.compute(predictions=[SPIRAL], references=[[SPIRAL]])["bleu"] == pytest.approx(1.0)
    assert bleu.compute(predictions=["zebra quantum teapot"], references=[[SPIRAL]])["bleu"] == 0.0
    partial = bleu.compute(predictions=["a barred spiral galaxy with two tight arms"], references=[[SPIRAL]])["bleu"]
    assert 0.0 < partial < 1.0


def test_bleu_uses_the_best_of_several_references_and_ignores_case():
    bleu = load_metric("bleu")
    result = bleu.compute(predictions=[SPIRAL.upper(), SMOOTH], references=[[SMOOTH, SPIRAL], [SMOOTH]])
    assert result["bleu"] == pytest.approx(1.0)
    assert result["brevity_penalty"] == pytest.approx(1.0)


def test_rouge_l_is_the_lcs_f_measure():
    rouge = load_metric("rouge_l")
    assert rouge.compute(predictions=[SPIRAL], references=[[SPIRAL]])["rougeL"] == pytest.approx(1.0)
    # LCS of "the galaxy has arms" / "the galaxy shows arms" is 3 of 4 tokens each way
    result = rouge.compute(predictions=["the galaxy has arms"], references=[["the galaxy shows arms"]])
    assert result["rougeL"] == pytest.approx(0.75)
    assert rouge.compute(predictions=["zebra teapot"], references=[[SPIRAL]])["rougeL"] == 0.0


def test_cider_orders_identical_above_partial_above_unrelated():
    cider = load_metric("cider")
    refs = [[SPIRAL], [SMOOTH], [EDGE]]
    identical = cider.compute(predictions=[SPIRAL, SMOOTH, EDGE], references=refs)["cider_per_prediction"]
    partial = cider.compute(predictions=["a barred spiral with arms", "a round galaxy", "a disk galaxy"],
                            references=refs)["cider_per_prediction"]
    unrelated = cider.compute(predictions=["zebra", "teapot", "quantum"], references=refs)["cider_per_prediction"]
    for i in range(3):
        assert identical[i] > partial[i] > unrelated[i] == 0.0
    # TF-IDF needs a corpus: with one image every n-gram has zero IDF, hence zero CIDEr
    assert cider.compute(predictions=[SPIRAL], references=[[SPIRAL]])["cider"] == 0.0


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR's jar needs Java")
def test_meteor_identical_scores_one_unrelated_zero():
    meteor = load_metric("meteor")
    result = meteor.compute(predictions=[SPIRAL, "zebra teapot"], references=[[SPIRAL], [SMOOTH]])
    assert result["meteor_per_prediction"][0] == pytest.approx(1.0)
    assert result["meteor_per_prediction"][1] == 0.0
    assert 0.0 < result["meteor"] < 1.0


def test_description_metrics_reports_the_headline_names_and_checks_lengths():
    result = description_metrics([SPIRAL, SMOOTH], [SPIRAL, [SMOOTH]], metrics=("bleu", "rouge_l", "cider"))
    assert result["n"] == 2
    assert result["bleu4"] == pytest.approx(1.0) and result["rouge_l"] == pytest.approx(1.0)
    assert "meteor" not in result and result["cider"] > 0
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        description_metrics([SPIRAL, SMOOTH], [SPIRAL])
    with pytest.raises(ValueError, match="unknown description metric"):
        description_metrics([SPIRAL], [SPIRAL], metrics=("spice",))
