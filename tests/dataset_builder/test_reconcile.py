"""Nothing lost: every input record of the Talk export ends behind a row of the output or in rejects.jsonl.

The counts are recomputed here from the input files and the written parquet, independently of the
builder's own ledger (which must agree).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataset_builder.build import BuildOptions, build
from dataset_builder.synthetic import write_synthetic_export
from dataset_builder.writer import read_rejects

INPUT_STAGES = {"ingest", "clean", "build"}  # stages whose comment/row rejects are input records


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic-export")
    write_synthetic_export(60, folder, seed=3, size=64)
    return folder


def run_build(export: Path, out: Path, comments: Path | None = None):
    options = BuildOptions(output_dir=out, talk=comments or export / "comments.json", tags=export / "tags.json",
                           catalogue=export / "gz_decals_votes.csv", catalogue_id_column="subject_id",
                           images=export / "images", progress=False)
    return build(options)


def output_subjects(out: Path) -> set[str]:
    return {sid for f in (out / "data").rglob("*.parquet") for sid in pq.read_table(f, columns=["subject_id"])
            .column("subject_id").to_pylist()}


def reconcile(records: list, out: Path) -> tuple[int, int, list]:
    """(records behind a row, records rejected, rejects): asserts each record is counted exactly once."""
    rejects = read_rejects(out / "rejects.jsonl")
    assert all(r.reason.strip() for r in rejects), "every reject says why"
    record_rejects = [r for r in rejects if r.stage in INPUT_STAGES and r.kind in ("comment", "row")]
    rejected = Counter(r.id for r in record_rejects)
    in_output = output_subjects(out)
    behind_rows = 0
    for record in records:
        if not isinstance(record, dict):
            continue  # a malformed record: counted by its "<file>:<row>" reject below
        comment_id = str(record.get("comment_id"))
        if rejected[comment_id] > 0:
            rejected[comment_id] -= 1  # a duplicate id is rejected once per extra copy
            continue
        assert str(record["comment_focus_id"]) in in_output, record
        behind_rows += 1
    # What is left unmatched are the rejects of records without a usable comment id (malformed rows,
    # whose ids are "<file>:<row>"): one per non-object record.
    unmatched = sum(rejected.values())
    non_objects = sum(1 for r in records if not isinstance(r, dict))
    assert unmatched == non_objects
    return behind_rows, len(record_rejects), rejects


def test_synthetic_build_reconciles(export, tmp_path):
    result = run_build(export, tmp_path / "out")
    records = json.loads((export / "comments.json").read_text())
    behind_rows, rejected, rejects = reconcile(records, tmp_path / "out")
    assert behind_rows + rejected == len(records)
    stats = result.stats
    assert stats["reconciled"] and stats["input_records"] == len(records)
    assert stats["comments_in_output"] == behind_rows and stats["input_records_rejected"] == rejected
    assert behind_rows > 0.7 * len(records)
    # The rows' subjects: those with a comment kept, plus subjects known only through hashtags (a comment
    # that was only "#merger #ring" is rejected as text, but its tags still describe the galaxy).
    rejected_ids = {x.id for x in rejects}
    with_kept_comment = {str(r["comment_focus_id"]) for r in records if str(r["comment_id"]) not in rejected_ids}
    tags_only = output_subjects(tmp_path / "out") - with_kept_comment
    assert with_kept_comment <= output_subjects(tmp_path / "out")
    hashtag_rejects = {r.id for r in rejects if r.reason == "hashtags only"}
    assert all(any(str(r["comment_id"]) in hashtag_rejects for r in records if str(r["comment_focus_id"]) == s)
               for s in tags_only)


def test_corrupted_inputs_are_rejected_with_reasons_and_still_reconcile(export, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(export, broken)
    records = json.loads((broken / "comments.json").read_text())
    subject_comments = [r for r in records if r["comment_focus_type"] == "Subject"]
    first, second = subject_comments[0], subject_comments[5]
    duplicate = dict(second, comment_body="a second comment that reuses an id")  # duplicate comment id
    no_body = {k: v for k, v in subject_comments[7].items() if k != "comment_body"} | {"comment_id": 999999991}
    victim = subject_comments[10]
    (broken / "images" / f"{victim['comment_focus_id']}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    latin1 = dict(first, comment_id=999999992, comment_body="LATIN1MARK spiral arms")
    records = records + [duplicate, no_body, latin1, "not an object", 12345]
    text = json.dumps(records, ensure_ascii=False).encode("utf-8")
    # "Caf\xe9": a Windows-1252 byte that is not valid UTF-8 (bad encoding), inside a comment body
    (broken / "comments.json").write_bytes(text.replace(b"LATIN1MARK", b"Caf\xe9,"))

    result = run_build(broken, tmp_path / "out")
    behind_rows, rejected, rejects = reconcile(records, tmp_path / "out")
    assert behind_rows + rejected == len(records)
    assert result.stats["reconciled"] and result.stats["input_records"] == len(records)

    reasons = {(r.stage, r.id): r.reason for r in rejects}
    assert reasons[("ingest", str(second["comment_id"]))].startswith("duplicate comment_id")
    assert reasons[("ingest", "999999991")].startswith("malformed row: comment_body is missing")
    assert sum(1 for r in rejects if r.stage == "ingest" and r.reason.startswith("malformed row: a ")) == 2
    image_reject = reasons[("image", str(victim["comment_focus_id"]))]
    assert image_reject.startswith("corrupt")
    victim_comments = [str(r["comment_id"]) for r in records
                       if isinstance(r, dict) and r.get("comment_focus_id") == victim["comment_focus_id"]
                       and ("clean", str(r["comment_id"])) not in reasons]
    assert victim_comments and all(reasons[("build", c)].startswith("no image: subject") for c in victim_comments)
    assert str(victim["comment_focus_id"]) not in output_subjects(tmp_path / "out")
    # the badly encoded comment was repaired, not dropped: its subject is in the output
    assert str(first["comment_focus_id"]) in output_subjects(tmp_path / "out")
    assert ("ingest", "999999992") not in reasons and ("clean", "999999992") not in reasons
