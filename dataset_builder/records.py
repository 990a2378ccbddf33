"""The records that flow between the dataset builder's stages.

Ingest -> clean -> (images, votes) -> summarise -> instructions -> curate -> write.
Every stage either passes a record on or turns it into a `Reject` with a reason, so the
counts reconcile: each input comment ends in the output or in `rejects.jsonl`.
Volunteer identities (user ids, logins) are dropped at ingest and never stored here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Comment:
    """One Talk comment after ingest (raw body) or after cleaning (clean body, hashtags split out)."""

    comment_id: str
    subject_id: str
    body: str
    source: str  # file the comment came from (for error messages and rejects)
    board: str | None = None
    created_at: str | None = None
    image_url: str | None = None  # from the GZ Talk CSV `locations` column
    tags: list[str] = field(default_factory=list)


@dataclass
class Reject:
    """Something that did not reach the output, and why."""

    stage: str  # "ingest", "clean", "image", "summarise", "curate", ...
    kind: str  # "comment", "subject", "row", "image", "sample"
    id: str
    reason: str
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Subject:
    """One galaxy: its cleaned comments, hashtags, image and Galaxy Zoo vote fractions."""

    subject_id: str
    comments: list[Comment] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    image_ref: str | None = None  # local path or URL
    image_bytes: bytes | None = None  # encoded JPEG/PNG once loaded
    votes: dict[str, float] = field(default_factory=dict)  # canonical keys, see decision_tree.py
    catalogue: str | None = None  # "gz2", "decals", "kaggle", "synthetic"
    source: str = ""  # "talk:<file>", "synthetic", ...
    truth: dict[str, Any] | None = None  # synthetic galaxies only: the generator's true answers


@dataclass
class Summary:
    """An LLM (or template) summary of what volunteers saw in one galaxy."""

    subject_id: str
    description: str
    visible_features: list[str]
    uncertainty: str  # "low" | "medium" | "high"
    backend: str
    model: str
