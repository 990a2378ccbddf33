"""Curation of instruction rows: duplicates, length bounds, the summary validator, and the split.

Rows stream through a `Curator` one at a time (`curator.check(row, ...)` returns `None` to keep the
row or a `Reject` with the reason), so memory holds only compact fingerprints of the rows kept so
far, never the rows themselves:

- exact duplicates: the same image (content hash) with the same conversation;
- near duplicates (free-text configs): MinHash over word 3-shingles with LSH banding (`minhash.py`), and a row is
  dropped when its estimated Jaccard similarity to a kept row reaches `near_duplicate_threshold`.
  Volunteers paste the same boiler-plate ("#spiral nice one!") onto many subjects; an instruction set
  that repeats one answer for many images teaches the model to ignore the image;
- length bounds on the assistant text (in words), per config;
- the summary validator (`dataset_builder.summarise.validate_summary`) for rows built from a summary.

The split is a pure function of the subject id (`split_for`), so it is deterministic, needs no state,
and a subject lands in the same split in every config: no galaxy seen in training is evaluated on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .minhash import MinHasher, NearDuplicateIndex, band_keys
from .records import Reject

SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SALT = "gz-talk-instruct"


# ---------------------------------------------------------------------------------------------- split
def parse_split_fractions(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> (0.8, 0.1, 0.1); three non-negative numbers that add up to 1."""
    try:
        parts = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--split {text!r}: expected three numbers like 0.8,0.1,0.1") from None
    return check_split_fractions(parts)


def check_split_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"split fractions {tuple(fractions)}: expected three non-negative numbers "
            "(train, validation, test) that add up to 1"
        )
    return (float(fractions[0]), float(fractions[1]), float(fractions[2]))


def split_for(subject_id: str, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS, salt: str = SPLIT_SALT) -> str:
    """The split of one subject: a hash of its id mapped to [0, 1) and cut at the fractions.

    A hash rather than a shuffle: it needs no global state (rows stream), does not depend on the order
    or the number of subjects (adding galaxies later never moves an existing one to another split),
    and is the same in every config.
    """
    digest = hashlib.sha256(f"{salt}:{subject_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    train, validation, _ = fractions
    if position < train:
        return "train"
    if position < train + validation:
        return "validation"
    return "test"


# ------------------------------------------------------------------------------------------- text
def message_texts(row: dict[str, Any], role: str) -> list[str]:
    """The text blocks of every turn of `role` in a row's `messages`."""
    return [
        block["text"]
        for message in row["messages"]
        if message["role"] == role
        for block in message["content"]
        if block["type"] == "text" and block.get("text")
    ]


def assistant_text(row: dict[str, Any]) -> str:
    return "\n".join(message_texts(row, "assistant"))


# -------------------------------------------------------------------------------------- curator
@dataclass(frozen=True)
class LengthBounds:
    """Bounds on the assistant text of a row, in words."""

    min_words: int
    max_words: int

    def check(self, text: str) -> str | None:
        words = len(text.split())
        if words < self.min_words:
            return f"assistant text too short: {words} words < {self.min_words}"
        if words > self.max_words:
            return f"assistant text too long: {words} words > {self.max_words}"
        return None


DEFAULT_LENGTH_BOUNDS: dict[str, LengthBounds] = {
    "description": LengthBounds(min_words=5, max_words=400),
    "conversation": LengthBounds(min_words=8, max_words=800),
    # decision-tree answers are generated from a fixed pool: bounds only catch a broken template.
    "decision_tree": LengthBounds(min_words=1, max_words=400),  # the multi-turn walk: ~10 answers
}

# Configs whose assistant text is free text derived from volunteers' comments: near-duplicates there
# are boiler-plate. Decision-tree answers come from a small phrase pool by design, so only exact
# duplicates (same image, same Q&A) are removed there.
NEAR_DUPLICATE_CONFIGS = ("description", "conversation")

SummaryValidator = Callable[[str, str], "str | None"]


@dataclass
class CurationStats:
    kept: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> reason kind -> count

    def count_kept(self, config: str) -> None:
        self.kept[config] = self.kept.get(config, 0) + 1

    def count_rejected(self, config: str, kind: str) -> None:
        per_config = self.rejected.setdefault(config, {})
        per_config[kind] = per_config.get(kind, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"kept": dict(self.kept), "rejected": {k: dict(v) for k, v in self.rejected.items()}}


@dataclass
class RowFingerprint:
    """What the curator needs to know about a row, computed without any state (so: in a worker)."""

    problem: tuple[str, str] | None  # (reason, kind) when the row fails on its own: length, validator
    exact: bytes  # hash of (image, conversation)
    signature: np.ndarray | None  # MinHash of the assistant text, for near-duplicate configs
    band_keys: list[int] | None = None  # its LSH band keys


class RowFingerprinter:
    """The stateless half of curation: length bounds, the validator, duplicate fingerprints.

    Picklable, and the same in every process (the MinHash permutations come from a fixed seed).
    """

    def __init__(
        self,
        *,
        near_duplicate_configs: Sequence[str] = NEAR_DUPLICATE_CONFIGS,
        length_bounds: dict[str, LengthBounds] | None = None,
        validator: SummaryValidator | None = None,
        hasher: MinHasher | None = None,
        bands: int = 16,
        rows_per_band: int = 4,
    ) -> None:
        self.near_duplicate_configs = tuple(near_duplicate_configs)
        self.bands, self.rows_per_band = bands, rows_per_band
        self.length_bounds = {**DEFAULT_LENGTH_BOUNDS, **(length_bounds or {})}
        self.validator = validator
        self.hasher = hasher or MinHasher()
        self._last_validation: tuple[str, str, str | None] | None = None  # a subject's rows share one summary

    def __call__(
        self,
        config: str,
        row: dict[str, Any],
        *,
        image_key: str | None = None,
        summary_text: str | None = None,
        source_text: str | None = None,
        sign: bool = True,
    ) -> RowFingerprint:
        """sign=False leaves `signature` to a later `sign_all` over many rows (faster in bulk)."""
        text = assistant_text(row)
        problem: tuple[str, str] | None = None
        bounds = self.length_bounds.get(config)
        if bounds is not None and (reason := bounds.check(text)) is not None:
            problem = (reason, "length")
        elif self.validator is not None and summary_text is not None:
            reason = self._validate(summary_text, source_text or "")
            if reason is not None:
                problem = (f"summary failed validation: {reason}", "validator")
        # Exact: the same image and the same conversation, verbatim (case or punctuation variants of free
        # text are near duplicates, caught below).
        parts = [image_key or row["subject_id"]]
        for message in row["messages"]:
            parts.append(message["role"])
            parts += [block["text"] for block in message["content"] if block["text"]]
        exact = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()
        signature = None
        if sign and self.needs_signature(config, problem):
            signature = self.hasher.signature(text)
        return RowFingerprint(problem, exact, signature)

    def needs_signature(self, config: str, problem: tuple[str, str] | None) -> bool:
        return config in self.near_duplicate_configs and problem is None

    def sign_all(self, config: str, rows: Sequence[dict[str, Any]], fingerprints: Sequence[RowFingerprint]) -> None:
        """Fill in the MinHash signatures that `__call__(..., sign=False)` left out, in one pass."""
        todo = [i for i, fp in enumerate(fingerprints) if fp.signature is None and self.needs_signature(config, fp.problem)]
        if todo:
            signatures = self.hasher.signatures([assistant_text(rows[i]) for i in todo])
            keys = band_keys(signatures, self.bands, self.rows_per_band).tolist()
            for i, signature, row_keys in zip(todo, signatures, keys):
                fingerprints[i].signature = signature
                fingerprints[i].band_keys = row_keys

    def _validate(self, summary_text: str, source_text: str) -> str | None:
        last = self._last_validation
        if last is not None and last[0] == summary_text and last[1] == source_text:
            return last[2]
        problem = self.validator(summary_text, source_text)
        self._last_validation = (summary_text, source_text, problem)
        return problem


class Curator:
    """Stateful filter over the rows of every config; one instance per build.

    `check(config, row, ...)` does it all; a parallel build computes `fingerprinter(...)` in its
    workers and calls `decide(...)` here, in row order (the only part that needs every row seen so far).
    """

    def __init__(
        self,
        *,
        near_duplicate_threshold: float | None = 0.85,
        near_duplicate_configs: Sequence[str] = NEAR_DUPLICATE_CONFIGS,
        length_bounds: dict[str, LengthBounds] | None = None,
        validator: SummaryValidator | None = None,
    ) -> None:
        """near_duplicate_threshold: None keeps near duplicates (exact duplicates are still removed)."""
        # The index validates the threshold and owns the MinHash permutations the fingerprints must use.
        probe = NearDuplicateIndex(threshold=near_duplicate_threshold or 0.85)
        self.fingerprinter = RowFingerprinter(
            near_duplicate_configs=near_duplicate_configs if near_duplicate_threshold is not None else (),
            length_bounds=length_bounds,
            validator=validator,
            hasher=probe.hasher,
            bands=probe.bands,
            rows_per_band=probe.rows_per_band,
        )
        self._threshold = near_duplicate_threshold
        self._exact: dict[str, set[bytes]] = {}
        self._near: dict[str, NearDuplicateIndex] = {}
        self.stats = CurationStats()

    def check(self, config: str, row: dict[str, Any], **context: str | None) -> Reject | None:
        """None to keep `row`, else the `Reject` (stage "curate", kind "row") that says why not.

        context: `RowFingerprinter`'s keywords. image_key: what identifies the image (a content hash); two
            subjects uploaded with the same image are the same sample. Defaults to the subject id.
            summary_text / source_text: the summary the row was built from and the comments it summarises,
            for the validator (rows not built from a summary pass None).
        """
        fingerprint = self.fingerprinter(config, row, **context)
        return self.decide(config, row["id"], fingerprint, source=row.get("source", ""))

    def decide(self, config: str, row_id: str, fingerprint: RowFingerprint, source: str = "") -> Reject | None:
        reason, kind = self._reason(config, row_id, fingerprint)
        if reason is None:
            self.stats.count_kept(config)
            return None
        self.stats.count_rejected(config, kind)
        return Reject(stage="curate", kind="row", id=row_id, reason=reason, source=source)

    def _reason(self, config: str, row_id: str, fingerprint: RowFingerprint) -> tuple[str | None, str]:
        if fingerprint.problem is not None:
            return fingerprint.problem
        seen = self._exact.setdefault(config, set())
        if fingerprint.exact in seen:
            return "exact duplicate (same image and conversation as a kept row)", "exact_duplicate"
        if fingerprint.signature is not None and self._threshold is not None:
            index = self._near.get(config)
            if index is None:
                index = self._near[config] = NearDuplicateIndex(threshold=self._threshold)
            match = index.add_or_match_signature(row_id, fingerprint.signature, fingerprint.band_keys)
            if match is not None:
                return f"near duplicate of {match[0]} (estimated Jaccard {match[1]:.2f})", "near_duplicate"
        seen.add(fingerprint.exact)
        return None, ""
