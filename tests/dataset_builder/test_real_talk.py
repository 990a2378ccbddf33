"""The real Galaxy Zoo: Weird & Wonderful Talk export (Panoptes layout), ingested and cleaned end to end.

Reads ../shared/data/talk_weird_wonderful/ next to the repository; skips when it is absent (a fresh clone).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from dataset_builder.clean import clean_comment
from dataset_builder.grouping import group_by_subject
from dataset_builder.records import Comment, Reject
from dataset_builder.report import write_report
from dataset_builder.talk import detect_talk_layout, read_talk_export

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "talk_weird_wonderful"
COMMENTS = DATA / "comments_pseudonymized.json"
TAGS = DATA / "tags_pseudonymized.json"

pytestmark = pytest.mark.skipif(not COMMENTS.is_file() or not TAGS.is_file(),
                                reason=f"real Talk sample not found at {DATA}")


@pytest.fixture(scope="module")
def run():
    raw_comments = json.loads(COMMENTS.read_text(encoding="utf-8"))
    raw_tags = json.loads(TAGS.read_text(encoding="utf-8"))
    rejects: list[Reject] = []
    stream = (clean_comment(c) if isinstance(c, Comment) else c for c in read_talk_export(COMMENTS, TAGS))
    subjects = group_by_subject(stream, rejects)
    return raw_comments, raw_tags, subjects, rejects


def test_layout_is_panoptes():
    assert detect_talk_layout(COMMENTS) == "panoptes"


def test_every_input_comment_is_kept_or_rejected_once(run):
    raw_comments, _, subjects, rejects = run
    input_ids = [str(c["comment_id"]) for c in raw_comments]
    kept = [c.comment_id for s in subjects.values() for c in s.comments]
    rejected = [r.id for r in rejects if r.kind in ("comment", "row")]
    assert len(kept) + len(rejected) == len(input_ids)
    assert set(kept).isdisjoint(rejected)
    assert set(kept) | set(rejected) == set(input_ids)
    assert not [r for r in rejects if r.kind == "tag"], "every tag points to a comment of the export"
    # Comments with no subject are exactly those on general boards (no focus id, no "Subject N" title).
    off_subject = {str(c["comment_id"]) for c in raw_comments
                   if c["comment_focus_id"] is None and not re.fullmatch(r"Subject \d+", c["discussion_title"] or "")}
    assert off_subject and {r.id for r in rejects if r.reason.startswith("no subject")} == off_subject


def test_no_user_id_reaches_the_output(run):
    raw_comments, raw_tags, subjects, rejects = run
    user_ids = {c["comment_user_id"] for c in raw_comments} | {t["user_id"] for t in raw_tags}
    user_ids.discard(None)
    assert len(user_ids) > 100
    dumped = json.dumps([asdict(s) for s in subjects.values()], default=str) + json.dumps(
        [r.to_json() for r in rejects])
    found = [u for u in user_ids if u in dumped]
    assert not found, f"user ids leaked: {found[:5]}"
    assert "comment_user_id" not in dumped and "user_id" not in dumped


def test_tags_export_is_attached(run):
    _, raw_tags, subjects, rejects = run
    kept = {c.comment_id: c for s in subjects.values() for c in s.comments}
    dropped = {r.id: r for r in rejects if r.stage == "clean"}
    off_subject = {r.id for r in rejects if r.reason.startswith("no subject")}
    for tag in raw_tags:
        cid, name = str(tag["comment_id"]), tag["name"].lower()
        if cid in off_subject:  # a tag in a general chat thread: about no galaxy in particular
            continue
        if cid in kept:
            assert name in kept[cid].tags, (cid, name)
            assert name in subjects[kept[cid].subject_id].tags
        else:
            # Tags of comments that cleaning dropped (e.g. hashtag-only comments) still reach their subject.
            assert cid in dropped, f"tagged comment {cid} neither kept nor dropped by cleaning"
            assert name in dropped[cid].tags and name in subjects[dropped[cid].subject_id].tags, (cid, name)
    assert sum(r.reason == "hashtags only" for r in dropped.values()) > 100


def test_cleaned_bodies_have_no_markup_mentions_or_urls(run):
    _, _, subjects, _ = run
    bodies = [c.body for s in subjects.values() for c in s.comments]
    assert len(bodies) > 3500
    for body in bodies:
        assert body and body == body.strip()
        assert not re.search(r"https?://|www\.|!\[|\]\(|<[a-z/]", body, re.I), body
        assert not re.search(r"(?<![\w@])@\w", body), body
        assert not re.search(r"(?<![\w&/#])#[a-z]\w*", body, re.I), body


def test_explore_report_on_the_real_sample(run, tmp_path):
    _, _, subjects, rejects = run
    path = write_report(subjects, rejects, tmp_path, "GZ Weird & Wonderful Talk")
    stats = json.loads((tmp_path / "report.json").read_text())
    assert stats["subjects"] == len(subjects)
    assert stats["top_hashtags"][0]["tag"] == "merger"
    assert "| ingest | comment | no subject |" in path.read_text()
