"""Reject generated text that refuses, or that adds facts the volunteers' comments cannot support.

Volunteers see one image: they can report shape, arms, bars, rings, colours, neighbours. They
cannot see a redshift, a distance or a catalogue name, and a language model asked to summarise
them will happily invent all three (or refuse: the hackathon that started this project found
about 40% of its generated Q&A saying "there is not enough information"). Every rule below is
checked against the source text (comments, hashtags, vote answers): what the source says, the
summary may repeat.

`validate_summary` returns None when the text is fine, else a short reason such as "refusal",
"adds a number", "mentions redshift", "names an object", "mentions distance", "contains a URL",
"contains a placeholder", "repetitive" or "empty". Reasons never quote the text they reject: a
rejected summary may echo what a volunteer wrote (a profile URL, a name), and reasons are published
in rejects.jsonl, the report and the build stats. The curation stage runs it on every generated answer too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# ----------------------------------------------------------------------------------- refusals
# Phrases of a model declining or complaining about its input. Human hedges ("not sure",
# "cannot tell what it is", "sorry, but that is a star") are NOT refusals: a volunteer's doubt
# is information. `benchmarks/validator_talk_flags.py` counts what these match in real comments.
_REFUSAL_PATTERNS = [
    r"\b(?:not|isn't|is not|aren't|are not) (?:enough|sufficient) (?:information|detail|details|data|context)",
    r"\binsufficient (?:information|detail|details|data|context)",
    r"\b(?:lack|lacks|lacking) (?:of )?(?:sufficient |enough )?(?:information|context)\b",  # "lacks detail" describes an image
    r"\b(?:cannot|can't|can ?not|unable to|not possible to|impossible to|not able to) (?:be )?(?:determine|determined|ascertain|provide|answer|summari[sz]e|summari[sz]ed|assess|infer|confirm|verify)\b",
    r"\b(?:i'm|i am) (?:sorry|afraid),? (?:but )?(?:i|there|the|without|this|as)\b",
    r"\bi apologi[sz]e(?:,? but\b| for (?:the|any) confusion)",
    r"\bas an (?:ai|a\.i\.|artificial intelligence|language model|assistant)\b",
    r"\bi (?:don't|do not|cannot|can't) (?:have|access|see|view) (?:access to )?(?:the |any |an )?(?:image|images|picture|information|enough)",
    r"\b(?:no|without) (?:further |additional |more |specific |sufficient |any )?(?:information|details|data|context|description|comments)"
    r" (?:is |are |was |were )?(?:provided|available|given|supplied)",
    r"\b(?:the )?(?:comments?|text|description|input|data|volunteers?) (?:do|does|did) not (?:provide|mention|contain|include|specify|describe|give|say)\b",
    r"\b(?:is|are) not (?:mentioned|specified|provided|described|given|stated) in the (?:comments?|text|input|description|data)\b",
    r"\bbased on the (?:limited|available) (?:information|comments|text)\b.{0,40}\b(?:cannot|can't|unable|not possible)\b",
]
_REFUSAL_RE = re.compile("|".join(f"(?:{p})" for p in _REFUSAL_PATTERNS), re.IGNORECASE)
# A whole answer that is only a placeholder.
_PLACEHOLDERS = {"n/a", "na", "none", "null", "unknown", "not available", "no information", "not applicable", "-", "?"}


def is_refusal(text: str) -> bool:
    """True when `text` declines to answer or only complains about missing information."""
    stripped = _normalise_space(text).strip(" .!\"'").casefold()
    # Apostrophes come in typographic form too ("can’t").
    return stripped in _PLACEHOLDERS or bool(_REFUSAL_RE.search(text.replace("\u2019", "'")))


# ------------------------------------------------------------------------ unsupported facts
_URL_RE = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|org|net|edu|gov)(?:/\S*)?\b", re.IGNORECASE)
# Template slots and citations a model leaves in ("[link]", "[Your Name]", "[1]"); a markdown link
# "[text](url)" is caught by the URL rule instead.
_PLACEHOLDER_RE = re.compile(r"\[[^\[\]\n]{1,40}\](?!\()|\{\{?\s*\w+\s*\}?\}|<(?:insert|your|name)[^>]{0,30}>", re.IGNORECASE)
_REDSHIFT_RE = re.compile(
    r"\b(?:red|blue)[- ]?shift(?:s|ed)?\b|\bz\s*(?:=|~|≈|of)\s*\d|\b(?:photometric|spectroscopic) z\b", re.IGNORECASE
)
_DISTANCE_RE = re.compile(
    r"\bdistan(?:ce|ces|t)\b|\blight[- ]?years?\b|\b(?:mega|kilo|giga)?parsecs?\b|(?-i:\b[kMG]?pc\b)|\bfar away\b"
    r"|\b(?:close|near|far) (?:to|from) (?:us|earth|the milky way)\b|\baway from (?:us|earth)\b",
    re.IGNORECASE,
)
# Catalogue designations (NGC 1300, M 51, UGC 12591, SDSS J1552+4338, Arp 273, ...) and the
# nicknames of famous galaxies a model likes to compare with.
_CATALOGUE_RE = re.compile(
    r"\b(?i:NGC|IC|UGC|PGC|MCG|ESO|Arp|Abell|Messier|SDSS|2MASS|WISEA?|LEDA|Mrk|Markarian|Hickson|HCG|CGCG|VV|Zw)"
    r"\s?[-J]?\s?\d+(?:[.+:\-]\d+)*(?:[A-Z]\b)?"
    r"|\bM\s?\d{1,3}\b",
)
_FAMOUS_NAMES = (
    "andromeda", "milky way", "whirlpool", "sombrero", "pinwheel", "triangulum", "cartwheel", "antennae",
    "hoag's object", "magellanic", "tadpole galaxy", "mice galaxies", "black eye", "sunflower galaxy",
    "cigar galaxy", "stephan's quintet", "einstein cross", "cosmic horseshoe", "bullet cluster",
    "ring nebula", "crab nebula", "orion nebula", "pleiades",
    # Solar-system bodies: small models compare rings to Saturn's.
    "saturn", "jupiter", "mars", "venus", "neptune", "uranus", "pluto",
)
_FAMOUS_RE = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in _FAMOUS_NAMES) + r")\b", re.IGNORECASE)

# Numbers: digits (thousands separators removed, "2nd" -> "2") and the number words a summary uses
# for counts. "one" is left out: it is mostly a pronoun ("one of the arms").
_DIGITS_RE = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
    "hundred": 100, "hundreds": 100, "thousand": 1000, "thousands": 1000, "million": 10**6, "millions": 10**6,
    "billion": 10**9, "billions": 10**9, "dozen": 12, "dozens": 12,
}
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def _normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _compact(text: str) -> str:
    """Case- and space-insensitive form for name look-ups ("NGC 1300" ~ "ngc1300")."""
    return re.sub(r"[\s\-]+", "", text).casefold()


def _number_values(text: str) -> list[tuple[str, float]]:
    """(as written, value) for every number in `text`, digits and number words."""
    found = [(m.group(0), float(m.group(0).replace(",", ""))) for m in _DIGITS_RE.finditer(text)]
    found += [(m.group(1), float(_NUMBER_WORDS[m.group(1).casefold()])) for m in _NUMBER_WORD_RE.finditer(text)]
    return found


def _unsupported_number(summary: str, source: str) -> str | None:
    supported = {value for _, value in _number_values(source)}
    for written, value in _number_values(summary):
        if value not in supported:
            return written
    return None


def _unsupported_name(summary: str, source: str) -> str | None:
    source_compact = _compact(source)
    for match in _CATALOGUE_RE.finditer(summary):
        if _compact(match.group(0)) not in source_compact:
            return match.group(0).strip()
    for match in _FAMOUS_RE.finditer(summary):
        if match.group(0).casefold() not in source.casefold():
            return match.group(0)
    return None


def is_repetitive(text: str) -> bool:
    """True for degenerate loops ("It has a bar. It has a bar. It has a bar..."), common in small LMs.

    Fewer than half of the word 4-grams distinct, over a text long enough (>= 20 of them) to judge.
    """
    words = re.findall(r"\w+", _URL_RE.sub(" ", text).casefold())
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(grams) >= 20 and len(set(grams)) < 0.5 * len(grams)


def _rule(pattern: re.Pattern[str], reason: str) -> Callable[[str, str], str | None]:
    """A topic the summary may mention only when the source does."""

    def check(summary: str, source: str) -> str | None:
        return reason if pattern.search(summary) and not pattern.search(source) else None

    return check


_TOPIC_RULES = (_rule(_REDSHIFT_RE, "mentions redshift"), _rule(_DISTANCE_RE, "mentions distance"))


def validate_summary(summary_text: str, source_text: str) -> str | None:
    """None if `summary_text` only says what `source_text` can support, else the reason.

    summary_text: the generated text (a description, its features, or any generated answer).
    source_text: what the volunteers wrote and voted (see `base.summary_source_text`).
    """
    if not summary_text or not re.search(r"[^\W\d_]", summary_text):
        return "empty"
    if is_refusal(summary_text):
        return "refusal"
    if is_repetitive(summary_text):
        return "repetitive"
    if _URL_RE.search(summary_text):
        return "contains a URL"
    for slot in _PLACEHOLDER_RE.finditer(summary_text):
        if slot.group(0) not in source_text:  # a volunteer's own "[sic]" may be quoted
            return "contains a placeholder"
    for check in _TOPIC_RULES:
        if reason := check(summary_text, source_text):
            return reason
    if _unsupported_name(summary_text, source_text):
        return "names an object"
    # Designations were judged as names above; their digits are not counts.
    if _unsupported_number(_CATALOGUE_RE.sub(" ", summary_text), _CATALOGUE_RE.sub(" ", source_text)):
        return "adds a number"
    return None
