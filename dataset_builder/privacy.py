"""Volunteer identities and secrets out of everything the builder writes: the patterns, and the final pass.

Three jobs, one place:

- `scrub_identities(text)`: remove the forms in which a volunteer can be identified from free text:
  e-mail addresses (also `alice@localhost` and `carol [at] example [dot] com`), @mentions (also
  `@ SpacedUser`), signatures (`-- DrHubbleFan`, `~Name`, `Cheers, Jane Smith`), self-introductions
  (`my name is Jane Smith`), profile URLs (`zooniverse.org/users/<login>`) and phone numbers. The
  cleaner runs it on every comment, the summariser on every generated summary.
- `Scrubber`: the same patterns plus the identities the Talk export itself carries (logins, user ids,
  display names: `identities_from_export`), matched as whole tokens. The build reads them once, before
  ingest: the cleaner removes them from every comment and its hashtags (`clean_comment(..., known=)`),
  so a volunteer named without an "@" never reaches a summariser's prompt; `scrub_outputs.finalise_outputs` runs it over
  every text a build wrote (parquet rows, rejects.jsonl, build_stats.json, reports/, README.md) after
  everything else, so a form that got past the cleaner and the summariser is still removed, and counted.
- `redact_secrets(text)`: user-info, tokens and keys in URLs and command lines (`http://user:pw@host`,
  `?api_key=...`, `--token ...`, `hf_...`, `sk-...`, `Bearer ...`), for the recorded command line and
  every log record (`install_log_redaction`); they live in `dataset_builder.redaction`, shared with the model card.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .redaction import RedactingFilter, install_log_redaction, redact_secrets, split_url_credentials  # noqa: F401

logger = logging.getLogger(__name__)

# --- identity patterns --------------------------------------------------------------------------

# A profile page: any URL (scheme optional) whose path has a users/ (or u/, profile/, people/) segment.
_PROFILE_URL = re.compile(
    r"(?:\b[a-z][a-z0-9+.-]*://)?(?:[\w-]+\.)+[a-z]{2,}(?::\d+)?(?:/[^\s/]+)*?"
    r"/(?:users?|u|profile|profiles|people|members)/[^\s<>()\[\]\"']+",
    re.I,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*")  # no dot needed: "alice@localhost"
_AT_WORD = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+)"
# "at ... dot <tld>" in plain words needs a real top-level domain ("look at the dot in the middle" is not one).
_TLD = r"(?:com|org|net|edu|gov|mil|int|info|io|co|ac|uk|de|fr|nl|es|au|ca|ch|se|no|dk|fi|jp|ru|pl|br|cn|eu)\b"
_DOT_WORD = r"(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+)"
# "carol [at] example [dot] com", "carol at example dot com", "carol (at) example.org"
_OBFUSCATED_EMAIL = re.compile(
    r"[\w.+-]+\s*[\[({<]\s*at\s*[\])}>]\s*[\w-]+(?:(?:" + _DOT_WORD + r"|\.)[\w-]+)*"
    r"|[\w.+-]+" + _AT_WORD + r"[\w-]+(?:(?:" + _DOT_WORD + r"|\.)[\w-]+)*" + _DOT_WORD + _TLD,
    re.I,
)
# "@name", "@name's": Talk logins are letters, digits, "_", "-" and ".".
# Not "@article{key," (a BibTeX entry, as in the card's citation), nor the host after a redacted
# "http://***@" (redact_secrets).
_MENTION = re.compile(r"(?<![\w@*])@\w+(?:[.-]\w+)*(?![\w{])(?:['\u2019]s\b)?")
# "@ SpacedUser": a mention with a space; only a login-like word (a capital, digit or "_"), so that
# "look @ the arm" keeps its words.
_SPACED_MENTION = re.compile(r"(?<![\w@])@[ \t]+(?=[\w.-]*[A-Z0-9_])[A-Za-z][\w.-]*(?:['\u2019]s\b)?")
_NAME = r"[A-Za-z][\w.'-]*(?:[ \t]+[A-Z][\w.'-]*){0,2}"
# A login: CamelCase ("DrHubbleFan") or with a digit or "_" ("Stargazer_99").
_LOGIN = r"(?:[A-Za-z][\w.-]*[\d_][\w.-]*|[A-Z]?[a-z]+(?:[A-Z][a-z0-9]+)+)"
# A signature closing a line: "~Stargazer_99" (a name starts with a letter: "~5 arcsec" is not one);
# "-- Jane Smith" on a line of its own; "... -- DrHubbleFan" after text only when it is login-like
# ("Star -- White Dwarf" is a volunteer's classification, not a signature).
_SIGNATURE = re.compile(
    r"(?:^|(?<=\s))~{1,3}[ \t]?" + _NAME + r"[ \t]*$"
    r"|^[ \t]*(?:-{2,3}|[\u2013\u2014])[ \t]?" + _NAME + r"[ \t]*$"
    r"|(?<=\s)(?:-{2,3}|[\u2013\u2014])[ \t]?" + _LOGIN + r"[ \t]*$",
    re.M,
)
# "Cheers, Jane Smith" / "Thanks,\nAlice" closing a comment (a name has a lower-case letter: "Thanks :D" is not one).
_CLOSING = re.compile(
    r"(?:^|(?<=[\s.!]))(?i:cheers|regards|kind regards|best regards|best wishes|best|thanks|thank you|many thanks|"
    r"yours|sincerely|signed)[ \t]*[,!.:-]?[ \t]*\n?[ \t]*(?=[\w.'-]*[a-z])[A-Z][\w.'-]+(?:[ \t]+[A-Z][\w.'-]*){0,2}[ \t]*$",
)
_NAME_INTRO = re.compile(r"\b(?i:my name is|my name's|i am called|call me)[ \t]+[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*){0,2}")
# Phone numbers: optional +country and (area), then 2-4 digit groups split by spaces, dots or hyphens.
_PHONE = re.compile(
    r"(?<![\w.+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w]|[.-]\d)"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SEVEN_DIGITS = re.compile(r"\d(?:[ ()+.-]{0,2}\d){6}")  # cheap test before _PHONE: 7 digits, few separators
_PROFILE_HINT = re.compile(r"/(?:users?|u|profiles?|people|members)/", re.I)
_CLOSING_HINT = re.compile(r"cheers|regards|best|thank|yours|sincerely|signed")


def _is_phone(match: re.Match[str]) -> bool:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15 or _DATE.match(text):
        return False
    groups = re.findall(r"\d+", text)
    separators = set(re.findall(r"\d([ .-])\d", text))
    if "." in separators and (separators != {"."} or len(groups) < 3):
        return False  # a decimal ("213.6737", "13.2417-01" coordinates), not a phone number
    if text.startswith(("+", "(")) or len(groups) >= 3:
        return True
    # two groups: "555-1234" is a local number; "1998-2005" and "2013 2016" are years
    return len(groups[0]) == 3 and len(groups[1]) == 4


def _sub_phones(text: str) -> str:
    return _PHONE.sub(lambda m: " " if _is_phone(m) else m.group(0), text)


def scrub_identities(text: str) -> str:
    """`text` without e-mails, mentions, signatures, self-introductions, profile URLs and phone numbers.

    Each form becomes a space (the cleaner tidies whitespace afterwards). Pure and deterministic; cheap
    substring tests skip the patterns that cannot match, as most comments contain none of them.
    """
    if "/" in text and _PROFILE_HINT.search(text):
        text = _PROFILE_URL.sub(" ", text)
    if "@" in text:
        text = _EMAIL.sub(" ", text)
        text = _MENTION.sub(" ", _SPACED_MENTION.sub(" ", text))
    lower = text.lower()
    if "dot" in lower or "[at]" in lower or "(at)" in lower or "{at}" in lower or "<at>" in lower:
        text = _OBFUSCATED_EMAIL.sub(" ", text)
    if "~" in text or "--" in text or "\u2013" in text or "\u2014" in text:
        text = _SIGNATURE.sub(" ", text)
    if _CLOSING_HINT.search(lower):
        text = _CLOSING.sub(" ", text)
    if "name" in lower or "call" in lower:
        text = _NAME_INTRO.sub(" ", text)
    if _SEVEN_DIGITS.search(text):
        text = _sub_phones(text)
    return text


# --- known identities (from the export) -----------------------------------------------------------

# Columns of a Talk export that name or identify a volunteer ("comment_user_id", "comment_user_login",
# "user_id", "user_login", "author", "display_name", ...). Their values are read to be removed, never kept.
_IDENTITY_COLUMN = re.compile(r"(?:^|_)(?:user|users|login|username|author|display_name|real_name|full_name)(?:_|$)", re.I)
_TOKEN = re.compile(r"[\w][\w.-]*[\w]|[\w]")  # "alice's" -> "alice", "s"
MIN_IDENTITY_CHARS = 3
MIN_NUMERIC_ID_DIGITS = 5  # shorter numbers are counts, not ids


def is_identity_column(name: str) -> bool:
    return bool(_IDENTITY_COLUMN.search(str(name))) and not str(name).lower().endswith(("_count", "_counts"))


def _builder_vocabulary() -> frozenset[str]:
    """Words the builder itself writes (decision-tree questions and answers): a login equal to one of
    them ("spiral") cannot be told apart from the word, so it is not treated as an identity."""
    from . import decision_tree

    words: set[str] = set()
    for key in decision_tree.topological_order():
        question = decision_tree.get_question(key)
        for text in (question.title, question.text, *(a.label for a in question.answers), *(a.key for a in question.answers)):
            words.update(t.lower() for t in _TOKEN.findall(text))
    return frozenset(words)


def _identity_tokens(value: Any, vocabulary: frozenset[str]) -> set[str]:
    if value is None or isinstance(value, bool):
        return set()
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    text = text.strip().lstrip("@").lower()
    if len(text) < MIN_IDENTITY_CHARS or text in ("nan", "none", "null"):
        return set()
    if text.isdigit() and len(text) < MIN_NUMERIC_ID_DIGITS:
        return set()
    parts = _TOKEN.findall(text)
    if len(parts) == 1:  # a login or id: matched as a whole token
        return {text} if parts[0] == text and text not in vocabulary else set()
    # A display name "Jane Smith" (or "o'brien"): its parts of 4+ letters that are not words we write.
    return {p for p in parts if len(p) >= 4 and p not in vocabulary and not p.isdigit()}


# Mention targets that are not one volunteer ("@everyone"); they stay words.
_GROUP_MENTIONS = frozenset(("everyone", "everybody", "all", "team", "moderators", "mods", "scientists",
                             "researchers", "volunteers", "admins", "here", "you", "guys", "folks"))
_LOGIN_LIKE = re.compile(_LOGIN)


def _mentioned_logins(body: str, vocabulary: frozenset[str]) -> set[str]:
    """Logins named by @mentions in a comment: a login that is mentioned once is an identity everywhere
    ("@JuggoVuggo ..." in one comment, "thanks JuggoVuggo" in another). Only login-like names
    (CamelCase, a digit or "_", or 8+ characters), so that "@team" does not remove the word "team"."""
    found = set()
    for match in _MENTION.finditer(body):
        name = re.sub(r"['\u2019]s$", "", match.group(0)[1:])
        lower = name.lower()
        if lower in _GROUP_MENTIONS or lower in vocabulary or len(name) < MIN_IDENTITY_CHARS:
            continue
        if _LOGIN_LIKE.fullmatch(name) or len(name) >= 8:
            found.add(lower)
    return found


def identities_from_export(*paths: Path | None) -> set[str]:
    """Lowercased identity tokens in Talk exports: the values of their identity columns (logins, user
    ids, names) and the logins their comments @mention.

    Reads the files again (streaming, the same reader as the build); the values are only held in this
    set, for the final pass, and are never written anywhere.
    """
    from .talk import iter_export_rows

    vocabulary = _builder_vocabulary()
    identities: set[str] = set()
    for path in paths:
        if path is None or not Path(path).is_file():
            continue
        columns: list[str] | None = None
        for row in iter_export_rows(Path(path)):
            if columns is None:
                columns = [c for c in row if is_identity_column(c)]
            for column in columns:
                identities |= _identity_tokens(row.get(column), vocabulary)
            body = row.get("comment_body")
            if isinstance(body, str) and "@" in body:
                identities |= _mentioned_logins(body, vocabulary)
    return identities


class Scrubber:
    """`scrub_identities` plus whole-token removal of known identities; counts what it removed."""

    def __init__(self, identities: Iterable[str] = (), replacement: str = " ") -> None:
        self.identities = frozenset(i.lower() for i in identities)
        self.replacement = replacement
        self.redactions = 0

    def _known(self, text: str) -> str:
        if not self.identities or self.identities.isdisjoint(_TOKEN.findall(text.lower())):
            return text  # the common case, without a Python call per token
        return _TOKEN.sub(lambda m: self.replacement if m.group(0).lower() in self.identities else m.group(0), text)

    def remove_known(self, text: str) -> str:
        """`text` without the known identities only (whole tokens); counted when something went."""
        out = self._known(text) if text else text
        if out != text:
            self.redactions += 1
        return out

    def needs(self, text: str) -> bool:
        return self.scrub(text, count=False) != text

    def scrub(self, text: str, *, count: bool = True) -> str:
        if not text:
            return text
        out = scrub_identities(self._known(text))
        if out != text:
            out = re.sub(r"[ \t]{2,}", " ", out).strip(" \t") if self.replacement == " " else out
            if count:
                self.redactions += 1
        return out

    def scrub_json(self, value: Any) -> Any:
        """Every string (and key) of a JSON value scrubbed; numbers and structure unchanged."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub_json(v) for k, v in value.items()}
        return value
