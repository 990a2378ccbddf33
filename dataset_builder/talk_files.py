"""Reading a Talk export file: its encoding, and its records as (row number, dict | None, error | None).

JSON (one array, or JSON lines) and CSV are read a record at a time. A broken record costs that record
only: JSON arrays resume at the next object, CSV rows cut by an unbalanced quote resume at the next
record; a file that cannot be read past some point is a `TalkExportError` saying how much was lost. The
encoding comes from the byte-order mark (UTF-8/16/32; UTF-16 without one is recognised by its NUL bytes);
bytes that are not UTF-8 in a UTF-8 file are repaired (cp1252, then latin-1) instead of failing the file.
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

logger = logging.getLogger(__name__)

_JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by surrogateescape
_CHUNK_CHARS = 1 << 20


# --- encodings --------------------------------------------------------------------------------


class TalkExportError(ValueError):
    """A Talk export that cannot be read as a whole (the message names the file and how much was lost)."""


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


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(path: Path) -> str:
    """The text encoding of an export: from its byte-order mark (UTF-8, UTF-16, UTF-32), else UTF-16
    without a BOM when every other byte of the start is NUL (Excel's "Unicode text"), else UTF-8."""
    with open(path, "rb") as f:
        head = f.read(4096)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    pairs = len(head) // 2
    if pairs >= 2:
        even_nul = sum(1 for i in range(0, 2 * pairs, 2) if head[i] == 0)
        odd_nul = sum(1 for i in range(1, 2 * pairs, 2) if head[i] == 0)
        if odd_nul >= 0.9 * pairs and even_nul == 0:
            return "utf-16-le"
        if even_nul >= 0.9 * pairs and odd_nul == 0:
            return "utf-16-be"
    return "utf-8-sig"


def open_text(path: Path):
    encoding = detect_encoding(path)
    # UTF-8: surrogateescape keeps undecodable bytes (no crash, nothing lost); repair_text fixes them per
    # field. UTF-16/32 have no such repair: a broken byte sequence is a TalkExportError (read_talk_export).
    errors = "surrogateescape" if encoding == "utf-8-sig" else "strict"
    return open(path, encoding=encoding, errors=errors, newline="")


# --- low-level readers: each yields (row number, dict | None, error message | None) ------------


def _is_json(path: Path) -> bool:
    if path.suffix.lower() in _JSON_SUFFIXES:
        return True
    if path.suffix.lower() in {".csv", ".tsv"}:
        return False
    with open_text(path) as f:
        head = f.read(4096).lstrip()
    return head[:1] in ("[", "{")


_NEXT_OBJECT = re.compile(r",\s*(?=\{)")  # where the next object of an array may start
_OBJECT_BOUNDARY = re.compile(r"\}\s*,\s*\{")
_MAX_RECORD_CHUNKS = 16  # a record (or a broken stretch) longer than 16 chunks is not looked past


def _iter_json(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Objects of a JSON array (streamed with raw_decode, 1 MiB at a time) or of JSON lines.

    A broken record is skipped on its own: reading resumes at the next `, {` from which an object with
    the export's keys decodes, and the broken stretch is one malformed row per record in it (counted by
    its `}, {` boundaries). A broken LAST record (a truncated file) is one malformed row. When no record
    can be found after a broken stretch that holds more than one record, TalkExportError says how much
    of the file was not read. A record may span up to `_MAX_RECORD_CHUNKS` chunks (16 MiB).
    """
    with open_text(path) as f:
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
        yield from _iter_json_array(f, path, buf, start + 1)


def _iter_json_array(f, path: Path, buf: str, pos: int) -> Iterator[tuple[int, Any, str | None]]:
    decoder = json.JSONDecoder()
    chunk = _CHUNK_CHARS
    max_record = _MAX_RECORD_CHUNKS * chunk
    consumed, n, eof = 0, 0, False
    known_keys: set[str] | None = None

    def more() -> None:
        nonlocal buf, eof
        data = f.read(chunk)
        eof = not data
        buf += data

    def decode_at(p: int) -> tuple[Any, int] | json.JSONDecodeError:
        """The value at p, reading on while it may be cut by the end of the buffer (the error is at the
        end, or a string runs to the end); an error inside the buffer is a broken record at once."""
        while True:
            try:
                return decoder.raw_decode(buf, p)
            except json.JSONDecodeError as error:
                # (within 6 characters of the end: an escape like \u00e9 cut in half)
                at_end = error.pos >= len(buf.rstrip()) - 6 or error.msg.startswith("Unterminated string")
                if eof or not at_end or len(buf) - p >= max_record:
                    return error
                more()

    while True:
        if pos > chunk:  # drop what was read (memory stays at a few chunks)
            consumed += pos
            buf, pos = buf[pos:], 0
        while True:  # skip the separators between items
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buf) or eof:
                break
            more()
        if pos >= len(buf):
            # Every record was read; only the closing bracket is missing: nothing lost, but say so.
            logger.warning("Talk export %s: the JSON array has no closing ']'", path)
            return
        if buf[pos] == "]":
            return
        result = decode_at(pos)
        if not isinstance(result, json.JSONDecodeError):
            obj, end = result
            n += 1
            if known_keys is None and isinstance(obj, dict):
                known_keys = set(obj)
            yield n, obj, None
            pos = end
            continue
        # A broken record: find the next object of the array (one with the export's keys).
        error, broken_at, search = result, pos, pos + 1
        resume = None
        while resume is None:
            m = _NEXT_OBJECT.search(buf, search)
            if m is None:
                if eof or len(buf) - broken_at >= max_record:
                    break
                search = max(search, len(buf) - 64)  # a "," just before the old end may lead the next object
                more()
                continue
            candidate = decode_at(m.end())
            if (not isinstance(candidate, json.JSONDecodeError) and isinstance(candidate[0], dict)
                    and (known_keys is None or known_keys & candidate[0].keys())):
                resume = m.end()
            search = m.end()
        where = consumed + broken_at
        if resume is not None:
            # Records in the skipped stretch: one per "}, {" boundary in it, plus the first.
            count = 1 + sum(1 for _ in _OBJECT_BOUNDARY.finditer(buf, broken_at, resume - 1))
            for k in range(count):
                n += 1
                which = "the record" if count == 1 else f"record {k + 1} of {count} in the stretch"
                yield n, None, (f"invalid JSON at character {consumed + error.pos} ({error.msg}); {which} at "
                                f"characters {where}-{consumed + resume} was skipped, reading resumed at the next record")
            pos = resume
            continue
        rest = len(buf) - broken_at
        if eof and not _OBJECT_BOUNDARY.search(buf, broken_at):
            # The last record is broken or cut (a truncated file): it alone is lost.
            n += 1
            yield n, None, (f"invalid JSON at character {consumed + error.pos} ({error.msg}); the last record "
                            f"(characters {where}-{consumed + len(buf)}) is incomplete: file truncated?")
            return
        total = consumed + len(buf)
        amount = (f"the remaining {rest:,} characters ({100 * rest / max(total, 1):.0f}% of the file)" if eof
                  else f"at least the next {rest:,} characters")
        raise TalkExportError(
            f"Talk export {path}: invalid JSON at character {consumed + error.pos} ({error.msg}) after record {n}, "
            f"and no record after it could be recovered: {amount} could not be read. Fix the file (e.g. "
            f"python -m json.tool {path.name}) or export it again.")


class _LineSource:
    """Physical lines of a text file for csv.reader, with push-back (csv.reader reads exactly the lines
    of one record per row, so what a row took is known, and lines can be handed back)."""

    def __init__(self, handle) -> None:
        self._handle = handle
        self._back: list[str] = []
        self.taken: list[str] = []

    def __iter__(self) -> _LineSource:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._handle)
        self.taken.append(line)
        return line

    def push_back(self, lines: list[str]) -> None:
        self._back.extend(reversed(lines))


# Id columns that come before the comment body on a record's first line (all digits in Talk exports).
_CSV_ID_COLUMNS = ("board_id", "discussion_id", "comment_id", "subject_id", "subject_set_id")


def _record_start_checker(header: list[str]):
    """A test for 'this physical line starts a record': its id columns (those before comment_body, so on
    the record's first line) parse as digit ids. None when the header has no such columns."""
    body = header.index("comment_body") if "comment_body" in header else len(header)
    positions = [i for i, name in enumerate(header) if name in _CSV_ID_COLUMNS and i < body]
    if not positions:
        return None
    last = max(positions)

    def starts_record(line: str) -> bool:
        try:
            fields = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            return False
        if len(fields) <= last:
            return False
        ids = [normalise_id(fields[i]) for i in positions]
        return all(value is not None and value.isdigit() for value in ids)

    return starts_record


def _iter_csv(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Rows of a CSV export. An unbalanced quote makes a field run on into the records after it (the
    csv module then returns them as one row, silently): a row whose continuation lines start records
    of their own is cut there, the broken record is one malformed row, and reading resumes at the next."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long comment bodies are legitimate
    with open_text(path) as f:
        source = _LineSource(f)
        reader = csv.reader(source)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        width = len(header)
        starts_record = _record_start_checker(header)
        line_no = len(source.taken) + 1  # physical line of the next row's first line
        n = 0
        while True:
            source.taken = []
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                n += 1
                yield n, None, f"unparseable CSV row at line {line_no}: {e}"
                line_no += len(source.taken)
                continue
            lines = source.taken
            if not fields:  # a blank line is not a row
                line_no += len(lines)
                continue
            n += 1
            if len(lines) > 1 and starts_record is not None:
                cut = next((k for k in range(1, len(lines)) if starts_record(lines[k])), None)
                if cut is not None:
                    source.push_back(lines[cut:])
                    yield n, None, (f"CSV record at line {line_no} has an unbalanced quote: it ran on into the "
                                    f"record at line {line_no + cut}; this record was skipped, reading resumed there")
                    line_no += cut
                    continue
            row_line = line_no
            line_no += len(lines)
            if len(fields) != width:
                span = f" (it runs over lines {row_line}-{line_no - 1}: an unbalanced quote?)" if len(lines) > 1 else ""
                yield n, None, f"CSV row at line {row_line} has {len(fields)} fields, the header has {width}{span}"
                continue
            yield n, dict(zip(header, fields)), None


def iter_rows(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    rows = _iter_json(path) if _is_json(path) else _iter_csv(path)
    try:
        yield from rows
    except UnicodeDecodeError as error:  # UTF-16/32 files (UTF-8 is repaired, never raises)
        raise TalkExportError(
            f"Talk export {path}: not valid {error.encoding} at byte {error.start} of the decoded stream "
            f"({error.reason}); the rest of the file could not be read. Save it again as UTF-8 or UTF-16."
        ) from None


def iter_export_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The well-formed rows of an export (JSON or CSV, any supported encoding) as dicts."""
    for _, row, error in iter_rows(Path(path)):
        if error is None and isinstance(row, dict):
            yield row


def export_columns(path: Path) -> list[str]:
    """Column names: the CSV header, or the keys of the first JSON object (broken records skipped)."""
    if _is_json(path):
        for _, obj, error in iter_rows(path):
            if error is not None:
                continue
            if isinstance(obj, dict):
                return list(obj)
            raise TalkExportError(f"Talk export {path}: the first JSON item is not an object ({type(obj).__name__})")
        return []
    with open_text(path) as f:
        header = next(csv.reader(f), [])
    return [h.strip() for h in header]


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
