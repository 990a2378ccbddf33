"""The questions a morphology head predicts: answer shares from vote fractions, reached masks, mirror permutations.

A head question is a single-choice question of the Galaxy Zoo DECaLS tree (`dataset_builder.decision_tree`; the
checkbox question `odd-feature` is left out: its options do not share one softmax), or `spiral-spin` (GZ1's
clockwise / anticlockwise winding, which a mirror flip swaps). Shares come from the `<question>_<answer>_fraction`
columns of a row's `votes`; a question whose fractions are missing or all zero was not reached and is masked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dataset_builder.decision_tree import DECALS_TREE, finite_fraction as _finite, parse_question_weight


@dataclass(frozen=True)
class HeadQuestion:
    key: str
    answers: tuple[str, ...]
    # Answer pairs a mirror flip exchanges (clockwise <-> anticlockwise); rotations change nothing.
    mirror_pairs: tuple[tuple[str, str], ...] = ()

    def column(self, answer: str) -> str:
        return f"{self.key}_{answer}_fraction"

    @property
    def total_votes_column(self) -> str:
        return f"{self.key}_total-votes"


SPIRAL_SPIN = HeadQuestion("spiral-spin", ("clockwise", "anticlockwise"), (("clockwise", "anticlockwise"),))
DECALS_QUESTIONS = tuple(HeadQuestion(q.key, q.answer_keys) for q in DECALS_TREE if not q.multiple_choice)
KNOWN = {q.key: q for q in (*DECALS_QUESTIONS, SPIRAL_SPIN)}
# `head_questions: decals` = every single-choice DECaLS question; `gz2` = those the GZ2 Kaggle sample has.
PRESETS = {
    "decals": tuple(q.key for q in DECALS_QUESTIONS),
    "gz2": ("smooth-or-featured", "disk-edge-on", "how-rounded"),
}




class HeadSchema:
    """An ordered set of head questions: the head's logits are their answers, concatenated."""

    def __init__(self, questions: Sequence[HeadQuestion]):
        if not questions:
            raise ValueError("a morphology head needs at least one question")
        self.questions = tuple(questions)
        self.offsets = np.cumsum([0] + [len(q.answers) for q in self.questions]).tolist()
        self.num_answers = self.offsets[-1]

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> "HeadSchema":
        """From a preset name (`decals`, `gz2`) or comma-separated question keys; unknown keys fail naming them."""
        keys: list[str] = []
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        for item in (i.strip() for i in items):
            if item in PRESETS:
                keys += [k for k in PRESETS[item] if k not in keys]
            elif item in KNOWN:
                keys += [] if item in keys else [item]
            elif item:
                raise ValueError(f"head_questions: unknown question {item!r}; expected presets {sorted(PRESETS)} or "
                                 f"question keys {sorted(KNOWN)}")
        return cls([KNOWN[k] for k in keys])

    def loss_weights(self, spec: str | None) -> np.ndarray:
        """(Q,) weights of the head questions from `question=w,question=w` (unnamed questions: 1); a question not in
        the head, or a weight that is not a finite number >= 0, fails naming it."""
        weights = np.ones(len(self.questions), np.float32)
        keys = [q.key for q in self.questions]
        for item in filter(str.strip, (spec or "").split(",")):
            try:
                key, weight = parse_question_weight(item, keys)
            except ValueError as error:
                raise ValueError(f"head_question_weights: {error}") from None
            weights[keys.index(key)] = weight
        return weights

    def slices(self) -> list[slice]:
        return [slice(a, b) for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The head's predicted vote shares: a softmax per question. logits: (N, A) -> (N, A), each question's
        slice summing to 1 (one softmax over all A answers would rank galaxies by the other questions' logits too)."""
        return torch.cat([torch.softmax(logits[:, sl].float(), dim=-1) for sl in self.slices()], dim=-1)

    def targets(self, votes: Mapping[str, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shares (A,), reached (Q,) bool, vote counts (Q,), NaN when unknown) for one galaxy's vote fractions.

        Shares are the fractions normalised to sum to 1 per question (catalogue rounding), 0 where not reached.
        """
        votes = votes or {}
        shares = np.zeros(self.num_answers, np.float32)
        reached = np.zeros(len(self.questions), bool)
        counts = np.full(len(self.questions), np.nan, np.float32)
        for i, (q, sl) in enumerate(zip(self.questions, self.slices())):
            values = [_finite(votes.get(q.column(a))) for a in q.answers]
            if any(v is None for v in values) or sum(values) <= 0:
                continue
            shares[sl] = np.asarray(values, np.float32) / sum(values)
            reached[i] = True
            total = _finite(votes.get(q.total_votes_column))
            if total is not None and total > 0:
                counts[i] = total
        return shares, reached, counts

    def mirror_permutation(self) -> np.ndarray:
        """Index array p with shares_mirrored = shares[p] (identity except the mirror pairs)."""
        perm = np.arange(self.num_answers)
        for q, offset in zip(self.questions, self.offsets):
            for a, b in q.mirror_pairs:
                i, j = offset + q.answers.index(a), offset + q.answers.index(b)
                perm[i], perm[j] = j, i
        return perm

    def to_dict(self) -> dict:
        return {"questions": [{"key": q.key, "answers": list(q.answers),
                               "mirror_pairs": [list(p) for p in q.mirror_pairs]} for q in self.questions]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "HeadSchema":
        return cls([HeadQuestion(q["key"], tuple(q["answers"]), tuple(tuple(p) for p in q.get("mirror_pairs", ())))
                    for q in data["questions"]])
