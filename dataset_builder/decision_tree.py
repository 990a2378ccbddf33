"""The Galaxy Zoo DECaLS decision tree, with catalogue-style keys.

Questions, answers and their order are those of the `decals` tree on the Galaxy Zoo website
(zooniverse/Galaxy-Zoo, app/lib/decals_tree.coffee; the help-example images in labels.csv are
indexed by that order). The "Discuss" question is left out: it is not a morphology question.

Keys follow the GZ DECaLS catalogues (Walmsley et al. 2022, MNRAS 509, 3966): a vote-fraction
column is `f"{question}_{answer}_fraction"` (e.g. `smooth-or-featured_smooth_fraction`) and the
number of volunteers who answered a question is `f"{question}_total-votes"`.

Flow (`leads_to`): the website sends "Rounded/Boxy/No bulge" of the edge-on bulge question to a
question named "Is there anything odd?" that its tree does not define; GZ DECaLS (Walmsley 2022,
Fig. 3) sends it to the merger question, like every other branch, and so do we.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

ROOT = "smooth-or-featured"


@dataclass(frozen=True)
class Answer:
    key: str  # catalogue key, e.g. "featured-or-disk"
    label: str  # website text, e.g. "Features or disk"
    leads_to: str | None = None  # next question when it depends on this answer; else the question's


@dataclass(frozen=True)
class Question:
    key: str  # catalogue key, e.g. "smooth-or-featured"
    title: str  # website title, e.g. "Shape"
    text: str  # website question text
    answers: tuple[Answer, ...]
    multiple_choice: bool = False  # checkbox question: fractions need not sum to 1
    leads_to: str | None = None  # next question for every answer without its own `leads_to`

    @cached_property  # hot: every column() call checks it (cached_property works on frozen dataclasses)
    def answer_keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.answers)

    @property
    def total_votes_column(self) -> str:
        return f"{self.key}_total-votes"

    def column(self, answer_key: str) -> str:
        """Vote-fraction column of one answer: `"<question>_<answer>_fraction"`."""
        if answer_key not in self.answer_keys:
            raise KeyError(
                f"question {self.key!r} has no answer {answer_key!r} (answers: {', '.join(self.answer_keys)})"
            )
        return f"{self.key}_{answer_key}_fraction"

    def columns(self) -> list[str]:
        return [self.column(a.key) for a in self.answers]

    def answer(self, key_or_label: str) -> Answer:
        """The answer with this catalogue key or (case-insensitive) website label."""
        for a in self.answers:
            if a.key == key_or_label:
                return a
        wanted = key_or_label.strip().casefold()
        for a in self.answers:
            if a.label.casefold() == wanted or a.key.casefold() == wanted:
                return a
        choices = ", ".join(f"{a.key} ({a.label!r})" for a in self.answers)
        raise KeyError(f"question {self.key!r} has no answer with key or label {key_or_label!r}; choices: {choices}")

    def next_question(self, answer_key: str) -> str | None:
        return self.answer(answer_key).leads_to or self.leads_to


def _q(key, title, text, answers, leads_to=None, multiple_choice=False) -> Question:
    return Question(
        key=key,
        title=title,
        text=text,
        answers=tuple(Answer(*a) for a in answers),
        multiple_choice=multiple_choice,
        leads_to=leads_to,
    )


# Website order (question_index in labels.csv is the position in this tuple).
DECALS_TREE: tuple[Question, ...] = (
    _q("smooth-or-featured", "Shape", "Is the galaxy simply smooth and rounded, with no sign of a disk?",
       [("smooth", "Smooth", "how-rounded"),
        ("featured-or-disk", "Features or disk", "disk-edge-on"),
        ("artifact", "Star or artifact", None)]),  # artifact: straight to "Discuss", i.e. the end
    _q("disk-edge-on", "Disk", "Could this be a disk viewed edge-on?",
       [("yes", "Yes", "edge-on-bulge"), ("no", "No", "bar")]),
    _q("bar", "Bar", "Is there any sign of a bar feature through the centre of the galaxy?",
       [("yes", "Bar"), ("no", "No bar")], leads_to="has-spiral-arms"),
    _q("has-spiral-arms", "Spiral", "Is there any sign of a spiral arm pattern?",
       [("yes", "Spiral", "spiral-winding"), ("no", "No spiral", "bulge-size")]),
    _q("bulge-size", "Bulge", "How prominent is the central bulge, compared with the rest of the galaxy?",
       [("no", "No bulge"), ("obvious", "Obvious"), ("dominant", "Dominant")], leads_to="merging"),
    _q("spiral-winding", "Spiral", "How tightly wound do the spiral arms appear?",
       [("tight", "Tight"), ("medium", "Medium"), ("loose", "Loose")], leads_to="spiral-arm-count"),
    _q("spiral-arm-count", "Spiral", "How many spiral arms are there?",
       [("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("more-than-4", "More than 4")], leads_to="bulge-size"),
    _q("edge-on-bulge", "Bulge", "Does the galaxy have a bulge at its centre?",
       [("rounded", "Rounded"), ("boxy", "Boxy"), ("none", "No bulge")], leads_to="merging"),
    _q("how-rounded", "Round", "How rounded is it?",
       [("completely", "Completely round"), ("in-between", "In between"), ("cigar-shaped", "Cigar shaped")],
       leads_to="merging"),
    _q("merging", "Mergers", "Is the galaxy currently merging or is there any sign of tidal debris?",
       [("merger", "Merging"), ("tidal-debris", "Tidal debris"), ("both", "Both"), ("neither", "Neither")],
       leads_to="odd-feature"),
    _q("odd-feature", "Odd", "Do you see any of these odd features in the image?",
       [("none", "None"), ("ring", "Ring"), ("lens-or-arc", "Lens or arc"), ("irregular", "Irregular"),
        ("other", "Other"), ("dust-lane", "Dust lane"), ("overlapping", "Overlapping")],
       multiple_choice=True),  # then "Discuss", i.e. the end
)

QUESTIONS: dict[str, Question] = {q.key: q for q in DECALS_TREE}


def get_question(question_key: str) -> Question:
    try:
        return QUESTIONS[question_key]
    except KeyError:
        raise KeyError(f"unknown decision-tree question {question_key!r}; questions: {', '.join(QUESTIONS)}") from None


def parse_question_weight(text: str, known: Sequence[str] | None = None) -> tuple[str, float]:
    """'has-spiral-arms=4' -> ('has-spiral-arms', 4.0): a question key (one of `known`, default the whole tree) and a
    finite weight >= 0; anything else is a ValueError saying what is wrong."""
    question, equals, weight = text.strip().partition("=")
    question = question.strip()
    known = list(QUESTIONS) if known is None else list(known)
    if not equals:
        raise ValueError(f"{text!r}: expected QUESTION=W, e.g. has-spiral-arms=4")
    if question not in known:
        raise ValueError(f"unknown question {question!r}; questions: {', '.join(known)}")
    try:
        value = float(weight)
    except ValueError:
        raise ValueError(f"{question} weight {weight!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"{question} weight {weight} must be 0 or more (finite)")
    return question, value


def next_question(question_key: str, answer_key: str) -> str | None:
    """The question the website asks after this answer (None: the classification ends)."""
    return get_question(question_key).next_question(answer_key)


def topological_order() -> list[str]:
    """Question keys ordered so that every question comes after all questions that lead to it
    (the website order does not: bulge-size is asked after the spiral questions)."""
    return list(_topological_order())


@lru_cache(maxsize=1)
def _topological_order() -> tuple[str, ...]:
    parents: dict[str, set[str]] = {q.key: set() for q in DECALS_TREE}
    for q in DECALS_TREE:
        for a in q.answers:
            target = q.next_question(a.key)
            if target is not None:
                parents[target].add(q.key)
    order: list[str] = []
    while len(order) < len(parents):
        ready = [k for k in parents if k not in order and parents[k] <= set(order)]
        if not ready:
            raise RuntimeError(f"decision tree has a cycle among {sorted(set(parents) - set(order))}")
        order.append(ready[0])
    return tuple(order)


def column(question_key: str, answer_key: str) -> str:
    return get_question(question_key).column(answer_key)


def vote_columns() -> list[str]:
    """Every vote-fraction column, in tree order."""
    return [c for q in DECALS_TREE for c in q.columns()]


def total_votes_columns() -> list[str]:
    return [q.total_votes_column for q in DECALS_TREE]


def finite_fraction(value: Any) -> float | None:
    """A vote value as a finite float; None for a missing, non-numeric, NaN or infinite one."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


CONFIDENT = 0.8  # a vote fraction at or above which the volunteers "agree"
LIKELY = 0.5  # at or above: a majority; below: uncertain


def confidence_band(fraction: float) -> str:
    """'confident' (>= CONFIDENT), 'likely' (>= LIKELY) or 'uncertain': how sure the volunteers were."""
    if fraction >= CONFIDENT:
        return "confident"
    if fraction >= LIKELY:
        return "likely"
    return "uncertain"


def majority_answer(question: Question, votes: Mapping[str, float]) -> tuple[str, float] | None:
    """(answer key, fraction) with the largest vote fraction; ties go to the earlier answer.

    None when the question's columns are absent or NaN, or all zero (nobody answered it).
    For the checkbox question this is the most-ticked option.
    """
    best: tuple[str, float] | None = None
    for a in question.answers:
        value = finite_fraction(votes.get(question.column(a.key)))
        if value is not None and (best is None or value > best[1]):
            best = (a.key, value)
    if best is None or best[1] <= 0:
        return None
    return best


def _answer_independent_next(question: Question) -> tuple[bool, str | None]:
    targets = {question.next_question(a.key) for a in question.answers}
    return (len(targets) == 1, next(iter(targets)))


def reachable_questions(votes: Mapping[str, float]) -> list[Question]:
    """Questions a classification following the majority answers is asked, from the root.

    Where the next question does not depend on the answer (e.g. bar -> has-spiral-arms) the walk
    goes on even without votes for that question; where it does, missing votes end the walk.
    """
    path: list[Question] = []
    key: str | None = ROOT
    while key is not None:
        question = QUESTIONS[key]
        path.append(question)
        majority = majority_answer(question, votes)
        if majority is not None:
            key = question.next_question(majority[0])
        else:
            independent, target = _answer_independent_next(question)
            key = target if independent else None
    return path


def answer_path(answers: Mapping[str, str | Sequence[str]]) -> list[tuple[str, str | tuple[str, ...]]]:
    """Check that `answers` (question key -> answer key, or keys for the checkbox question) is one
    complete path through the tree, and return it in asking order.

    Raises ValueError naming the question at fault: a reached question without an answer, an
    unknown answer, or an answer to a question this path never asks.
    """
    path: list[tuple[str, str | tuple[str, ...]]] = []
    key: str | None = ROOT
    while key is not None:
        question = QUESTIONS[key]
        if key not in answers:
            raise ValueError(f"question {key!r} is reached but has no answer")
        given = answers[key]
        if question.multiple_choice:
            chosen = (given,) if isinstance(given, str) else tuple(given)
            if not chosen:
                raise ValueError(f"checkbox question {key!r} needs at least one option (e.g. 'none')")
            for option in chosen:
                if option not in question.answer_keys:
                    raise ValueError(f"question {key!r} has no option {option!r}")
            path.append((key, chosen))
            key = question.leads_to
        else:
            if not isinstance(given, str) or given not in question.answer_keys:
                raise ValueError(f"question {key!r} has no answer {given!r} (answers: {question.answer_keys})")
            path.append((key, given))
            key = question.next_question(given)
    extra = set(answers) - {k for k, _ in path}
    unknown = extra - set(QUESTIONS)
    if unknown:
        raise ValueError(f"unknown question(s) {sorted(unknown)}")
    if extra:
        raise ValueError(f"answers given to question(s) this path never asks: {sorted(extra)}")
    return path


def from_website_index(question_index: int, answer_index: int, answer_kind: str = "answer") -> tuple[str, str]:
    """(question key, answer key) of a website tree position, as in labels.csv rows.

    `answer_kind` is "answer" (a button) or "checkbox" (an option of the odd-features question).
    """
    if not 0 <= question_index < len(DECALS_TREE):
        raise ValueError(
            f"question_index {question_index} is outside the DECaLS tree (0-{len(DECALS_TREE) - 1}; "
            f"{len(DECALS_TREE)} is 'Discuss', which is not a morphology question)"
        )
    question = DECALS_TREE[question_index]
    if answer_kind not in ("answer", "checkbox"):
        raise ValueError(f"answer_kind must be 'answer' or 'checkbox', not {answer_kind!r}")
    if (answer_kind == "checkbox") != question.multiple_choice:
        raise ValueError(
            f"question {question_index} ({question.key!r}) has "
            f"{'checkboxes' if question.multiple_choice else 'answer buttons'}, not {answer_kind!r} entries"
        )
    if not 0 <= answer_index < len(question.answers):
        raise ValueError(
            f"answer_index {answer_index} is outside question {question_index} ({question.key!r}), "
            f"which has {len(question.answers)} {answer_kind}s"
        )
    return question.key, question.answers[answer_index].key
