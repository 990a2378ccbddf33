"""Reading a model's answer to a decision-tree question, two ways.

1. `parse_answer(question, text)`: free text -> answer key, robust to how models phrase things:
   the dataset's own format ("Features or disk — most volunteers (85%) ..."), answer keys and
   labels, synonyms ("barred", "edge-on", "tightly wound"), negations ("there is no sign of a
   bar", "not edge-on"), and numbers in words ("two arms", "more than four").
2. `candidate_probabilities(scores)`: the likelihood route, no parsing: the model scores every
   answer label (`LlavaEvaluator.score_candidates`, its default `reduction="sum"`: log P(label), not its mean
   per token, which would favour a many-token label such as "Features or disk" over "Smooth") and a
   softmax over the candidates gives a probability per answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dataset_builder.decision_tree import QUESTIONS, Question

# Extra phrases per answer, beyond the website label and the catalogue key. Matched on whole
# words after normalisation (lowercase, hyphens as spaces, number words as digits).
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "smooth-or-featured": {
        "smooth": ("smooth", "featureless", "no features", "elliptical"),
        "featured-or-disk": ("features", "featured", "disk", "disc", "spiral", "barred"),
        "artifact": ("star", "artifact", "artefact", "not a galaxy", "image artifact"),
    },
    "disk-edge-on": {
        "yes": ("edge on", "seen edge on", "viewed edge on", "side on"),
        "no": ("face on", "not edge on", "inclined"),
    },
    "bar": {
        "yes": ("bar", "barred", "a bar", "bar feature"),
        "no": ("no bar", "unbarred", "not barred", "without a bar", "bar is absent"),
    },
    "has-spiral-arms": {
        "yes": ("spiral", "spiral arms", "spiral arm", "arms", "spiral pattern", "spiral structure"),
        "no": ("no spiral", "no spiral arms", "no arms", "not spiral"),
    },
    "bulge-size": {
        "no": ("no bulge", "bulgeless", "without a bulge", "none"),
        "obvious": ("obvious", "noticeable", "moderate", "clear bulge", "visible bulge"),
        "dominant": ("dominant", "dominates", "dominating", "large bulge", "huge bulge"),
    },
    "spiral-winding": {
        "tight": ("tight", "tightly", "tightly wound"),
        "medium": ("medium", "moderately", "moderately wound", "intermediate"),
        "loose": ("loose", "loosely", "loosely wound", "open arms", "open"),
    },
    "spiral-arm-count": {
        "1": ("1", "1 arm", "single arm", "one arm"),
        "2": ("2", "2 arms"),
        "3": ("3", "3 arms"),
        "4": ("4", "4 arms"),
        "more-than-4": ("more than 4", "over 4", "5", "6", "7", "8", "9", "10", "many arms", "lots of arms", "more"),
    },
    "edge-on-bulge": {
        "rounded": ("rounded", "round", "round bulge", "rounded bulge"),
        "boxy": ("boxy", "box", "box shaped", "peanut", "boxy bulge"),
        "none": ("no bulge", "bulgeless", "without a bulge", "none"),
    },
    "how-rounded": {
        "completely": ("completely round", "round", "circular", "perfectly round"),
        "in-between": ("in between", "in-between", "somewhat", "oval", "slightly elongated", "between"),
        "cigar-shaped": ("cigar shaped", "cigar", "elongated", "very elongated", "needle"),
    },
    "merging": {
        "merger": ("merging", "merger", "mergers", "interacting", "colliding"),
        "tidal-debris": ("tidal debris", "tidal", "debris", "tidal tail", "tidal tails", "tidal features"),
        "both": ("both",),
        "neither": ("neither", "no merger", "not merging", "no sign of merging", "isolated", "none"),
    },
    "odd-feature": {
        "none": ("none", "nothing", "nothing odd", "no odd features", "nothing unusual", "no odd feature"),
        "ring": ("ring", "ring galaxy", "ringed"),
        "lens-or-arc": ("lens or arc", "lens", "arc", "gravitational lens", "lensed"),
        "irregular": ("irregular",),
        "other": ("other", "something else"),
        "dust-lane": ("dust lane", "dust", "dusty"),
        "overlapping": ("overlapping", "overlap", "overlaps", "foreground star", "projected"),
    },
}

NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "single": "single",
}
NEGATIONS = {"no", "not", "cannot", "without", "never", "lacks", "lacking", "lack", "absent", "nor"}
# words that may stand between a negation and what it negates ("no clear sign of a bar")
FILLERS = {"sign", "signs", "of", "a", "an", "the", "any", "clear", "obvious", "visible", "evidence", "real",
           "there", "is", "are", "has", "have", "it", "this", "galaxy", "really", "strong", "apparent",
           "see", "seen", "detect", "find", "identify", "show", "shows", "display", "appear", "appears",
           "seem", "seems", "to", "be", "does", "do", "i", "can", "any", "clearly"}
# bare "yes"/"no" only answer the question when the reply starts with them
LEADING_ONLY = {("yes",), ("no",)}
CLAUSE_BREAKS = {".", ",", ";", ":", "!", "?", "but", "though", "although", "however", "—", "(", ")"}
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?|%|[.,;:!?()—]")


def normalise(text: str) -> list[str]:
    """Lowercase word tokens, hyphens split, "n't" -> "not", number words -> digits."""
    text = text.lower().replace("’", "'").replace("–", "—").replace(" - ", " — ")
    text = re.sub(r"n't\b", " not", text)
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)  # edge-on -> edge on
    return [NUMBER_WORDS.get(t, t) for t in _TOKEN.findall(text)]


@dataclass(frozen=True)
class _Phrase:
    tokens: tuple[str, ...]
    answer: str

    @property
    def leading_only(self) -> bool:
        return self.tokens in LEADING_ONLY


def _phrases(question: Question) -> list[_Phrase]:
    extra = SYNONYMS.get(question.key, {})
    phrases = set()
    for answer in question.answers:
        for text in (answer.label, answer.key, *extra.get(answer.key, ())):
            tokens = tuple(normalise(text))
            if tokens:
                phrases.add(_Phrase(tokens, answer.key))
    # longest first, so "no bar" wins over "bar" and "more than 4" over "4"
    return sorted(phrases, key=lambda p: (-len(p.tokens), p.tokens, p.answer))


_PHRASE_CACHE: dict[str, list[_Phrase]] = {}


def _phrases_for(question: Question) -> list[_Phrase]:
    if question.key not in _PHRASE_CACHE:
        _PHRASE_CACHE[question.key] = _phrases(question)
    return _PHRASE_CACHE[question.key]


def _negated(tokens: list[str], start: int) -> bool:
    """Whether a negation governs the phrase starting at `start` (looking back within the clause)."""
    i = start - 1
    while i >= 0 and start - i <= 6:
        token = tokens[i]
        if token in CLAUSE_BREAKS:
            return False
        if token in NEGATIONS:
            return True
        if token not in FILLERS:
            return False
        i -= 1
    return False


def mentions(question: Question, tokens: list[str]) -> list[tuple[int, str, bool]]:
    """(position, answer key, negated) for every phrase found, longest match at each position."""
    phrases = _phrases_for(question)
    found, i = [], 0
    while i < len(tokens):
        for phrase in phrases:
            n = len(phrase.tokens)
            if tuple(tokens[i: i + n]) != phrase.tokens or (phrase.leading_only and i > 0):
                continue
            if phrase.tokens[-1].isdigit() and i + n < len(tokens) and tokens[i + n] == "%":
                continue  # "85%" is a vote share, not an arm count
            found.append((i, phrase.answer, _negated(tokens, i)))
            i += n
            break
        else:
            i += 1
    return found


def parse_answer(question: Question | str, text: str) -> str | None:
    """The answer key that `text` gives to `question`, or None when it gives none.

    Order of evidence: the answer the text starts with (the dataset's own answers start with
    the label), then the earliest mention in the text that is not negated. A negated mention
    in a two-answer question counts as the other answer ("not edge-on" -> "no").
    """
    if isinstance(question, str):
        question = QUESTIONS[question]
    tokens = normalise(text)
    if not tokens:
        return None
    # drop a leading "answer:" that some models add
    if tokens[:2] in (["answer", ":"], ["a", ":"]):
        tokens = tokens[2:]
    found = mentions(question, tokens)
    binary = len(question.answers) == 2
    for position, answer, negated in found:
        if not negated:
            return answer
        if binary:
            return next(a.key for a in question.answers if a.key != answer)
    return None


def candidate_texts(question: Question | str) -> list[str]:
    """What the likelihood route scores: each answer's website label, in tree order."""
    if isinstance(question, str):
        question = QUESTIONS[question]
    return [a.label for a in question.answers]


def candidate_probabilities(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over candidates of their log-likelihoods: (n, K) -> (n, K), rows sum to 1."""
    scores = np.asarray(scores, dtype=np.float64) / temperature
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def question_prompt(question: Question | str) -> str:
    """The question put to the model when the evaluation set does not supply its own wording."""
    if isinstance(question, str):
        question = QUESTIONS[question]
    options = ", ".join(a.label for a in question.answers)
    if question.multiple_choice:
        return f"{question.text} Answer with the most prominent of: {options}."
    return f"{question.text} Answer with one of: {options}."
