"""Near-duplicate text for curation: `normalise_text` (what "the same text" means), MinHash signatures over
word shingles, and an LSH-banded index of the rows kept (`NearDuplicateIndex`)."""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_PUNCTUATION = re.compile(r"[^\w\s]+")


def normalise_text(text: str) -> str:
    """Case, accents, punctuation and spacing folded away: what 'the same text' means for duplicates."""
    if not text.isascii():  # fast path: most text is ASCII and has no accents to fold
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


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
