"""What an evaluation set is made of: `EvalSample`s, counted `Skip`s, and the checks every loader shares.

The loaders (`instruct_split`, `image_folder`, `catalogue`; `eval_sets.load_eval_set` picks one) turn their
source into an `EvalSet`. Bad input never stops the run silently or crashes it half way: an unreadable image,
a label naming an unknown question or answer, a vote column the decision tree does not know, or a malformed
row becomes a `Skip` with the reason, counted in `metrics.json`; a set with nothing usable left raises
`EmptyEvaluationSetError` naming why (`checked`).
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from image_processing_gzllava import FITS_SUFFIXES, load_fits, load_image

from dataset_builder.decision_tree import QUESTIONS

logger = logging.getLogger(__name__)

DESCRIPTION_PROMPT = "Describe this galaxy."  # when a sample does not bring its own instruction


class EmptyEvaluationSetError(ValueError):
    """Nothing usable is left in the evaluation set."""


class NotScoredRow(ValueError):
    """A well-formed row that this evaluation does not score (e.g. a multi-turn tree walk)."""


@dataclass
class Skip:
    id: str
    reason: str  # "<category>: <details>"
    bad_input: bool = True  # False: a well-formed row this evaluation does not score


@dataclass
class EvalSample:
    id: str
    # Encoded bytes, checked decodable at load time and decoded again on use (a decoded 424 px
    # cutout takes ~5x its JPEG size, and a decision_tree split repeats each galaxy per question),
    # or an already decoded image.
    image_data: bytes | Image.Image
    votes: dict[str, float] = field(default_factory=dict)  # finite canonical vote fractions only
    expert: dict[str, str] = field(default_factory=dict)  # question key -> answer key (expert / true labels)
    question: str | None = None  # the row's decision-tree question (config decision_tree)
    answer: str | None = None  # the row's vote-majority answer
    prompt: str | None = None  # the row's first user instruction
    reference: str | None = None  # the row's first assistant reply (a description for description/conversation)
    subject_id: str | None = None

    @property
    def image(self) -> Image.Image:
        if isinstance(self.image_data, Image.Image):
            return self.image_data
        return decode_image(self.image_data)


class LazyImages(Sequence):
    """The images of some samples, decoded only when the model's batch needs them."""

    def __init__(self, samples: Sequence[EvalSample], indices: Sequence[int]):
        self.samples, self.indices = samples, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self.samples[i].image for i in self.indices[key]]
        return self.samples[self.indices[key]].image


@dataclass
class EvalSet:
    name: str  # e.g. "gz-talk-instruct:decision_tree/test" or "gz_examples_decals"
    kind: str  # "gz-talk-instruct" or "image-folder"
    samples: list[EvalSample]
    skips: list[Skip] = field(default_factory=list)
    rows_read: int = 0

    def skip_summary(self, listed: int = 1000) -> dict[str, Any]:
        """Counts by reason category (the text before the first ':') and the bad-input skips
        themselves (the first `listed`), for metrics.json."""
        counts = Counter(s.reason.split(":")[0] for s in self.skips)
        bad = [{"id": s.id, "reason": s.reason} for s in self.skips if s.bad_input]
        return {"total": len(self.skips), "bad_input": len(bad), "by_reason": dict(counts), "bad_input_rows": bad[:listed]}


# --------------------------------------------------------------------------------- validation
def decode_image(data: bytes | None = None, path: str | Path | None = None) -> Image.Image:
    """An RGB PIL image, fully decoded now (so a truncated file fails here, not in the model), read by the model's
    processor reader (`image_processing_gzllava.load_image`): JPEG/PNG/any PIL format, and FITS with the processor's
    default stretch, north up, so evaluation sees the pixels inference sees. ImageInputError names `path`."""
    if data is None and path is None:
        raise ValueError("no image bytes or path")
    name = str(path) if path is not None else None
    if path is not None and str(path).lower().endswith(FITS_SUFFIXES):  # .fits.gz bytes carry no FITS signature
        return load_fits(data if data else Path(path), name=name)
    return load_image(data if data else Path(path), name=name)


def is_fits_name(name: str) -> bool:
    return name.lower().endswith(FITS_SUFFIXES)


def check_label(question_key: str, answer_key: str) -> str:
    """The canonical answer key, after checking both against the tree (KeyError names the fault)."""
    if question_key not in QUESTIONS:
        raise KeyError(f"unknown question {question_key!r}")
    return QUESTIONS[question_key].answer(answer_key).key


_VOTE_COLUMNS = {q.column(a.key): (q.key, a.key) for q in QUESTIONS.values() for a in q.answers}


def clean_votes(votes: dict[str, Any] | None) -> dict[str, float]:
    """Finite vote fractions; a `*_fraction` column the tree does not know raises KeyError."""
    cleaned: dict[str, float] = {}
    for column, value in (votes or {}).items():
        if not column.endswith("_fraction"):
            continue  # e.g. "<question>_total-votes": counts, not fractions
        if column not in _VOTE_COLUMNS:
            raise KeyError(f"vote column {column!r} names no question/answer of the decision tree")
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            cleaned[column] = value
    return cleaned


def _turn_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content.strip()
    return " ".join((block.get("text") or "") for block in content or [] if block.get("type") == "text").strip()


def first_exchange(messages: list[dict[str, Any]] | None) -> tuple[str | None, str | None]:
    """(first user text, first assistant text) of a conversation."""
    user = assistant = None
    for message in messages or []:
        if message.get("role") == "user" and user is None:
            user = _turn_text(message) or None
        elif message.get("role") == "assistant" and user is not None:
            assistant = _turn_text(message) or None
            break
    return user, assistant


def seeded_subset(items: list, max_samples: int | None, seed: int = 0) -> list:
    """A seeded random subset in the original order (the first N would be one question only)."""
    if max_samples is None or max_samples >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), max_samples))
    return [items[i] for i in keep]


def checked(eval_set: EvalSet) -> EvalSet:
    """`eval_set`, its skips logged; EmptyEvaluationSetError (with the skip reasons) when no sample is left."""
    if eval_set.skips:
        logger.warning("%s: skipped %d of %d rows: %s", eval_set.name, len(eval_set.skips), eval_set.rows_read,
                       eval_set.skip_summary()["by_reason"])
    if not eval_set.samples:
        reasons = eval_set.skip_summary()["by_reason"] or {"no rows": 0}
        raise EmptyEvaluationSetError(
            f"evaluation set {eval_set.name!r} has no usable samples ({eval_set.rows_read} rows read; "
            f"skipped by reason: {reasons})"
        )
    return eval_set


def describe_image_error(err: Exception, path: str | None) -> str:
    """`Type: message` of an image that would not decode, naming `path` (or the embedded bytes)."""
    # PIL names an in-memory file by its object repr (an address): say what it was instead
    text = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", path or "the embedded image bytes", str(err))
    return f"{type(err).__name__}: {text}"


def skip_reason(err: Exception) -> str:
    """The `Skip` reason of a loader's error: an unreadable image as it is, anything else as a bad label."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if isinstance(err, OSError):
        return text
    return f"bad label: {text}"
