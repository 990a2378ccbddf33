"""The default backend: a deterministic, offline description built from votes, hashtags and comments.

No model: the majority answers of the Galaxy Zoo decision tree (hedged by how strongly volunteers
agreed) and the visible-feature words found in the comments and hashtags (hedged: nobody voted on
them) are put into sentences that describe the galaxy itself. The wording is drawn from small phrase pools by a `random.Random` seeded with the
subject id, so descriptions vary across subjects yet every build gives the same text.
A subject with no votes and no feature words in its comments or hashtags gets an empty
description, which the validator rejects as "empty".
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..decision_tree import CONFIDENT, LIKELY, QUESTIONS, majority_answer, reachable_questions
from ..records import Subject
from .base import GenerationRequest, Summariser

MAX_FEATURES = 8
MAX_TAGS = 5
ODD_FEATURE_MIN_FRACTION = 0.3  # checkbox options ticked by fewer volunteers are left out

# (noun phrase for sentences, short feature label) per (question, answer); absent = not worth saying.
_DETAILS: dict[tuple[str, str], tuple[str, str]] = {
    ("how-rounded", "completely"): ("a completely round shape", "round shape"),
    ("how-rounded", "in-between"): ("a slightly elongated shape", "slightly elongated"),
    ("how-rounded", "cigar-shaped"): ("a cigar-shaped outline", "cigar-shaped"),
    ("edge-on-bulge", "rounded"): ("a rounded bulge", "rounded bulge"),
    ("edge-on-bulge", "boxy"): ("a boxy bulge", "boxy bulge"),
    ("edge-on-bulge", "none"): ("no visible bulge", "no bulge"),
    ("bar", "yes"): ("a bar through its centre", "bar"),
    ("bulge-size", "no"): ("no obvious bulge", "no bulge"),
    ("bulge-size", "obvious"): ("an obvious central bulge", "obvious bulge"),
    ("bulge-size", "dominant"): ("a dominant central bulge", "dominant bulge"),
    ("merging", "merger"): ("signs of an ongoing merger", "merger"),
    ("merging", "tidal-debris"): ("tidal debris", "tidal debris"),
    ("merging", "both"): ("signs of a merger with tidal debris", "merger with tidal debris"),
    ("odd-feature", "ring"): ("a ring", "ring"),
    ("odd-feature", "lens-or-arc"): ("a lens or arc", "lens or arc"),
    ("odd-feature", "irregular"): ("an irregular shape", "irregular shape"),
    ("odd-feature", "other"): ("some other odd feature", "odd feature"),
    ("odd-feature", "dust-lane"): ("a dust lane", "dust lane"),
    ("odd-feature", "overlapping"): ("an overlapping object", "overlapping object"),
}
_ARM_COUNTS = {"1": "a single", "2": "two", "3": "three", "4": "four", "more-than-4": "more than four"}
_WINDING = {"tight": "tightly wound", "medium": "moderately wound", "loose": "loosely wound"}

# Visible-feature words in comments -> (noun phrase, feature label, stem). Order = order of mention.
# The stem finds the same feature among the vote facts ("spiral" in "two spiral arms"): said once. It is
# the label unless a fourth item names it.
_COMMENT_FEATURES: tuple[tuple[re.Pattern[str], str, str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), phrase, label, stem[0] if stem else label)
    for pattern, phrase, label, *stem in (
        (r"\bspiral", "spiral structure", "spiral structure", "spiral"),
        (r"\bbar(?:red)?\b", "a bar", "bar"),
        (r"\brings?\b|\bringed\b", "a ring", "ring"),
        (r"\bmerg(?:er|ers|ing|e)\b", "a merger", "merger"),
        (r"\btidal", "tidal features", "tidal features", "tidal"),
        (r"\bdust[ -_]?lanes?\b", "a dust lane", "dust lane"),
        (r"\bedge[ -_]?on\b", "an edge-on view", "edge-on"),
        (r"\blens(?:ed|ing|es)?\b", "possible lensing", "lensing", "lens"),
        (r"\barcs?\b", "an arc", "arc"),
        (r"\birregular", "an irregular shape", "irregular shape", "irregular"),
        (r"\bstars?\b(?![ -_]?form)", "a star in the field", "star"),
        (r"\bartef|\bartif", "an image artefact", "image artefact", "artefact"),
    )
)
_HEDGE_RE = re.compile(r"\b(?:maybe|possibl[ey]|perhaps|probably|not sure|unsure|unclear|might|could be)\b|\?")

# Phrase pools by how strongly volunteers agree. Every sentence describes the galaxy: no "volunteers
# say" or "its Talk hashtags are" meta-text, which a model trained on it repeats about images nobody saw.
_OPENERS = {
    "confident": ("This is {x}.", "The image shows {x}.", "It is {x}."),
    "likely": ("This is probably {x}.", "This looks like {x}.", "It appears to be {x}."),
    "split": ("This is possibly {x}, though it is hard to tell.", "This may be {x}, but the image is ambiguous.",
              "It could be {x}; the shape is unclear."),
}
_DETAIL_SENTENCES = {
    "confident": ("It has {x}.", "It clearly shows {x}.", "It shows {x}."),
    "likely": ("It probably has {x}.", "It seems to have {x}.", "It likely shows {x}."),
    "split": ("It may have {x}.", "It possibly shows {x}.", "There may be {x}."),
}
# Features that only comments or hashtags name (no vote behind them): hedged.
_MENTIONED_SENTENCES = ("It may also show {x}.", "There may also be {x}.", "It possibly shows {x} as well.")


def confidence_level(fraction: float) -> str:
    return "confident" if fraction >= CONFIDENT else "likely" if fraction >= LIKELY else "split"


def join_phrases(phrases: Sequence[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


@dataclass
class _Fact:
    phrase: str  # noun phrase for a sentence: "two tightly wound spiral arms"
    label: str  # short feature label: "two spiral arms"
    fraction: float  # vote fraction behind it (the weakest one when several are merged)


def _main_noun(votes: Mapping[str, float]) -> _Fact | None:
    shape = majority_answer(QUESTIONS["smooth-or-featured"], votes)
    if shape is None:
        return None
    answer, fraction = shape
    if answer == "smooth":
        return _Fact("a smooth, rounded galaxy", "smooth galaxy", fraction)
    if answer == "artifact":
        return _Fact("a star or an image artefact rather than a galaxy", "star or artefact", fraction)
    edge_on = majority_answer(QUESTIONS["disk-edge-on"], votes)
    if edge_on is not None and edge_on[0] == "yes":
        return _Fact("an edge-on disk galaxy", "edge-on disk", min(fraction, edge_on[1]))
    return _Fact("a disk galaxy with visible features", "disk galaxy", fraction)


def _spiral_fact(votes: Mapping[str, float]) -> _Fact | None:
    spiral = majority_answer(QUESTIONS["has-spiral-arms"], votes)
    if spiral is None or spiral[0] != "yes":
        return None
    words, fraction = ["spiral arms"], spiral[1]
    winding = majority_answer(QUESTIONS["spiral-winding"], votes)
    if winding is not None and winding[1] >= LIKELY:  # qualifiers only when most volunteers agree on them
        words.insert(0, _WINDING[winding[0]])
        fraction = min(fraction, winding[1])
    count = majority_answer(QUESTIONS["spiral-arm-count"], votes)
    label = "spiral arms"
    if count is not None and count[1] >= LIKELY:
        count_words = _ARM_COUNTS[count[0]]
        if count[0] == "1":
            words[-1] = "spiral arm"
        words.insert(0, count_words)
        label = f"{count_words} spiral arm" + ("" if count[0] == "1" else "s")
        fraction = min(fraction, count[1])
    return _Fact(" ".join(words), label, fraction)


def vote_facts(votes: Mapping[str, float]) -> tuple[_Fact | None, list[_Fact]]:
    """(what the object is, further details) from the majority path through the decision tree."""
    main = _main_noun(votes)
    details: list[_Fact] = []
    for question in reachable_questions(votes):
        if question.key == "has-spiral-arms":
            if (spiral := _spiral_fact(votes)) is not None:
                details.append(spiral)
        elif question.multiple_choice:
            for answer in question.answers:
                fraction = votes.get(question.column(answer.key))
                if fraction is not None and fraction >= ODD_FEATURE_MIN_FRACTION and (question.key, answer.key) in _DETAILS:
                    details.append(_Fact(*_DETAILS[(question.key, answer.key)], fraction))
        elif (majority := majority_answer(question, votes)) is not None and (question.key, majority[0]) in _DETAILS:
            details.append(_Fact(*_DETAILS[(question.key, majority[0])], majority[1]))
    return main, details


def comment_features(comments: Sequence[str]) -> list[tuple[str, str, str]]:
    """(phrase, label, stem) of the visible-feature words the comments use, in order of first mention."""
    text = "\n".join(comments)
    hits = [(m.start(), feature[1:]) for feature in _COMMENT_FEATURES if (m := feature[0].search(text))]
    return [feature for _, feature in sorted(hits)]


def _uncertainty(votes: Mapping[str, float], comments: Sequence[str]) -> str:
    # Mean majority fraction along the path; the checkbox question is left out (a feature ticked by
    # a third of volunteers is a minority report, not disagreement about the galaxy).
    fractions = [
        m[1] for q in reachable_questions(votes) if not q.multiple_choice and (m := majority_answer(q, votes)) is not None
    ]
    if fractions:
        mean = sum(fractions) / len(fractions)
        return "low" if mean >= CONFIDENT else "medium" if mean >= LIKELY else "high"
    # Comments only: volunteers' own hedging is the best signal we have.
    return "high" if any(_HEDGE_RE.search(c) for c in comments) else "medium"


def template_summary(subject: Subject) -> dict[str, object]:
    """The summary fields for one subject (same schema as the LLM backends' JSON)."""
    rng = random.Random(f"template:{subject.subject_id}")  # str seeds are hashed with SHA-512: stable
    comments = [c.body for c in subject.comments if c.body and c.body.strip()]
    main, details = vote_facts(subject.votes) if subject.votes else (None, [])
    sentences: list[str] = []
    if main is not None:
        sentences.append(rng.choice(_OPENERS[confidence_level(main.fraction)]).format(x=main.phrase))
    for level in ("confident", "likely", "split"):  # one sentence per agreement level
        phrases = [d.phrase for d in details if confidence_level(d.fraction) == level]
        if phrases:
            sentences.append(rng.choice(_DETAIL_SENTENCES[level]).format(x=join_phrases(phrases)))
    # Hashtags count as mentions of the features they name ("#dustlane"); other tags are not descriptions.
    tag_words = [t.replace("_", " ").replace("-", " ").strip() for t in subject.tags[:MAX_TAGS]]
    said = {d.label for d in details} | ({main.label} if main else set())
    mentioned = [(p, label) for p, label, stem in comment_features([*comments, *tag_words])
                 if not any(stem in s for s in said)]
    if mentioned:
        sentences.append(rng.choice(_MENTIONED_SENTENCES).format(x=join_phrases([p for p, _ in mentioned])))

    features = [main.label] if main is not None and main.fraction >= LIKELY else []
    features += [d.label for d in details if d.fraction >= LIKELY] + [label for _, label in mentioned]
    return {
        "description": " ".join(sentences),
        "visible_features": list(dict.fromkeys(features))[:MAX_FEATURES],
        "uncertainty": _uncertainty(subject.votes, comments),
    }


class TemplateSummariser(Summariser):
    """Deterministic summaries without a model (the default backend)."""

    backend = "template"

    def __init__(self, cache_dir=None, **options) -> None:
        super().__init__(cache_dir, **options)
        self.model = "template-v2"  # bump when the wording changes, so cached outputs are not reused

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        return [json.dumps(template_summary(r.subject), ensure_ascii=False) for r in requests]
