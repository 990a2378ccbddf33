"""Hallucination and refusal in generated descriptions, judged against the labels.

A description "hallucinates" when it asserts a feature the labels contradict: spiral arms where
the volunteers (fraction > threshold) or an expert said there are none, a bar where there is
none, and the opposite denials ("no bar" for a clearly barred galaxy). What a text asserts is
read with the answer parser's phrase tables and negation handling (`answers.py`), so "no sign
of a bar" asserts no bar. Independently, descriptions are flagged for mentioning redshift or
numbers (nothing a volunteer can see in an image) and for refusing.

Refusals reuse the dataset builder's `dataset_builder.summarise.validator.is_refusal`, so a
"refusal" means the same thing in the training data filter and in this report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from dataset_builder.decision_tree import QUESTIONS
from dataset_builder.summarise.validator import is_refusal

from .answers import mentions, normalise
from .samples import EvalSample

DEFAULT_THRESHOLD = 0.8


@dataclass(frozen=True)
class Rule:
    name: str
    question: str
    asserted: str  # the answer the description asserts
    contradicted_by: str  # the answer whose vote fraction > threshold (or expert label) contradicts it


RULES: tuple[Rule, ...] = (
    Rule("spiral arms, none seen", "has-spiral-arms", "yes", "no"),
    Rule("no spiral arms, arms seen", "has-spiral-arms", "no", "yes"),
    Rule("bar, none seen", "bar", "yes", "no"),
    Rule("no bar, bar seen", "bar", "no", "yes"),
    Rule("edge-on, not edge-on", "disk-edge-on", "yes", "no"),
    Rule("merger, none seen", "merging", "merger", "neither"),
    Rule("ring, nothing odd seen", "odd-feature", "ring", "none"),
    Rule("lens or arc, nothing odd seen", "odd-feature", "lens-or-arc", "none"),
)

_REDSHIFT = re.compile(r"\b(?:red|blue)[- ]?shift(?:s|ed)?\b|\bz\s*(?:=|~|≈)\s*\d", re.IGNORECASE)
# Digits, except an arm count ("2 arms", "3 spiral arms"), which is morphology.
_NUMBER = re.compile(r"(?<![\w.])\d++(?:[.,]\d++)?+(?!\s*(?:spiral\s+)?arms?\b)")


def asserted_answers(question_key: str, text: str) -> set[str]:
    """Answers of `question_key` the text asserts: non-negated mentions, and for yes/no
    questions the other answer of a negated mention ("no sign of a bar" -> bar: no)."""
    question = QUESTIONS[question_key]
    binary = len(question.answers) == 2
    asserted = set()
    for _, answer, negated in mentions(question, normalise(text)):
        if not negated:
            asserted.add(answer)
        elif binary:
            asserted.add(next(a.key for a in question.answers if a.key != answer))
    return asserted


def contradicts(rule: Rule, sample: EvalSample, threshold: float) -> bool:
    """Whether the sample's labels contradict `rule.asserted`."""
    question = QUESTIONS[rule.question]
    if rule.question in sample.expert:
        return sample.expert[rule.question] == rule.contradicted_by
    fraction = sample.votes.get(question.column(rule.contradicted_by))
    return fraction is not None and fraction > threshold


def mentions_redshift(text: str) -> bool:
    return bool(_REDSHIFT.search(text))


def mentions_number(text: str) -> bool:
    return bool(_NUMBER.search(text))


def check_description(text: str, sample: EvalSample, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Flags of one generated description: which rules it breaks, redshift, numbers, refusal."""
    broken = [
        rule.name for rule in RULES
        if contradicts(rule, sample, threshold) and rule.asserted in asserted_answers(rule.question, text)
    ]
    return {
        "contradictions": broken,
        "redshift": mentions_redshift(text),
        "number": mentions_number(text),
        "refusal": is_refusal(text),
    }


def hallucination_metrics(texts: Sequence[str], samples: Sequence[EvalSample],
                          threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Shares over descriptions, plus how many descriptions each rule could have caught
    (`checkable`: the labels contradict the rule's assertion) and did (`violations`)."""
    flags = [check_description(t, s, threshold) for t, s in zip(texts, samples)]
    n = len(flags)
    checkable = Counter(rule.name for s in samples for rule in RULES if contradicts(rule, s, threshold))
    violations = Counter(name for f in flags for name in f["contradictions"])
    share = (lambda k: sum(bool(f[k]) for f in flags) / n) if n else (lambda k: float("nan"))
    return {
        "n": n,
        "threshold": threshold,
        "contradiction_rate": share("contradictions"),
        "redshift_rate": share("redshift"),
        "number_rate": share("number"),
        "refusal_rate": share("refusal"),
        "rules": {rule.name: {"checkable": checkable.get(rule.name, 0), "violations": violations.get(rule.name, 0)}
                  for rule in RULES},
        "per_sample": flags,
    }
