"""Bad Talk exports and a refusing summariser: one case per bad-input class (issue 8, items 1 and 10).

Each case asserts either the counted reject (exactly the broken records, every other record read and
counted: `reconciled` means every record of the file) or the named error (exit 2, one line, no
traceback), and that nothing else was lost.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dataset_builder.ingest import ingest
from dataset_builder.stats import Ledger as _Ledger
from dataset_builder.cli import main
from dataset_builder.records import Comment, Reject
from dataset_builder.talk import TalkExportError, detect_talk_layout, read_talk_export
from dataset_builder.writer import RejectLog, read_rejects

N = 42
BROKEN = 10  # record 11 (0-based 10)


def records(n: int = N) -> list[dict]:
    """A Panoptes Talk export: one comment per subject, bodies with quotes and commas (CSV-hostile)."""
    return [{"board_id": 7, "board_title": "Notes", "discussion_id": 500 + i, "discussion_title": f"Subject {9000 + i}",
             "comment_id": 100 + i, "comment_body": f'A "ring" galaxy, spiral arms, knot {i}',
             "comment_focus_id": 9000 + i, "comment_focus_type": "Subject", "comment_user_id": f"u{i:04d}",
             "comment_created_at": "2020-01-01T00:00:00Z"} for i in range(n)]


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def ingest_counts(path: Path, tmp_path: Path) -> tuple[_Ledger, dict, list[Reject]]:
    """The build's own ingest stage: (ledger, subjects, rejects written to rejects.jsonl)."""
    ledger = _Ledger()
    log = RejectLog(tmp_path / "rejects.jsonl")
    subjects = ingest(path, None, log, ledger, progress=False)
    log.close()
    return ledger, subjects, read_rejects(tmp_path / "rejects.jsonl")


def comment_ids(subjects: dict) -> set[str]:
    return {c.comment_id for s in subjects.values() for c in s.comments}


# ---------------------------------------------------------------------------- JSON array
def test_json_array_with_one_malformed_record_loses_only_that_record(tmp_path):
    rows = records()
    items = [json.dumps(r) for r in rows]
    items[BROKEN] = items[BROKEN].replace('", "comment_focus_id"', ' "comment_focus_id"')  # a missing quote + comma
    path = tmp_path / "comments.json"
    path.write_text("[\n" + ",\n".join(items) + "\n]\n")

    ledger, subjects, rejects = ingest_counts(path, tmp_path)
    assert ledger.input_records == N  # before: 11 (the 31 records after the broken one were never read)
    assert len(rejects) == 1 and rejects[0].reason.startswith("malformed row: invalid JSON")
    assert "skipped" in rejects[0].reason and "resumed" in rejects[0].reason
    expected = {str(r["comment_id"]) for i, r in enumerate(rows) if i != BROKEN}
    assert comment_ids(subjects) == expected  # the 41 others, all of them


def test_json_array_that_cannot_be_recovered_is_a_named_error_saying_how_much_was_lost(tmp_path, capsys):
    rows = records(12)
    # 4 good records, then records whose bodies lost their opening quote: no object after them decodes
    broken = [json.dumps(r).replace('"comment_body": "', '"comment_body": ') for r in rows[4:]]
    path = tmp_path / "comments.json"
    path.write_text("[" + ", ".join([json.dumps(r) for r in rows[:4]] + broken) + "]")
    with pytest.raises(TalkExportError) as caught:
        list(read_talk_export(path))
    message = str(caught.value)
    assert str(path) in message and "after record 4" in message and "could not be read" in message
    assert re.search(r"the remaining [\d,]+ characters \(\d+% of the file\)", message)
    # the command line: exit 2, that one line, no build (before: exit 0 and "reconciled": true on 4 records)
    code = main(["-q", "build", "--talk", str(path), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and [line for line in err.splitlines() if line] == [f"error: {message}"]
    assert not (tmp_path / "out" / "build_stats.json").exists()


def test_truncated_json_array_rejects_only_the_cut_record(tmp_path):
    text = json.dumps(records(5), indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) - 30])
    items = list(read_talk_export(path))
    assert [type(i).__name__ for i in items] == ["Comment"] * 4 + ["Reject"]
    assert "incomplete" in items[-1].reason


# ------------------------------------------------------------------------------------ CSV
def test_csv_with_an_unbalanced_quote_loses_only_that_record(tmp_path):
    rows = records()
    lines = csv_text(rows).split("\r\n")
    # the body of record 11 opens a quote it never closes: csv.reader runs on into the next records
    lines[1 + BROKEN] = lines[1 + BROKEN].replace('"A ""ring"" galaxy, spiral arms, knot 10"', '"A ring galaxy, knot 10')
    assert lines[1 + BROKEN].count('"') == 1
    path = tmp_path / "comments.csv"
    path.write_text("\r\n".join(lines))

    ledger, subjects, rejects = ingest_counts(path, tmp_path)
    assert ledger.input_records == N  # before: 36, the swallowed records silently gone
    assert len(rejects) == 1 and "unbalanced quote" in rejects[0].reason and "line 12" in rejects[0].reason
    assert comment_ids(subjects) == {str(r["comment_id"]) for i, r in enumerate(rows) if i != BROKEN}
    assert all(len(c.body) < 60 for s in subjects.values() for c in s.comments)  # no body holds other records


def test_csv_row_with_extra_fields_is_one_counted_reject(tmp_path):
    rows = records(5)
    lines = csv_text(rows).split("\r\n")
    lines[3] += ",surplus"
    path = tmp_path / "comments.csv"
    path.write_text("\r\n".join(lines))
    items = list(read_talk_export(path))
    assert sum(isinstance(i, Comment) for i in items) == 4
    assert [i.reason for i in items if isinstance(i, Reject)] == [
        "malformed row: CSV row at line 4 has 11 fields, the header has 10"]


# ------------------------------------------------------------------------------ encodings
@pytest.mark.parametrize(("name", "encoding"), [("comments.csv", "utf-16"), ("comments.json", "utf-16-le"),
                                                ("comments.csv", "utf-32")])
def test_utf16_and_utf32_exports_are_read(tmp_path, name, encoding):
    rows = records(6)
    rows[2]["comment_body"] = "Galaxie très spirale, ça tourne \u00e0 gauche"
    text = csv_text(rows) if name.endswith(".csv") else json.dumps(rows, ensure_ascii=False)
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))  # utf-16/utf-32 write a BOM; utf-16-le (Excel-style) has none

    assert detect_talk_layout(path) == "panoptes"  # before: "unrecognised layout" with NUL-garbled columns
    items = list(read_talk_export(path))
    assert all(isinstance(i, Comment) for i in items) and len(items) == 6
    assert items[2].body == "Galaxie très spirale, ça tourne \u00e0 gauche"


def test_broken_utf16_is_a_named_error(tmp_path):
    path = tmp_path / "comments.csv"
    data = csv_text(records(6)).encode("utf-16")
    cut = len(data) // 2 | 1
    path.write_bytes(data[:cut] + b"\x00\xdc" + data[cut + 1:])  # a lone low surrogate mid-file
    with pytest.raises(TalkExportError, match=r"comments\.csv: not valid utf-16"):
        list(read_talk_export(path))


# ------------------------------------------------------------------------------- summariser
class _Refusing(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        data = b'{"error": {"message": "Incorrect API key provided"}}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_summariser_http_401_is_a_named_error_exit_2(tmp_path, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        base_url = f"http://volunteer:hunter2@127.0.0.1:{server.server_address[1]}/v1"
        code = main(["-q", "build", "--synthetic", "3", "--image-size", "32", "--summariser", "openai",
                     "--summariser-model", "m", "--base-url", base_url, "--configs", "description",
                     "--output_dir", str(tmp_path / "out")])
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2  # before: a traceback and exit 1
    assert "Traceback" not in err and len(errors) == 1
    assert "HTTP 401" in errors[0] and f"127.0.0.1:{server.server_address[1]}/v1/chat/completions" in errors[0]
    assert "hunter2" not in err and "volunteer" not in err  # the credentials are not echoed


def test_json_array_with_several_broken_records_in_a_row_counts_each(tmp_path):
    rows = records(12)
    items = [json.dumps(r) for r in rows]
    for i in (4, 5, 6):  # three consecutive records lose the opening quote of their body
        items[i] = items[i].replace('"comment_body": "', '"comment_body": ')
    path = tmp_path / "comments.json"
    path.write_text("[" + ", ".join(items) + "]")
    items_read = list(read_talk_export(path))
    rejects = [i for i in items_read if isinstance(i, Reject)]
    assert len(items_read) == 12 and len(rejects) == 3
    assert all("of 3 in the stretch" in r.reason for r in rejects)
    assert {i.comment_id for i in items_read if isinstance(i, Comment)} == {
        str(r["comment_id"]) for k, r in enumerate(rows) if k not in (4, 5, 6)}
