"""The explore report: figures in report.md/report.json match the data; plots are real PNGs."""

from __future__ import annotations

import json

from PIL import Image

from dataset_builder.records import Comment, Reject, Subject
from dataset_builder.report import compute_stats, write_report


def _subjects() -> dict[str, Subject]:
    def c(cid, sid, body):
        return Comment(cid, sid, body, "t.json")

    return {
        "a": Subject("a", comments=[c("1", "a", "two arms"), c("2", "a", "a bar and a ring too")],
                     tags=["spiral", "bar"], image_bytes=b"img", votes={"bar_yes_fraction": 0.7}),
        "b": Subject("b", comments=[c("3", "b", "merger")], tags=["merger", "spiral"], image_bytes=b"img"),
        "c": Subject("c", comments=[c("4", "c", "one two three four five six")], votes={"bar_yes_fraction": 0.1}),
        "d": Subject("d", tags=["spiral"]),  # known only from a hashtag-only comment
    }


REJECTS = [
    Reject("ingest", "comment", "9", "no subject: a discussion on board 'Tea', not about a galaxy", "t.json"),
    Reject("ingest", "comment", "8", "no subject: a discussion on board 'Chat', not about a galaxy", "t.json"),
    Reject("clean", "comment", "7", "hashtags only", "t.json"),
    Reject("image", "image", "c", "missing: no image file for c (no image folder given)", ""),
]


def test_stats_are_the_figures_of_the_data():
    stats = compute_stats(_subjects(), REJECTS)
    assert stats["subjects"] == 4 and stats["comments"] == 4
    assert stats["comments_per_subject_histogram"] == {0: 1, 1: 2, 2: 1}
    assert stats["comments_per_subject"]["mean"] == 1.0 and stats["comments_per_subject"]["max"] == 2
    assert stats["words_per_comment"]["median"] == 2 and stats["words_per_comment"]["max"] == 6
    assert stats["top_hashtags"][:2] == [{"tag": "spiral", "subjects": 3}, {"tag": "bar", "subjects": 1}]
    assert stats["coverage"] == {"with_comments": 3, "with_hashtags": 3, "with_image": 2, "with_votes": 2,
                                 "with_image_and_votes": 1}
    assert {"stage": "ingest", "kind": "comment", "reason": "no subject", "count": 2} in stats["rejects_by_reason"]


def test_write_report_files(tmp_path):
    path = write_report(_subjects(), REJECTS, tmp_path / "explore", "tiny talk")
    assert path == tmp_path / "explore" / "report.md"
    text = path.read_text()
    assert text.startswith("# tiny talk: explore report")
    assert "- Subjects: 4" in text and "| #spiral | 3 |" in text
    assert "| with image and votes | 1 | 25.0% |" in text
    assert "| ingest | comment | no subject | 2 |" in text
    stats = json.loads((tmp_path / "explore" / "report.json").read_text())
    assert stats["comments"] == 4 and stats["rejects"] == 4
    for name in ("comments_per_subject", "words_per_comment", "top_hashtags", "coverage"):
        assert stats["plots"][name] == f"{name}.png"
        assert f"({name}.png)" in text
        with Image.open(tmp_path / "explore" / f"{name}.png") as image:
            assert image.format == "PNG" and image.size[0] >= 300


def test_empty_input_still_writes_a_report(tmp_path):
    path = write_report({}, [], tmp_path, "empty")
    assert "- Subjects: 0" in path.read_text()
    assert json.loads((tmp_path / "report.json").read_text())["top_hashtags"] == []
