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
subject), so counts reconcile. User ids and logins are read past and never stored. Bytes that are
not UTF-8 are repaired (cp1252, then latin-1) instead of failing the file. Rows stream: memory
does not grow with the file, except for the set of comment ids seen (for duplicates).
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .records import Comment, Reject

logger = logging.getLogger(__name__)

PANOPTES = "panoptes"
GZ_TALK_CSV = "gz_talk_csv"

# The columns each layout cannot do without ("a subject column": one of several, see below).
_PANOPTES_REQUIRED = ("comment_id", "comment_body")
_PANOPTES_SUBJECT = ("comment_focus_id", "discussion_title")
_GZ_REQUIRED = ("subject_id", "comment_id", "comment_body")

_JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
_SUBJECT_TITLE = re.compile(r"^\s*Subject\s+(\d+)\s*$")
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by surrogateescape
_CHUNK_CHARS = 1 << 20


# --- encodings --------------------------------------------------------------------------------


def _cp1252_then_latin1(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte that is not UTF-8 is read as cp1252 (Windows exports), or latin-1
    for the five bytes cp1252 leaves undefined. Every byte maps to some character: never raises."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(bytes([b]).decode("cp1252", errors="strict") if b not in b"\x81\x8d\x8f\x90\x9d"
                   else chr(b) for b in bad), error.end


codecs.register_error("gz_cp1252_latin1", _cp1252_then_latin1)


def repair_text(value: str) -> str:
    """Text read with errors="surrogateescape": re-decode its raw non-UTF-8 bytes as cp1252/latin-1."""
    if not _UNDECODED.search(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "gz_cp1252_latin1")


def _open_text(path: Path):
    # surrogateescape keeps undecodable bytes (no crash, nothing lost); repair_text fixes them per field.
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


# --- low-level readers: each yields (row number, dict | None, error message | None) ------------


def _is_json(path: Path) -> bool:
    if path.suffix.lower() in _JSON_SUFFIXES:
        return True
    if path.suffix.lower() in {".csv", ".tsv"}:
        return False
    with _open_text(path) as f:
        head = f.read(4096).lstrip()
    return head[:1] in ("[", "{")


def _iter_json(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Objects of a JSON array (streamed with raw_decode, 1 MiB at a time) or of JSON lines."""
    decoder = json.JSONDecoder()
    with _open_text(path) as f:
        buf = f.read(_CHUNK_CHARS)
        start = len(buf) - len(buf.lstrip())
        if buf[start : start + 1] != "[":
            f.seek(0)
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield n, json.loads(line), None
                except json.JSONDecodeError as e:
                    yield n, None, f"invalid JSON line: {e.msg} (column {e.colno})"
            return
        pos, consumed, n, eof = start + 1, 0, 0, False
        while True:
            # Skip the separators between array items; stop at the closing bracket.
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buf) and buf[pos] == "]":
                return
            if pos >= len(buf) and eof:
                yield n + 1, None, f"JSON array not closed (file truncated at character {consumed + pos}?)"
                return
            try:
                if pos >= len(buf):
                    raise json.JSONDecodeError("need more data", buf, pos)
                obj, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as e:
                if not eof:  # maybe an object cut by the chunk boundary: read on and retry
                    consumed += pos
                    buf = buf[pos:]
                    pos = 0
                    more = f.read(_CHUNK_CHARS)
                    eof = not more
                    buf += more
                    continue
                yield n + 1, None, (f"invalid JSON at character {consumed + e.pos}: {e.msg}; the rest of the "
                                    f"file ({len(buf) - pos} characters) was not read")
                return
            n += 1
            yield n, obj, None
            pos = end


def _iter_csv(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long comment bodies are legitimate
    with _open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        width = len(header)
        n = 0
        while True:
            n += 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield n, None, f"unparseable CSV row near line {reader.line_num}: {e}"
                continue
            if not fields:
                n -= 1  # a blank line is not a row
                continue
            if len(fields) != width:
                yield n, None, f"CSV row at line {reader.line_num} has {len(fields)} fields, the header has {width}"
                continue
            yield n, dict(zip(header, fields)), None


def _iter_rows(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    return _iter_json(path) if _is_json(path) else _iter_csv(path)


def _columns(path: Path) -> list[str]:
    """Column names: the CSV header, or the keys of the first JSON object."""
    if _is_json(path):
        for _, obj, error in _iter_json(path):
            if isinstance(obj, dict):
                return list(obj)
            what = error or type(obj).__name__
            raise ValueError(f"Talk export {path}: the first JSON item is not an object ({what})")
        return []
    with _open_text(path) as f:
        header = next(csv.reader(f), [])
    return [h.strip() for h in header]


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
    raise ValueError(
        f"Talk export {path}: unrecognised layout. Columns found: {', '.join(columns) or '(none)'}. "
        f"A Panoptes Talk export is missing: {', '.join(pan_missing)}. "
        f"A GZ Talk CSV (locations, subject_id, ..., comment_body) is missing: {', '.join(gz_missing)}."
    )


def detect_talk_layout(path: Path) -> str:
    """"panoptes" or "gz_talk_csv", from the column names; ValueError naming the file and the missing columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Talk export not found: {path}")
    return _layout_of_columns(_columns(path), path)


# --- field helpers ----------------------------------------------------------------------------


def normalise_id(value: Any) -> str | None:
    """An id as a string: ints as digits, "123.0" (pandas float exports) as "123", blanks as None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none", "null"):
        return None
    if text.endswith(".0") and text[:-2].isdigit():
        return text[:-2]
    return text


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
    for n, row, error in _iter_rows(path):
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
    for n, row, error in _iter_rows(path):
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
            board = _text(row.get("board_title")) or "?"
            yield Reject("ingest", "comment", comment_id,
                         f"no subject: a discussion on board {board!r}, not about a galaxy", source)
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
        yield Reject("ingest", "tag", cid,
                     f"orphan tag: tags {tags_by_comment[cid]} point to a comment not in {source}", str(tags_path))
