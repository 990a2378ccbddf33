"""Morphology metric maths on hand-made inputs with known answers, and the baselines."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gzllava.evaluation.morphology_metrics import (
    CONFIDENT_SHARE, MorphologyItem, accuracy, balanced_accuracy, brier_score, confusion_matrix, is_confident,
    macro_f1, majority_baseline, majority_path, majority_share, morphology_items, question_metrics, random_baseline, reliability,
    ranking_auc, roc_auc, summarise,
)
from gzllava.evaluation.samples import EvalSample
from PIL import Image


def _item(answer, fractions=None, question="bar"):
    return MorphologyItem(0, question, answer, fractions, "votes" if fractions else "expert", None)


def test_accuracy_and_macro_f1_match_hand_computation():
    targets = ["yes", "yes", "yes", "no"]
    predictions = ["yes", "no", None, "no"]
    assert accuracy(targets, predictions) == 0.5
    # yes: tp 1, fp 0, fn 2 -> F1 2/4 = 0.5; no: tp 1, fp 1, fn 0 -> 2/3
    assert macro_f1(targets, predictions) == pytest.approx((0.5 + 2 / 3) / 2)
    assert macro_f1(["a", "b"], ["a", "b"]) == 1.0


def test_confusion_matrix_has_an_unparsed_column():
    matrix = confusion_matrix(["yes", "yes", "no", "no"], ["yes", None, "yes", "no"], ["yes", "no"])
    np.testing.assert_array_equal(matrix, [[1, 0, 1], [1, 1, 0]])


def test_brier_score_limits_and_vote_fractions():
    onehot = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert brier_score(onehot, onehot) == 0.0
    assert brier_score(onehot[::-1], onehot) == 2.0
    # uniform guess against 70/30 votes: (0.5-0.7)^2 + (0.5-0.3)^2 = 0.08
    assert brier_score(np.array([[0.5, 0.5]]), np.array([[0.7, 0.3]])) == pytest.approx(0.08)


def test_reliability_bins_and_ece():
    probabilities = np.array([0.05, 0.15, 0.95, 0.85])
    observed = np.array([0.0, 0.2, 1.0, 0.5])
    table = reliability(probabilities, observed, bins=2)
    low, high = table["bins"]
    assert (low["count"], high["count"]) == (2, 2)
    assert low["mean_probability"] == pytest.approx(0.1) and low["mean_observed"] == pytest.approx(0.1)
    assert high["mean_probability"] == pytest.approx(0.9) and high["mean_observed"] == pytest.approx(0.75)
    assert table["ece"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.15)
    perfect = reliability(np.array([0.0, 1.0, 0.5]), np.array([0.0, 1.0, 0.5]))
    assert perfect["ece"] == pytest.approx(0.0)


def test_question_metrics_scores_probabilities_against_vote_fractions():
    items = [_item("yes", (0.8, 0.2)), _item("no", (0.1, 0.9))]
    probs = np.array([[0.8, 0.2], [0.1, 0.9]])
    m = question_metrics("bar", items, ["yes", "no"], probs)
    assert m["accuracy"] == 1.0 and m["brier"] == pytest.approx(0.0)
    assert m["calibration_target"] == "votes"
    assert m["confusion"]["answers"] == ["yes", "no", "(unparsed)"]
    expert = question_metrics("bar", [_item("yes")], ["yes"], np.array([[0.5, 0.5]]))
    assert expert["brier"] == pytest.approx(0.5) and expert["calibration_target"] == "expert"


def test_roc_auc_counts_ordered_pairs_and_half_ties():
    assert roc_auc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.3, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert roc_auc([0.5] * 4, [True, False, True, False]) == 0.5
    # positives 0.6, 0.4; negatives 0.4, 0.2: pairs (0.6>0.4) 1, (0.6>0.2) 1, (0.4=0.4) 0.5, (0.4>0.2) 1 -> 3.5 / 4
    assert roc_auc([0.6, 0.4, 0.4, 0.2], [True, True, False, False]) == pytest.approx(0.875)
    assert roc_auc([0.6, 0.4], [True, True]) is None  # no negative item


def test_ranking_auc_sees_an_order_that_a_biased_argmax_hides():
    targets = ["yes", "yes", "no", "no"]
    leaning_no = np.array([[0.45, 0.55], [0.42, 0.58], [0.40, 0.60], [0.35, 0.65]])  # always "no", ranked right
    items = [_item(t) for t in targets]
    m = question_metrics("bar", items, ["no"] * 4, leaning_no)
    assert m["balanced_accuracy"] == 0.5 and m["auc"] == 1.0
    # three answers, macro one-vs-rest over the two present (the third answer's column is ignored)
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.65, 0.3, 0.05]])
    # a: 0.7, 0.6 against 0.2, 0.65 -> 3 / 4; b: 0.7, 0.3 against 0.2, 0.3 -> 3.5 / 4 (a tie)
    assert ranking_auc(["a", "a", "b", "b"], probs, ["a", "b", "c"]) == pytest.approx((0.75 + 0.875) / 2)
    assert ranking_auc(["a", "a"], probs[:2], ["a", "b", "c"]) is None  # one answer present
    # the majority baseline gives every item the same probabilities: chance
    assert majority_baseline("bar", items, None)["auc"] == 0.5


def test_majority_baseline_prefers_training_counts():
    items = [_item("yes"), _item("yes"), _item("no")]
    from_eval = majority_baseline("bar", items, None)
    assert from_eval["answer"] == "yes" and from_eval["source"] == "eval"
    assert from_eval["accuracy"] == pytest.approx(2 / 3)
    from_train = majority_baseline("bar", items, Counter({("bar", "no"): 10, ("bar", "yes"): 1}))
    assert from_train["answer"] == "no" and from_train["source"] == "train"
    assert from_train["accuracy"] == pytest.approx(1 / 3)


def test_random_baseline_is_one_over_k_and_exact_uniform_brier():
    items = [_item("yes", (0.7, 0.3)), _item("no", (0.3, 0.7))]
    result = random_baseline("bar", items, draws=500)
    assert result["accuracy"] == 0.5
    assert result["brier"] == pytest.approx(0.08)
    assert 0.3 < result["macro_f1"] < 0.6
    five = random_baseline("spiral-arm-count", [_item("2", question="spiral-arm-count")])
    assert five["accuracy"] == pytest.approx(0.2)


def test_summarise_weights_accuracy_by_items():
    overall = summarise({"bar": {"n": 3, "accuracy": 1.0, "macro_f1": 1.0, "balanced_accuracy": 1.0,
                                 "confident": {"n": 2, "accuracy": 1.0, "balanced_accuracy": 1.0}},
                         "merging": {"n": 1, "accuracy": 0.0, "macro_f1": 0.0, "balanced_accuracy": 0.5,
                                     "confident": {"n": 0, "accuracy": float("nan"), "balanced_accuracy": float("nan")}}})
    assert {k: overall[k] for k in ("n", "accuracy", "mean_macro_f1", "mean_balanced_accuracy")} == {
        "n": 4, "accuracy": 0.75, "mean_macro_f1": 0.5, "mean_balanced_accuracy": 0.75}
    # questions without confident items do not enter the confident means
    assert overall["confident"] == {"n": 2, "accuracy": 1.0, "mean_balanced_accuracy": 1.0}


def test_balanced_accuracy_is_the_mean_recall_over_answers_present():
    # yes: 1 of 3 recalled (one unparsed); no: 1 of 1 -> (1/3 + 1) / 2; "maybe" is never a target: not averaged
    assert balanced_accuracy(["yes", "yes", "yes", "no"], ["yes", "no", None, "no"]) == pytest.approx(2 / 3)
    # always the majority answer: accuracy 0.9 but balanced accuracy 1/2
    targets = ["no"] * 9 + ["yes"]
    assert accuracy(targets, ["no"] * 10) == 0.9 and balanced_accuracy(targets, ["no"] * 10) == 0.5
    assert np.isnan(balanced_accuracy([], []))


def test_confident_subset_is_the_items_whose_majority_has_at_least_80_percent():
    items = [_item("yes", (0.9, 0.1)), _item("no", (0.2, 0.8)), _item("yes", (0.6, 0.4)), _item("no")]
    # a 0.8 share counts; 0.6 does not; an expert label (no shares) does not
    assert [is_confident(i) for i in items] == [True, True, False, False]
    assert majority_share(_item("yes", (0.45, 0.05))) == pytest.approx(0.9)  # shares of those who answered
    m = question_metrics("bar", items, ["yes", "yes", "no", "no"])
    assert m["n"] == 4 and m["accuracy"] == 0.5 and m["balanced_accuracy"] == 0.5
    assert m["confident"] == {"n": 2, "answers_present": 2, "min_share": CONFIDENT_SHARE, "accuracy": 0.5,
                              "balanced_accuracy": 0.5}
    chance = random_baseline("bar", items)
    assert chance["balanced_accuracy"] == 0.5 and chance["confident"]["n"] == 2
    prior = majority_baseline("bar", items, Counter({("bar", "no"): 5, ("bar", "yes"): 1}))
    assert prior["answer"] == "no" and prior["confident"]["accuracy"] == 0.5
    assert prior["balanced_accuracy"] == 0.5  # one answer always: 1/(answers present)


def _sample(**kwargs):
    return EvalSample(id="s", image_data=Image.new("RGB", (4, 4)), **kwargs)


def test_items_come_from_rows_then_expert_labels_then_votes():
    votes = {"smooth-or-featured_smooth_fraction": 0.8, "smooth-or-featured_featured-or-disk_fraction": 0.15,
             "smooth-or-featured_artifact_fraction": 0.05, "how-rounded_completely_fraction": 0.6,
             "how-rounded_in-between_fraction": 0.3, "how-rounded_cigar-shaped_fraction": 0.1}
    explicit = morphology_items([_sample(question="bar", answer="no", votes={"bar_yes_fraction": 0.2,
                                                                             "bar_no_fraction": 0.8}),
                                 _sample(votes=votes)])
    assert [(i.question, i.answer, i.fractions) for i in explicit] == [("bar", "no", (0.2, 0.8))]
    expert = morphology_items([_sample(expert={"bar": "yes"})])
    assert [(i.question, i.answer, i.target_source) for i in expert] == [("bar", "yes", "expert")]
    derived = morphology_items([_sample(votes=votes)])
    assert [(i.question, i.answer) for i in derived] == [("smooth-or-featured", "smooth"), ("how-rounded", "completely")]


def test_majority_path_goes_on_where_every_branch_rejoins_when_a_question_has_no_votes():
    # GZ2 Kaggle extracts lack bar and spiral questions: a face-on disk is still asked about mergers and odd features
    votes = {"smooth-or-featured_smooth_fraction": 0.2, "smooth-or-featured_featured-or-disk_fraction": 0.8,
             "smooth-or-featured_artifact_fraction": 0.0, "disk-edge-on_yes_fraction": 0.1,
             "disk-edge-on_no_fraction": 0.9, "merging_neither_fraction": 0.9, "merging_merger_fraction": 0.1}
    assert [q.key for q in majority_path(votes)] == [
        "smooth-or-featured", "disk-edge-on", "bar", "has-spiral-arms", "bulge-size", "merging", "odd-feature"]
    items = morphology_items([_sample(votes=votes)])
    assert [(i.question, i.answer) for i in items] == [
        ("smooth-or-featured", "featured-or-disk"), ("disk-edge-on", "no"), ("merging", "neither")]
