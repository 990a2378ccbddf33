"""The wording of decision-tree questions and answers in the instruction rows.

An answer says how sure the volunteers were (`decision_tree.confidence_band`: confident >= 0.8, likely
>= 0.5, else uncertain, naming the runner-up), phrased as the answerer's own estimate of the vote (a model
asked about a new image cannot cite volunteers who never saw it), and always STARTS with the answer's
website label, so `parse_answer` can read it back.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from .decision_tree import (
    LIKELY,
    QUESTIONS,
    Question,
    confidence_band,
    finite_fraction,
    majority_answer,
    reachable_questions,
)

# The website text of each question first (half of the time), then paraphrases.
QUESTION_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "smooth-or-featured": (
        "Is this galaxy smooth and rounded, or does it show features or a disk?",
        "Would you classify this as smooth, featured (or a disk), or a star/artifact?",
    ),
    "disk-edge-on": ("Are we seeing this disk galaxy edge-on?", "Is this a disk viewed from the side?"),
    "bar": ("Does this galaxy have a bar through its centre?", "Can you see a bar in the middle of this galaxy?"),
    "has-spiral-arms": ("Does this galaxy have spiral arms?", "Is there a spiral pattern in this galaxy?"),
    "bulge-size": (
        "How big is the central bulge compared with the rest of the galaxy?",
        "How prominent is the bulge at the centre?",
    ),
    "spiral-winding": ("How tightly are the spiral arms wound?", "Are the spiral arms tight, medium or loose?"),
    "spiral-arm-count": ("How many spiral arms does this galaxy have?", "Count the spiral arms: how many are there?"),
    "edge-on-bulge": (
        "What shape is the bulge of this edge-on galaxy: rounded, boxy, or is there none?",
        "Is there a bulge in the middle of this edge-on disk?",
    ),
    "how-rounded": ("How round is this smooth galaxy?", "Is this galaxy completely round, in between, or cigar-shaped?"),
    "merging": (
        "Is this galaxy merging with another, or is there tidal debris around it?",
        "Do you see signs of a merger or tidal debris?",
    ),
    "odd-feature": (
        "Are there any odd features, such as a ring, a lens or arc, dust lanes or overlapping objects?",
        "Does anything unusual appear in this image?",
    ),
}

# The answer is the model's own estimate of how Galaxy Zoo volunteers would vote on THIS image: a trained
# model asked about a new galaxy must not claim that volunteers saw it ("the volunteers agree: 71%").
CONFIDENT_PHRASES = (
    "{label}. I estimate that about {pct} of Galaxy Zoo volunteers would give this answer.",
    "{label}: I would expect a clear majority of volunteers (about {pct}) to answer this.",
    "{label}, with high confidence; my estimate of the volunteer vote for it is {pct}.",
    "{label}. My estimate: {pct} of volunteers would pick this.",
)
LIKELY_PHRASES = (
    "{label}, probably: I estimate {pct} of volunteers would choose this, and {runner_pct} {runner}.",
    "{label}, most likely (an estimated {pct} of votes), though some volunteers would answer {runner} (about {runner_pct}).",
    "{label}, on balance: I expect about {pct} of volunteers to choose it over {runner} ({runner_pct}).",
)
UNCERTAIN_PHRASES = (
    "{label}, but this is uncertain: I estimate only {pct} of volunteers would choose it, and {runner_pct} {runner}.",
    "{label}, tentatively (an estimated {pct} of votes); {runner} would be close behind with about {runner_pct}.",
    "{label} is my best guess, but at an estimated {pct} of votes it is unclear; {runner} would get about {runner_pct}.",
)
# Checkbox (odd features) options are ticked independently: fractions are per option.
CHECKBOX_EXTRA = " I would expect many to tick these too: {others}."


def _pct(fraction: float) -> str:
    return f"{round(100 * fraction)}%"


_LABELLED_COLUMNS = {q.key: tuple((a.label, q.column(a.key)) for a in q.answers) for q in QUESTIONS.values()}


def _ranked_answers(question: Question, votes: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(label, fraction) of every answer with a known fraction, largest first (ties: tree order)."""
    known = [(label, finite_fraction(votes.get(column))) for label, column in _LABELLED_COLUMNS[question.key]]
    return sorted(((label, f) for label, f in known if f is not None), key=lambda pair: -pair[1])


def answer_text(question: Question, answer_key: str, fraction: float, votes: Mapping[str, Any], rng: random.Random) -> str:
    """The worded answer: starts with the answer's label; the wording follows the vote fraction."""
    label = question.answer(answer_key).label
    ranked = [pair for pair in _ranked_answers(question, votes) if pair[0] != label]
    runner, runner_fraction = ranked[0] if ranked else ("another answer", max(0.0, 1.0 - fraction))
    pool = {"confident": CONFIDENT_PHRASES, "likely": LIKELY_PHRASES, "uncertain": UNCERTAIN_PHRASES}
    text = rng.choice(pool[confidence_band(fraction)]).format(
        label=label, pct=_pct(fraction), runner=runner, runner_pct=_pct(runner_fraction)
    )
    if question.multiple_choice:
        others = [f"{lab} ({_pct(f)})" for lab, f in ranked if f >= LIKELY]
        if others:
            text += CHECKBOX_EXTRA.format(others=", ".join(others))
    return text


def parse_answer(question: Question, text: str) -> str | None:
    """The answer key an answer text starts with (longest label first: "No bar" before "No"), else None."""
    folded = text.strip().casefold()
    for answer in sorted(question.answers, key=lambda a: -len(a.label)):
        label = answer.label.casefold()
        if folded.startswith(label) and (len(folded) == len(label) or not folded[len(label)].isalnum()):
            return answer.key
    return None


def question_prompt(question: Question, rng: random.Random) -> str:
    paraphrases = QUESTION_PARAPHRASES.get(question.key, ())
    if not paraphrases or rng.random() < 0.5:
        return question.text
    return rng.choice(paraphrases)


AnsweredPath = list[tuple[Question, tuple[str, float]]]


def answered_path(votes: Mapping[str, Any]) -> AnsweredPath:
    """(question, (majority answer key, fraction)) along the reachable path, for the questions with votes.

    A question reachable without votes (an answer-independent step such as bar -> spiral arms) has
    nothing to ground an answer on and is left out. Computed once per subject and shared by configs.
    """
    path = []
    for question in reachable_questions(votes):
        majority = majority_answer(question, votes)
        if majority is not None:
            path.append((question, majority))
    return path
