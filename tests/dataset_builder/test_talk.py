"""Talk export ingest: both layouts, JSON/JSON lines/CSV, tags, encodings, malformed rows, duplicates."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from dataset_builder.clean import clean_comment
from dataset_builder.grouping import group_by_subject
from dataset_builder.records import Comment, Reject
from dataset_builder.talk import detect_talk_layout, normalise_id, read_talk_export

GZ_COLUMNS = ["locations", "subject_id", "subject_set_id", "board_id", "board_title", "board_description",
              "discussion_title", "comment_id", "comment_body"]


def _gz_row(comment_id, subject_id, body, url="https://panoptes-uploads.zooniverse.org/subject_location/a.jpeg"):
    return [json.dumps({"0": url}), subject_id, "5", "7", "Notes", "Comments on subjects", f"Subject {subject_id}",
            comment_id, body]


def write_gz_talk_csv(path: Path) -> Path:
    """A small GZ Talk CSV built in code: mojibake, HTML, @mentions, URLs, a duplicate id, a malformed row,
    a cp1252 byte that is not UTF-8, and a row without a subject."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(GZ_COLUMNS)
    writer.writerow(_gz_row("101", "9001", "Lovely spiral with a clear bar. #spiral #barred",
                            "https://panoptes-uploads.zooniverse.org/production/subject_location/9001.jpeg"))
    writer.writerow(_gz_row("102", "9001", "I agree with @StarGazer42, the bar isâ€™ very clear"))  # mojibake
    writer.writerow(_gz_row("103", "9002", "<p>Tidal &amp; tail to the <b>left</b></p> see https://example.org/x.png"))
    writer.writerow(_gz_row("102", "9003", "a second row reusing comment id 102"))  # duplicate id
    writer.writerow(["{}", "9004", "5", "7"])  # malformed: 4 fields
    writer.writerow(_gz_row("105", "", "a comment with no subject"))
    writer.writerow(_gz_row("106", "9002", "ENCODING_PLACEHOLDER"))
    writer.writerow(_gz_row("107", "9005.0", "a #merger with a long tail"))  # a pandas float id
    data = text.getvalue().encode("utf-8").replace(b"ENCODING_PLACEHOLDER", "Nebula caf\xe9 glow".encode("cp1252"))
    path.write_bytes(data)
    return path


def test_gz_talk_csv_layout_and_each_row_behaviour(tmp_path):
    path = write_gz_talk_csv(tmp_path / "talk.csv")
    assert detect_talk_layout(path) == "gz_talk_csv"
    items = list(read_talk_export(path))
    comments = {c.comment_id: c for c in items if isinstance(c, Comment)}
    rejects = [r for r in items if isinstance(r, Reject)]

    assert comments["101"].image_url == "https://panoptes-uploads.zooniverse.org/production/subject_location/9001.jpeg"
    assert comments["101"].subject_id == "9001" and comments["101"].board == "Notes"
    assert comments["102"].body.startswith("I agree with @StarGazer42")  # ingest keeps the raw body
    assert comments["102"].subject_id == "9001", "the duplicate id must not replace the first row"
    assert comments["106"].body == "Nebula café glow", "a cp1252 byte is repaired, not a crash"
    assert comments["107"].subject_id == "9005"

    reasons = {r.id: r.reason for r in rejects}
    assert reasons["102"].startswith("duplicate comment_id")
    assert reasons["105"].startswith("no subject")
    malformed = [r for r in rejects if r.reason.startswith("malformed row")]
    assert len(malformed) == 1 and "4 fields" in malformed[0].reason and malformed[0].id == "talk.csv:5"
    # Every data row is accounted for exactly once.
    assert len(comments) + len(rejects) == 8


def test_gz_talk_csv_cleaned_end_to_end(tmp_path):
    path = write_gz_talk_csv(tmp_path / "talk.csv")
    rejects: list[Reject] = []
    stream = (clean_comment(c) if isinstance(c, Comment) else c for c in read_talk_export(path))
    subjects = group_by_subject(stream, rejects)
    first = subjects["9001"]
    bodies = [c.body for c in first.comments]
    assert bodies[0] == "Lovely spiral with a clear bar."
    assert bodies[1] == "I agree with, the bar is' very clear"  # mention gone, mojibake repaired
    assert "StarGazer42" not in json.dumps([c.body for s in subjects.values() for c in s.comments])
    assert first.tags == ["spiral", "barred"]
    assert first.image_ref.endswith("9001.jpeg")
    assert subjects["9002"].comments[0].body == "Tidal & tail to the left\nsee"
    assert subjects["9005"].comments[0].body == "a merger with a long tail"
    assert subjects["9005"].tags == ["merger"]


PANOPTES_ROWS = [
    {"board_id": 1, "board_title": "Notes", "board_description": "d", "discussion_id": 11,
     "discussion_title": "Subject 500", "comment_id": 1, "comment_body": "two arms #spiral",
     "comment_focus_id": 500, "comment_focus_type": "Subject", "comment_user_id": "u_secret_1",
     "comment_created_at": "2023-04-12T12:26:40.717Z"},
    {"board_id": 1, "board_title": "Notes", "board_description": "d", "discussion_id": 12,
     "discussion_title": "Subject 501", "comment_id": 2, "comment_body": "ring around the core",
     "comment_focus_id": None, "comment_focus_type": None, "comment_user_id": "u_secret_2",
     "comment_created_at": "2023-04-12T12:27:00.000Z"},  # subject only in the title
    {"board_id": 2, "board_title": "Tea", "board_description": "chat", "discussion_id": 13,
     "discussion_title": "Hello everyone", "comment_id": 3, "comment_body": "hi all",
     "comment_focus_id": None, "comment_focus_type": None, "comment_user_id": "u_secret_3",
     "comment_created_at": "2023-04-12T12:28:00.000Z"},
]
TAG_ROWS = [
    {"id": 90, "name": "Spiral", "comment_id": 1, "taggable_id": 500, "user_id": "u_secret_1"},
    {"id": 91, "name": "two_arms", "comment_id": 1, "taggable_id": 500, "user_id": "u_secret_1"},
    {"id": 92, "name": "lost", "comment_id": 77, "taggable_id": 999, "user_id": "u_secret_9"},
]


@pytest.mark.parametrize("fmt", ["array", "lines", "csv"])
def test_panoptes_export_in_every_format_with_tags(tmp_path, fmt):
    if fmt == "array":
        path = tmp_path / "comments.json"
        path.write_text(json.dumps(PANOPTES_ROWS, indent=1))
    elif fmt == "lines":
        path = tmp_path / "comments.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in PANOPTES_ROWS) + "\n")
    else:
        path = tmp_path / "comments.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(PANOPTES_ROWS[0]))
            writer.writeheader()
            writer.writerows(PANOPTES_ROWS)
    tags = tmp_path / "tags.json"
    tags.write_text(json.dumps(TAG_ROWS))
    assert detect_talk_layout(path) == "panoptes"
    items = list(read_talk_export(path, tags))
    comments = [c for c in items if isinstance(c, Comment)]
    rejects = [r for r in items if isinstance(r, Reject)]
    assert [(c.comment_id, c.subject_id) for c in comments] == [("1", "500"), ("2", "501")]
    assert comments[0].tags == ["spiral", "two_arms"]
    assert comments[0].created_at == "2023-04-12T12:26:40.717Z"
    assert [(r.id, r.kind, r.reason.split(":")[0]) for r in rejects] == [("3", "comment", "no subject"),
                                                                         ("77", "tag", "orphan tag")]
    dumped = json.dumps([vars(i) for i in items])
    assert "u_secret" not in dumped, "user ids must never be stored"


def test_truncated_json_array_keeps_complete_rows_and_rejects_the_rest(tmp_path):
    text = json.dumps(PANOPTES_ROWS[:2], indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) - 40])  # cut inside the second object
    items = list(read_talk_export(path))
    assert isinstance(items[0], Comment) and items[0].comment_id == "1"
    assert isinstance(items[1], Reject) and items[1].reason.startswith("malformed row")
    assert "rest of the file" in items[1].reason or "truncated" in items[1].reason
    assert len(items) == 2


def test_json_lines_bad_line_and_non_object(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(PANOPTES_ROWS[0]) + "\n{not json\n[1, 2]\n" + json.dumps({"comment_body": "x"}) + "\n")
    items = list(read_talk_export(path))
    assert isinstance(items[0], Comment)
    assert [r.reason.split(":")[0] for r in items[1:]] == ["malformed row"] * 3
    assert "invalid JSON line" in items[1].reason and "list" in items[2].reason and "no comment_id" in items[3].reason


def test_large_json_array_streams_across_chunk_boundaries(tmp_path, monkeypatch):
    import dataset_builder.talk_files as talk_files

    monkeypatch.setattr(talk_files, "_CHUNK_CHARS", 64)  # every object straddles a chunk boundary
    rows = [dict(PANOPTES_ROWS[0], comment_id=i, comment_body="ß" * (i % 7) + " spiral") for i in range(200)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    items = list(read_talk_export(path))
    assert [c.comment_id for c in items] == [str(i) for i in range(200)]
    assert items[13].body == "ßßßßßß spiral"


def test_unknown_layout_names_file_and_missing_columns(tmp_path):
    path = tmp_path / "weird.csv"
    path.write_text("id,text\n1,hello\n")
    with pytest.raises(ValueError) as err:
        detect_talk_layout(path)
    message = str(err.value)
    assert "weird.csv" in message and "comment_body" in message and "subject_id" in message
    assert "comment_focus_id or discussion_title" in message


def test_normalise_id():
    assert normalise_id(61511598) == "61511598"
    assert normalise_id(61511598.0) == "61511598"
    assert normalise_id(" 42.0 ") == "42"
    assert normalise_id("J123456.78+012345.6") == "J123456.78+012345.6"
    assert normalise_id("") is None and normalise_id(None) is None and normalise_id(float("nan")) is None


def test_json_lines_with_non_utf8_bytes_are_repaired(tmp_path):
    row = dict(PANOPTES_ROWS[0], comment_body="BODY")
    line = json.dumps(row).encode("utf-8").replace(b"BODY", "na\xefve \x93quote\x94".encode("latin-1"))
    path = tmp_path / "c.jsonl"
    path.write_bytes(line + b"\n")
    (item,) = list(read_talk_export(path))
    assert item.body == "na\u00efve \u201cquote\u201d"  # latin-1 letter and cp1252 curly quotes


def test_broken_record_is_skipped_alone_whatever_the_chunk_boundaries(tmp_path, monkeypatch):
    import dataset_builder.talk_files as talk_files

    rows = [dict(PANOPTES_ROWS[0], comment_id=i, comment_body='caf\u00e9 \\ "q" \u2603 ' * (i % 4)) for i in range(60)]
    items = [json.dumps(r) for r in rows]
    items[30] = items[30].replace('"comment_body": "', '"comment_body": ')  # the opening quote is lost
    path = tmp_path / "c.json"
    path.write_text("[" + ",\n".join(items) + "]")
    for chunk in range(32, 200, 7):  # escapes, multi-byte characters and the broken record cut anywhere
        # (a record may span up to _MAX_RECORD_CHUNKS chunks: these records are < 16 * 32 characters)
        monkeypatch.setattr(talk_files, "_CHUNK_CHARS", chunk)
        out = list(read_talk_export(path))
        assert [o.comment_id for o in out if isinstance(o, Comment)] == [str(i) for i in range(60) if i != 30], chunk
        assert sum(isinstance(o, Reject) for o in out) == 1, chunk
