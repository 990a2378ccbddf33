"""Morphology metrics per decision-tree question: accuracy, balanced accuracy, macro-F1, confusion, calibration.

Targets are what Galaxy Zoo volunteers said (the vote-majority answer, with the vote fractions
for calibration) or what an expert labelled. A prediction is an answer key, or None when the
model's free text could not be read as any answer (counted wrong, shown as its own column).

Calibration compares the likelihood route's answer probabilities with the vote fractions (or
with the one-hot expert label): the multi-class Brier score sum_k (p_k - f_k)^2 per item, and a
reliability table over all (item, answer) pairs in equal-width probability bins, with the
expected calibration error (ECE) as their count-weighted gap.

Ranking: the likelihood route's ROC AUC per question (one answer against the rest, averaged over the answers
present among the targets): whether the model orders the galaxies by an answer even where its argmax leans to one
answer (a biased yes/no threshold gives chance balanced accuracy at a high AUC).

Accuracy and balanced accuracy (the mean per-answer recall over the answers present among the
targets) are given on all items and on the confident subset: items whose vote-majority answer has
at least `CONFIDENT_SHARE` of the question's votes (expert-labelled items have no shares: n = 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dataset_builder.decision_tree import QUESTIONS, ROOT, majority_answer, topological_order

from .samples import EvalSample

UNPARSED = "(unparsed)"
CONFIDENT_SHARE = 0.8  # majority answer share of a confident item


@dataclass(frozen=True)
class MorphologyItem:
    sample_index: int  # into EvalSet.samples
    question: str
    answer: str  # target answer key
    fractions: tuple[float, ...] | None  # vote fraction per answer of the question (tree order); None: unknown
    target_source: str  # "votes" or "expert"
    prompt: str | None  # the row's own wording of the question, if it had one


def _fractions(question_key: str, votes: dict[str, float]) -> tuple[float, ...] | None:
    question = QUESTIONS[question_key]
    values = [votes.get(question.column(a.key)) for a in question.answers]
    if any(v is None for v in values) or sum(values) <= 0:
        return None
    return tuple(float(v) for v in values)


def _descendants(key: str | None) -> set[str]:
    """`key` and every question that can follow it."""
    seen: set[str] = set()
    stack = [key]
    while stack:
        current = stack.pop()
        if current is None or current in seen:
            continue
        seen.add(current)
        stack += [QUESTIONS[current].next_question(a.key) for a in QUESTIONS[current].answers]
    return seen


def majority_path(votes: dict[str, float]):
    """The questions a classification following the vote-majority answers is asked, from the root.

    Where a question has no votes (a catalogue without its columns, e.g. GZ2 Kaggle extracts without bar and
    spiral questions) and its next question depends on the answer, the walk goes on at the first question
    that every branch reaches (bar -> has-spiral-arms -> ... all reach merging): it is asked either way.
    """
    path = []
    key: str | None = ROOT
    order = topological_order()
    while key is not None and key not in {q.key for q in path}:
        question = QUESTIONS[key]
        path.append(question)
        majority = majority_answer(question, votes)
        if majority is not None:
            key = question.next_question(majority[0])
            continue
        targets = {question.next_question(a.key) for a in question.answers} - {None}
        common = set.intersection(*(_descendants(t) for t in targets)) if targets else set()
        key = min(common, key=order.index) if common else None
    return path


def morphology_items(samples: Sequence[EvalSample]) -> list[MorphologyItem]:
    """The (image, question, target) items of a set.

    Rows that carry their own question (config decision_tree) are the items. Otherwise every
    expert label is one; otherwise every question the vote-majority path (`majority_path`) reaches with a
    majority.
    """
    items: list[MorphologyItem] = []
    explicit = any(s.question for s in samples)
    for index, sample in enumerate(samples):
        if explicit:
            if sample.question:
                items.append(MorphologyItem(index, sample.question, sample.answer, _fractions(sample.question, sample.votes),
                                            "votes", sample.prompt))
        elif sample.expert:
            for question, answer in sample.expert.items():
                items.append(MorphologyItem(index, question, answer, _fractions(question, sample.votes), "expert", None))
        elif sample.votes:
            for question in majority_path(sample.votes):
                majority = majority_answer(question, sample.votes)
                if majority is not None:
                    items.append(MorphologyItem(index, question.key, majority[0],
                                                _fractions(question.key, sample.votes), "votes", None))
    return items


# ------------------------------------------------------------------------------ metric maths
def accuracy(targets: Sequence[str], predictions: Sequence[str | None]) -> float:
    if not targets:
        return float("nan")
    return float(np.mean([t == p for t, p in zip(targets, predictions)]))


def balanced_accuracy(targets: Sequence[str], predictions: Sequence[str | None]) -> float:
    """Mean recall over the answers present among `targets` (sklearn's balanced_accuracy_score); an unparsed
    prediction is a miss. Always answering one answer scores 1/(answers present) when that answer is present."""
    if not targets:
        return float("nan")
    recalls = []
    for label in sorted(set(targets)):
        hits = [p == label for t, p in zip(targets, predictions) if t == label]
        recalls.append(sum(hits) / len(hits))
    return float(np.mean(recalls))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), float)
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `scores` for the `positive` items (the Mann-Whitney U statistic over n+ x n-
    pairs; ties count one half); None without both a positive and a negative item."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = _average_ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ranking_auc(targets: Sequence[str], probabilities: np.ndarray, answers: Sequence[str]) -> float | None:
    """Macro one-vs-rest ROC AUC of the answer probabilities (N, A) (`answers` in column order) over the answers
    present among the targets; for two answers, the AUC of either one. None with fewer than two answers present."""
    probabilities = np.asarray(probabilities, float)
    aucs = [roc_auc(probabilities[:, answers.index(label)], [t == label for t in targets])
            for label in sorted(set(targets)) if label in answers]
    aucs = [a for a in aucs if a is not None]
    return float(np.mean(aucs)) if aucs else None


def majority_share(item: "MorphologyItem") -> float | None:
    """The share of the question's votes that went to the item's target answer (None: no vote fractions)."""
    if item.fractions is None:
        return None
    total = float(sum(item.fractions))
    answer = QUESTIONS[item.question].answer_keys.index(item.answer)
    return item.fractions[answer] / total if total > 0 else None


def is_confident(item: "MorphologyItem", threshold: float = CONFIDENT_SHARE) -> bool:
    share = majority_share(item)
    return share is not None and share >= threshold - 1e-9


def confident_metrics(items: Sequence["MorphologyItem"], predictions: Sequence[str | None]) -> dict:
    """n, accuracy and balanced accuracy of the confident items (see CONFIDENT_SHARE)."""
    chosen = [(item.answer, p) for item, p in zip(items, predictions) if is_confident(item)]
    targets = [t for t, _ in chosen]
    chosen_predictions = [p for _, p in chosen]
    return {"n": len(chosen), "answers_present": len(set(targets)), "min_share": CONFIDENT_SHARE,
            "accuracy": accuracy(targets, chosen_predictions),
            "balanced_accuracy": balanced_accuracy(targets, chosen_predictions)}


def macro_f1(targets: Sequence[str], predictions: Sequence[str | None], labels: Sequence[str] | None = None) -> float:
    """Mean F1 over `labels` (default: answers present among targets or predictions), like
    sklearn's f1_score(average="macro"); an unparsed prediction is a miss for its target."""
    if labels is None:
        labels = sorted(set(targets) | {p for p in predictions if p is not None})
    scores = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(targets, predictions))
        fp = sum(t != label and p == label for t, p in zip(targets, predictions))
        fn = sum(t == label and p != label for t, p in zip(targets, predictions))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def confusion_matrix(targets: Sequence[str], predictions: Sequence[str | None], answers: Sequence[str]) -> np.ndarray:
    """Counts (K, K + 1): rows the target answer, columns the predicted one, last column unparsed."""
    index = {a: i for i, a in enumerate(answers)}
    matrix = np.zeros((len(answers), len(answers) + 1), dtype=np.int64)
    for t, p in zip(targets, predictions):
        matrix[index[t], index[p] if p is not None else len(answers)] += 1
    return matrix


def brier_score(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Mean over items of sum_k (p_k - f_k)^2; both (n, K). 0 is perfect, 2 the worst."""
    probabilities, targets = np.asarray(probabilities, float), np.asarray(targets, float)
    if probabilities.size == 0:
        return float("nan")
    return float(np.mean(np.sum((probabilities - targets) ** 2, axis=1)))


def reliability(probabilities: np.ndarray, targets: np.ndarray, bins: int = 10) -> dict:
    """Reliability table over all (item, answer) pairs: per probability bin, the mean predicted
    probability against the mean observed fraction; ECE is their count-weighted absolute gap."""
    p = np.asarray(probabilities, float).ravel()
    f = np.asarray(targets, float).ravel()
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        if count:
            mean_p, mean_f = float(p[mask].mean()), float(f[mask].mean())
            ece += count / p.size * abs(mean_p - mean_f)
        else:
            mean_p = mean_f = None
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                      "mean_probability": mean_p, "mean_observed": mean_f})
    return {"bins": table, "ece": float(ece) if p.size else float("nan")}


def target_distribution(item: MorphologyItem, n_answers: int) -> np.ndarray:
    """What the probabilities are scored against: vote fractions (normalised to sum 1), else one-hot."""
    if item.fractions is not None:
        f = np.asarray(item.fractions, float)
        return f / f.sum()
    onehot = np.zeros(n_answers)
    onehot[QUESTIONS[item.question].answer_keys.index(item.answer)] = 1.0
    return onehot


# --------------------------------------------------------------------------- per question
def question_metrics(question_key: str, items: Sequence[MorphologyItem], predictions: Sequence[str | None],
                     probabilities: np.ndarray | None = None) -> dict:
    """All metrics of one question for one method (parsed text, or likelihood when probabilities given)."""
    answers = QUESTIONS[question_key].answer_keys
    targets = [item.answer for item in items]
    result = {
        "n": len(items),
        "accuracy": accuracy(targets, predictions),
        "balanced_accuracy": balanced_accuracy(targets, predictions),
        "answers_present": len(set(targets)),  # what balanced accuracy averages over
        "macro_f1": macro_f1(targets, predictions),
        "confident": confident_metrics(items, predictions),
        "unparsed": int(sum(p is None for p in predictions)),
        "confusion": {"answers": list(answers) + [UNPARSED], "matrix": confusion_matrix(targets, predictions, answers).tolist()},
    }
    if probabilities is not None:
        observed = np.stack([target_distribution(item, len(answers)) for item in items])
        result["brier"] = brier_score(probabilities, observed)
        result["calibration_target"] = "votes" if all(i.fractions is not None for i in items) else (
            "expert" if all(i.fractions is None for i in items) else "votes+expert")
        result["reliability"] = reliability(probabilities, observed)
        result["auc"] = ranking_auc(targets, probabilities, list(answers))
    return result


def predictions_from_probabilities(question_key: str, probabilities: np.ndarray) -> list[str]:
    answers = QUESTIONS[question_key].answer_keys
    return [answers[i] for i in np.argmax(probabilities, axis=1)]


# ------------------------------------------------------------------------------- baselines
def majority_baseline(question_key: str, items: Sequence[MorphologyItem], counts: Counter | None) -> dict:
    """Always answer the most common answer (of the training split when given, else this set);
    probabilities are that answer distribution (the "climatology" forecast)."""
    answers = QUESTIONS[question_key].answer_keys
    source = "train"
    frequencies = np.array([counts.get((question_key, a), 0) if counts else 0 for a in answers], float)
    if frequencies.sum() == 0:
        source = "eval"
        seen = Counter(item.answer for item in items)
        frequencies = np.array([seen.get(a, 0) for a in answers], float)
    distribution = frequencies / frequencies.sum()
    majority = answers[int(np.argmax(frequencies))]
    predictions = [majority] * len(items)
    result = question_metrics(question_key, items, predictions, np.tile(distribution, (len(items), 1)))
    result.update(answer=majority, source=source)
    return result


def random_baseline(question_key: str, items: Sequence[MorphologyItem], draws: int = 200, seed: int = 0) -> dict:
    """Uniform guessing over the question's answers: accuracy and balanced accuracy 1/K exactly (their
    expectations; every answer's recall is 1/K), on all and on the confident items; macro-F1 as the mean
    over `draws` seeded draws (its expectation has no simple closed form); Brier of the uniform
    distribution exactly."""
    answers = QUESTIONS[question_key].answer_keys
    k = len(answers)
    targets = [item.answer for item in items]
    rng = np.random.default_rng(seed)
    f1s = [macro_f1(targets, [answers[i] for i in rng.integers(0, k, len(items))]) for _ in range(draws)]
    observed = np.stack([target_distribution(item, k) for item in items])
    return {
        "n": len(items),
        "accuracy": 1.0 / k,
        "balanced_accuracy": 1.0 / k,
        "answers_present": len(set(targets)),
        "macro_f1": float(np.mean(f1s)),
        "confident": {"n": sum(is_confident(item) for item in items),
                      "answers_present": len({item.answer for item in items if is_confident(item)}),
                      "min_share": CONFIDENT_SHARE, "accuracy": 1.0 / k, "balanced_accuracy": 1.0 / k},
        "brier": brier_score(np.full((len(items), k), 1.0 / k), observed),
    }


def group_by_question(items: Sequence[MorphologyItem]) -> dict[str, list[int]]:
    """Item indices per question, in tree order."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.question, []).append(i)
    order = list(QUESTIONS)
    return dict(sorted(groups.items(), key=lambda kv: order.index(kv[0])))


def summarise(per_question: dict[str, dict]) -> dict:
    """Item-weighted accuracy, unweighted mean balanced accuracy and macro-F1 over questions, and the same
    over the confident items."""
    if not per_question:
        return {}
    n = sum(m["n"] for m in per_question.values())
    out = {
        "n": n,
        "accuracy": float(sum(m["accuracy"] * m["n"] for m in per_question.values()) / n),
        "mean_balanced_accuracy": float(np.mean(balanced)) if (balanced := [
            m["balanced_accuracy"] for m in per_question.values() if "balanced_accuracy" in m]) else float("nan"),
        "mean_macro_f1": float(np.mean([m["macro_f1"] for m in per_question.values()])),
    }
    confident = [m["confident"] for m in per_question.values() if m.get("confident", {}).get("n")]
    n_confident = sum(c["n"] for c in confident)
    out["confident"] = {
        "n": n_confident,
        "accuracy": float(sum(c["accuracy"] * c["n"] for c in confident) / n_confident) if n_confident else float("nan"),
        "mean_balanced_accuracy": float(np.mean([c["balanced_accuracy"] for c in confident])) if confident else float("nan"),
    }
    briers = [(m["brier"], m["n"]) for m in per_question.values() if "brier" in m]
    if briers:
        out["brier"] = float(sum(b * k for b, k in briers) / sum(k for _, k in briers))
    return out
