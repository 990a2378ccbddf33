"""Curation of instruction rows: duplicates, length bounds, the summary validator, and the split.

Rows stream through a `Curator` one at a time (`curator.check(row, ...)` returns `None` to keep the
row or a `Reject` with the reason), so memory holds only compact fingerprints of the rows kept so
far, never the rows themselves:

- exact duplicates: the same image (content hash) with the same conversation;
- near duplicates (free-text configs): MinHash over word 3-shingles with LSH banding, and a row is
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
import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
_PUNCTUATION = re.compile(r"[^\w\s]+")


def normalise_text(text: str) -> str:
    """Case, accents, punctuation and spacing folded away: what 'the same text' means for duplicates."""
    if not text.isascii():  # fast path: most text is ASCII and has no accents to fold
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


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


# -------------------------------------------------------------------------------------- MinHash
# MinHash with LSH banding, after Broder (1997) and Leskovec, Rajaraman & Ullman, "Mining of Massive
# Datasets", ch. 3 (the scheme datasketch and the BigCode near-deduplication use). Hashes are stable
# across processes (CRC-32 and fixed multipliers, not Python's salted `hash`), so a rebuild, or a build
# with more worker processes, drops the same rows.
_MAX_HASH = (1 << 32) - 1
_MASK32 = np.uint64(_MAX_HASH)
# Odd multipliers that combine word hashes into a 3-word shingle hash, and band rows into a band key.
_MIX = (np.uint64(0x9E3779B1), np.uint64(0x85EBCA77), np.uint64(0xC2B2AE3D), np.uint64(0x27D4EB2F))
SHINGLE_WORDS = 3


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    """The word 3-shingles of the normalised text (a text of 3 words or fewer is one shingle)."""
    words = normalise_text(text).split()
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of the 3-shingle sets (for tests and diagnostics)."""
    sa, sb = shingles(a), shingles(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


@dataclass
class MinHasher:
    """MinHash signatures of texts' word 3-shingles, many texts per numpy pass.

    A shingle's hash combines its three words' CRC-32 hashes (a short text is one shingle, padded), so
    Python only hashes each distinct word once (`_vocabulary`); repeated shingles do not change a
    minimum, so no set is built.
    """

    num_permutations: int = 64
    seed: int = 1
    max_vocabulary: int = 1_000_000

    def __post_init__(self) -> None:
        rng = np.random.RandomState(self.seed)
        # Multiply-add-shift hashing (Dietzfelbinger 1996): h(x) = ((a*x + b) mod 2**64) >> 32 with a odd,
        # a 2-independent family like (a*x + b) mod p but with no division: uint64 arithmetic wraps.
        self._a = rng.randint(0, 2**63 - 1, size=self.num_permutations, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.randint(0, 2**63 - 1, size=self.num_permutations, dtype=np.uint64)
        self._vocabulary: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_vocabulary": {}}  # a cache: not worth pickling to workers

    def _word_hashes(self, words: list[str]) -> list[int]:
        vocabulary = self._vocabulary
        if len(vocabulary) > self.max_vocabulary:
            vocabulary.clear()
        out = []
        for word in words:
            value = vocabulary.get(word)
            if value is None:
                value = vocabulary[word] = zlib.crc32(word.encode()) + 1  # 0 is the padding
            out.append(value)
        return out

    def signature(self, text: str) -> np.ndarray:
        """uint32[num_permutations]: the minimum of each permuted shingle hash."""
        return self.signatures([text])[0]

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """uint32[len(texts), num_permutations]."""
        hashes: list[int] = []
        starts_ok: list[bool] = []  # whether a shingle starts at this position of `hashes`
        counts = np.zeros(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            words = normalise_text(text).split()
            if not words:
                continue
            word_hashes = self._word_hashes(words)
            word_hashes += [0] * (SHINGLE_WORDS - len(word_hashes))  # a short text is one padded shingle
            n_shingles = len(word_hashes) - SHINGLE_WORDS + 1
            hashes += word_hashes
            starts_ok += [True] * n_shingles + [False] * (SHINGLE_WORDS - 1)
            counts[i] = n_shingles
        out = np.full((len(texts), self.num_permutations), _MAX_HASH, dtype=np.uint32)
        if not hashes:
            return out
        words = np.array(hashes, dtype=np.uint64)
        combined = words[:-2] * _MIX[0] + words[1:-1] * _MIX[1] + words[2:]  # wraps mod 2**64: fine for hashing
        combined = combined[np.array(starts_ok[:-2])]
        shingle_hashes = (combined ^ (combined >> np.uint64(32))) & _MASK32  # fold the high bits in
        permuted = (shingle_hashes[:, None] * self._a[None, :] + self._b[None, :]) >> np.uint64(32)  # (shingles, perms)
        present = counts > 0
        starts = (np.cumsum(counts) - counts)[present]  # empty texts add no shingles: skip their segments
        out[present] = np.minimum.reduceat(permuted, starts, axis=0).astype(np.uint32)
        return out


def band_keys(signatures: np.ndarray, bands: int, rows_per_band: int) -> np.ndarray:
    """uint64[n, bands]: one key per band of each signature (its rows mixed into 64 bits)."""
    grouped = signatures.reshape(len(signatures), bands, rows_per_band).astype(np.uint64)
    keys = grouped[:, :, 0]
    for row in range(1, rows_per_band):
        keys = keys * _MIX[row % len(_MIX)] + grouped[:, :, row]
    return keys


class NearDuplicateIndex:
    """Finds a kept text whose estimated Jaccard similarity reaches a threshold.

    `bands` x `rows_per_band` = the signature length; two texts become candidates when one band of
    their signatures agrees (probability 1-(1-s^r)^b for similarity s), and candidates are confirmed on
    the full signature. With 16 bands of 4 a pair at similarity 0.8 is found with probability 0.999.
    Memory: one uint32 signature plus `bands` dict entries (int -> int) per kept text.
    """

    def __init__(self, threshold: float = 0.85, bands: int = 16, rows_per_band: int = 4, seed: int = 1) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold {threshold}: expected a number in (0, 1]")
        self.threshold = threshold
        self.bands = bands
        self.rows_per_band = rows_per_band
        self.hasher = MinHasher(num_permutations=bands * rows_per_band, seed=seed)
        self._buckets: list[dict[int, int]] = [{} for _ in range(bands)]
        self._signatures: list[np.ndarray] = []
        self._ids: list[str] = []

    def __len__(self) -> int:
        return len(self._ids)

    def keys(self, signatures: np.ndarray) -> list[list[int]]:
        """The band keys of many signatures (what a worker computes for `add_or_match_signature`)."""
        return band_keys(signatures, self.bands, self.rows_per_band).tolist()

    def add_or_match(self, row_id: str, text: str) -> tuple[str, float] | None:
        """Return (id of the kept near duplicate, estimated similarity), or index `text` and return None."""
        return self.add_or_match_signature(row_id, self.hasher.signature(text))

    def add_or_match_signature(
        self, row_id: str, signature: np.ndarray, keys: Sequence[int] | None = None
    ) -> tuple[str, float] | None:
        """`add_or_match` with the signature (and its band keys) already computed, e.g. in a worker."""
        if keys is None:
            keys = self.keys(signature[None, :])[0]
        candidates = {bucket[key] for bucket, key in zip(self._buckets, keys) if key in bucket}
        best: tuple[str, float] | None = None
        for index in candidates:
            similarity = float(np.count_nonzero(self._signatures[index] == signature)) / len(signature)
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (self._ids[index], similarity)
        if best is not None:
            return best
        index = len(self._ids)
        self._ids.append(row_id)
        self._signatures.append(signature)
        for bucket, key in zip(self._buckets, keys):
            bucket.setdefault(key, index)
        return None


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

    def check(
        self,
        config: str,
        row: dict[str, Any],
        *,
        image_key: str | None = None,
        summary_text: str | None = None,
        source_text: str | None = None,
    ) -> Reject | None:
        """None to keep `row`, else the `Reject` (stage "curate", kind "row") that says why not.

        image_key: what identifies the image (a content hash); two subjects uploaded with the same image
            are the same sample. Defaults to the subject id.
        summary_text / source_text: the summary the row was built from and the comments it summarises,
            for the validator (rows not built from a summary pass None).
        """
        fingerprint = self.fingerprinter(config, row, image_key=image_key, summary_text=summary_text,
                                         source_text=source_text)
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
