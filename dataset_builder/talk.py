"""Ingest Zooniverse Talk exports into `Comment` records (raw bodies; cleaning is `clean.py`).

Two layouts are read, as JSON (one array, or JSON lines) or CSV:

- ``panoptes``: the Talk data export of a Panoptes project (board_id, board_title,
  discussion_id, discussion_title "Subject N", comment_id, comment_body, comment_focus_id,
  comment_focus_type, comment_user_id, comment_created_at), with an optional tags export
  (name, taggable_id, comment_id, user_id) merged into `Comment.tags` by comment id.
- ``gz_talk_csv``: the Galaxy Zoo Talk CSV (locations = JSON {"0": "https://...jpeg"},
  subject_id, subject_set_id, board_id, board_title, board_description, discussion_title,
  comment_id, comment_body).

Every input row becomes a `Comment` or a `Reject` (malformed row, duplicate comment id, no
subject), so counts reconcile: a broken record costs that record only (JSON arrays resume at the
next object, CSV rows cut by an unbalanced quote resume at the next record), and a file that cannot be
read past some point is a `TalkExportError` saying how much was lost, never a silent stop. User ids
and logins are read past and never stored. Reading the file (encodings, JSON and CSV records) is
`talk_files.py`. Rows stream: memory does not grow with the file, except for the set of comment ids seen
(for duplicates).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .records import Comment, Reject
from .talk_files import TalkExportError, export_columns, iter_export_rows, iter_rows, normalise_id, repair_text

__all__ = ["GZ_TALK_CSV", "PANOPTES", "TalkExportError", "detect_talk_layout", "iter_export_rows", "normalise_id",
           "read_tags_export", "read_talk_export"]

logger = logging.getLogger(__name__)

PANOPTES = "panoptes"
GZ_TALK_CSV = "gz_talk_csv"

# The columns each layout cannot do without ("a subject column": one of several, see below).
_PANOPTES_REQUIRED = ("comment_id", "comment_body")
_PANOPTES_SUBJECT = ("comment_focus_id", "discussion_title")
_GZ_REQUIRED = ("subject_id", "comment_id", "comment_body")

_SUBJECT_TITLE = re.compile(r"^\s*Subject\s+(\d+)\s*$")


# --- layout -------------------------------------------------------------------------------------


def _layout_of_columns(columns: list[str], path: Path) -> str:
    present = set(columns)
    gz_missing = [c for c in _GZ_REQUIRED if c not in present]
    if not gz_missing and "comment_focus_id" not in present:
        return GZ_TALK_CSV
    pan_missing = [c for c in _PANOPTES_REQUIRED if c not in present]
    if not any(c in present for c in _PANOPTES_SUBJECT):
        pan_missing.append(" or ".join(_PANOPTES_SUBJECT))
    if not pan_missing:
        return PANOPTES
    raise TalkExportError(
        f"Talk export {path}: unrecognised layout. Columns found: {', '.join(columns) or '(none)'}. "
        f"A Panoptes Talk export is missing: {', '.join(pan_missing)}. "
        f"A GZ Talk CSV (locations, subject_id, ..., comment_body) is missing: {', '.join(gz_missing)}."
    )


def detect_talk_layout(path: Path) -> str:
    """"panoptes" or "gz_talk_csv", from the column names; ValueError naming the file and the missing columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Talk export not found: {path}")
    return _layout_of_columns(export_columns(path), path)


# --- field helpers ----------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return repair_text(text)


def _first_location(raw: Any) -> str | None:
    """The first image URL of a GZ Talk `locations` cell: JSON {"0": "https://..."} (or a list, or a bare URL)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            return None
        if raw[0] not in "{[":
            return raw if raw.startswith(("http://", "https://")) else None
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return None
    if isinstance(raw, dict):
        # Keys are frame numbers ("0", "1", ...): take the lowest, as Panoptes shows frame 0 first.
        items = sorted(raw.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 1 << 30)
        values = [v for _, v in items]
    elif isinstance(raw, list):
        values = raw
    else:
        return None
    for value in values:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return None


def _subject_of(row: dict[str, Any], layout: str) -> str | None:
    if layout == GZ_TALK_CSV:
        return normalise_id(row.get("subject_id"))
    focus_type = row.get("comment_focus_type")
    focus_id = normalise_id(row.get("comment_focus_id"))
    if focus_id and (focus_type in (None, "", "Subject")):
        return focus_id
    title = row.get("discussion_title")
    if isinstance(title, str):
        m = _SUBJECT_TITLE.match(title)
        if m:
            return m.group(1)
    return None


# --- tags export ------------------------------------------------------------------------------


def read_tags_export(path: Path) -> dict[str, list[str]]:
    """comment id -> tag names (lowercased, first-seen order, deduplicated). User ids are not kept."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Talk tags export not found: {path}")
    tags: dict[str, list[str]] = {}
    bad = 0
    for n, row, error in iter_rows(path):
        if error or not isinstance(row, dict) or "name" not in row or "comment_id" not in row:
            bad += 1
            if bad == 1:
                logger.warning("tags export %s: row %d unusable (%s)", path, n,
                               error or "needs 'name' and 'comment_id'")
            continue
        comment_id = normalise_id(row.get("comment_id"))
        name = _text(row.get("name"))
        name = name.strip().lstrip("#").strip().lower() if name else ""
        if not comment_id or not name:
            bad += 1
            continue
        names = tags.setdefault(comment_id, [])
        if name not in names:
            names.append(name)
    if bad:
        logger.warning("tags export %s: %d rows without a tag name or comment id were skipped", path, bad)
    return tags


# --- main reader ------------------------------------------------------------------------------


def read_talk_export(path: Path, tags_path: Path | None = None) -> Iterator[Comment | Reject]:
    """Stream a Talk export as `Comment`s (raw bodies) and `Reject`s (stage "ingest").

    Reject reasons are "<category>: <detail>": "malformed row", "duplicate comment_id",
    "no subject". Tags from `tags_path` whose comment never appears are reported as
    Rejects of kind "tag" at the end (reason "orphan tag").
    """
    path = Path(path)
    layout = detect_talk_layout(path)
    source = path.name
    tags_by_comment = read_tags_export(tags_path) if tags_path is not None else {}
    seen: set[str] = set()
    repaired = 0
    for n, row, error in iter_rows(path):
        row_id = f"{source}:{n}"
        if error is not None:
            yield Reject("ingest", "row", row_id, f"malformed row: {error}", source)
            continue
        if not isinstance(row, dict):
            yield Reject("ingest", "row", row_id, f"malformed row: a {type(row).__name__}, not an object", source)
            continue
        comment_id = normalise_id(row.get("comment_id"))
        if comment_id is None:
            yield Reject("ingest", "row", row_id, "malformed row: no comment_id", source)
            continue
        body = row.get("comment_body")
        if not isinstance(body, str):
            yield Reject("ingest", "comment", comment_id,
                         f"malformed row: comment_body is {'missing' if body is None else type(body).__name__}",
                         source)
            continue
        if comment_id in seen:
            yield Reject("ingest", "comment", comment_id, f"duplicate comment_id: row {n} repeats an earlier row",
                         source)
            continue
        seen.add(comment_id)
        subject_id = _subject_of(row, layout)
        if subject_id is None:
            board = normalise_id(row.get("board_id"))  # the id, not the title: reasons quote no input text
            yield Reject("ingest", "comment", comment_id,
                         f"no subject: a discussion on {f'board {board}' if board else 'a board'}, not about a galaxy",
                         source)
            continue
        fixed = repair_text(body)
        repaired += fixed is not body
        board = row.get("board_title")
        created = row.get("comment_created_at")
        yield Comment(
            comment_id=comment_id,
            subject_id=subject_id,
            body=fixed,
            source=source,
            board=_text(board) if board not in (None, "") else None,
            created_at=str(created) if created not in (None, "") else None,
            image_url=_first_location(row.get("locations")) if layout == GZ_TALK_CSV else None,
            tags=list(tags_by_comment.get(comment_id, ())),
        )
    if repaired:
        logger.info("%s: %d comment bodies had non-UTF-8 bytes, read as cp1252/latin-1", path, repaired)
    orphans = [cid for cid in tags_by_comment if cid not in seen]
    for cid in orphans:
        count = len(tags_by_comment[cid])
        yield Reject("ingest", "tag", cid, f"orphan tag: {count} tag{'s' * (count != 1)} point to a comment not in {source}",
                     Path(tags_path).name)
