"""The GZ DECaLS decision tree: structure, flow, majority walks and the website's indices."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from dataset_builder import decision_tree as dt
from dataset_builder.decision_tree import DECALS_TREE, QUESTIONS, ROOT

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "gz_examples_decals"


def test_tree_has_the_decals_questions_in_website_order():
    assert [q.key for q in DECALS_TREE] == [
        "smooth-or-featured", "disk-edge-on", "bar", "has-spiral-arms", "bulge-size", "spiral-winding",
        "spiral-arm-count", "edge-on-bulge", "how-rounded", "merging", "odd-feature",
    ]
    assert QUESTIONS["smooth-or-featured"].answer_keys == ("smooth", "featured-or-disk", "artifact")
    assert QUESTIONS["spiral-arm-count"].answer_keys == ("1", "2", "3", "4", "more-than-4")
    assert [q.key for q in DECALS_TREE if q.multiple_choice] == ["odd-feature"]


def test_every_target_exists_and_there_are_no_cycles():
    for question in DECALS_TREE:
        for answer in question.answers:
            target = question.next_question(answer.key)
            assert target is None or target in QUESTIONS, (question.key, answer.key, target)

    def walk(key, seen):
        assert key not in seen, f"cycle through {key}"
        question = QUESTIONS[key]
        targets = {question.next_question(a.key) for a in question.answers} - {None}
        for target in targets:
            walk(target, seen | {key})

    walk(ROOT, frozenset())


def test_every_question_is_reachable_from_the_root():
    reached, frontier = set(), [ROOT]
    while frontier:
        key = frontier.pop()
        if key in reached:
            continue
        reached.add(key)
        q = QUESTIONS[key]
        frontier += [t for a in q.answers if (t := q.next_question(a.key))]
    assert reached == set(QUESTIONS)


@pytest.mark.parametrize(
    "question, answer, expected",
    [
        ("smooth-or-featured", "smooth", "how-rounded"),
        ("smooth-or-featured", "featured-or-disk", "disk-edge-on"),
        ("smooth-or-featured", "artifact", None),
        ("disk-edge-on", "yes", "edge-on-bulge"),
        ("disk-edge-on", "no", "bar"),
        ("bar", "yes", "has-spiral-arms"),
        ("bar", "no", "has-spiral-arms"),
        ("has-spiral-arms", "yes", "spiral-winding"),
        ("has-spiral-arms", "no", "bulge-size"),
        ("spiral-winding", "loose", "spiral-arm-count"),
        ("spiral-arm-count", "more-than-4", "bulge-size"),
        ("bulge-size", "dominant", "merging"),
        ("edge-on-bulge", "boxy", "merging"),
        ("how-rounded", "cigar-shaped", "merging"),
        ("merging", "neither", "odd-feature"),
        ("odd-feature", "ring", None),
    ],
)
def test_next_question_follows_gz_decals(question, answer, expected):
    assert dt.next_question(question, answer) == expected


def test_column_names_and_errors():
    q = QUESTIONS["has-spiral-arms"]
    assert q.column("yes") == "has-spiral-arms_yes_fraction"
    assert q.total_votes_column == "has-spiral-arms_total-votes"
    with pytest.raises(KeyError, match=r"has-spiral-arms.*maybe"):
        q.column("maybe")
    with pytest.raises(KeyError, match="no-such-question"):
        dt.next_question("no-such-question", "yes")
    cols = dt.vote_columns()
    assert cols[0] == "smooth-or-featured_smooth_fraction" and len(cols) == len(set(cols)) == 37


def test_answer_lookup_by_key_or_label():
    q = QUESTIONS["smooth-or-featured"]
    assert q.answer("featured-or-disk").label == "Features or disk"
    assert q.answer("features OR disk").key == "featured-or-disk"
    assert QUESTIONS["edge-on-bulge"].answer("No bulge").key == "none"
    with pytest.raises(KeyError, match="spiral"):
        q.answer("spiral")


def test_reachable_questions_smooth_galaxy():
    votes = {
        "smooth-or-featured_smooth_fraction": 0.8, "smooth-or-featured_featured-or-disk_fraction": 0.15,
        "smooth-or-featured_artifact_fraction": 0.05,
        "how-rounded_completely_fraction": 0.1, "how-rounded_in-between_fraction": 0.7,
        "how-rounded_cigar-shaped_fraction": 0.2,
        "merging_merger_fraction": 0.0, "merging_tidal-debris_fraction": 0.1, "merging_both_fraction": 0.0,
        "merging_neither_fraction": 0.9,
        # unreachable questions carry NaN in real catalogues
        "disk-edge-on_yes_fraction": math.nan, "disk-edge-on_no_fraction": math.nan,
    }
    keys = [q.key for q in dt.reachable_questions(votes)]
    assert keys == ["smooth-or-featured", "how-rounded", "merging", "odd-feature"]
    assert dt.majority_answer(QUESTIONS["how-rounded"], votes) == ("in-between", 0.7)
    assert dt.majority_answer(QUESTIONS["disk-edge-on"], votes) is None


def test_reachable_questions_barred_spiral_and_missing_votes():
    votes = {
        "smooth-or-featured_smooth_fraction": 0.2, "smooth-or-featured_featured-or-disk_fraction": 0.75,
        "smooth-or-featured_artifact_fraction": 0.05,
        "disk-edge-on_yes_fraction": 0.1, "disk-edge-on_no_fraction": 0.9,
        "bar_yes_fraction": 0.6, "bar_no_fraction": 0.4,
        "has-spiral-arms_yes_fraction": 0.85, "has-spiral-arms_no_fraction": 0.15,
        # spiral-winding absent: the walk goes on (arm count is asked whatever the winding)
        "spiral-arm-count_2_fraction": 0.7, "spiral-arm-count_3_fraction": 0.3,
    }
    keys = [q.key for q in dt.reachable_questions(votes)]
    assert keys == ["smooth-or-featured", "disk-edge-on", "bar", "has-spiral-arms", "spiral-winding",
                    "spiral-arm-count", "bulge-size", "merging", "odd-feature"]
    # without the root's votes the walk cannot choose a branch
    assert [q.key for q in dt.reachable_questions({})] == ["smooth-or-featured"]
    artifact = {"smooth-or-featured_artifact_fraction": 0.9, "smooth-or-featured_smooth_fraction": 0.1}
    assert [q.key for q in dt.reachable_questions(artifact)] == ["smooth-or-featured"]


def test_answer_path_validates_truth():
    edge_on = {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes", "edge-on-bulge": "boxy",
               "merging": "neither", "odd-feature": ["dust-lane"]}
    assert [k for k, _ in dt.answer_path(edge_on)] == [
        "smooth-or-featured", "disk-edge-on", "edge-on-bulge", "merging", "odd-feature"]
    with pytest.raises(ValueError, match="bar"):
        dt.answer_path({**edge_on, "bar": "yes"})
    with pytest.raises(ValueError, match="edge-on-bulge"):
        dt.answer_path({k: v for k, v in edge_on.items() if k != "edge-on-bulge"})
    with pytest.raises(ValueError, match="halo"):
        dt.answer_path({**edge_on, "odd-feature": ["halo"]})


def test_from_website_index_errors():
    assert dt.from_website_index(0, 1) == ("smooth-or-featured", "featured-or-disk")
    assert dt.from_website_index(10, 5, "checkbox") == ("odd-feature", "dust-lane")
    with pytest.raises(ValueError, match="Discuss"):
        dt.from_website_index(11, 0)
    with pytest.raises(ValueError, match="checkbox"):
        dt.from_website_index(10, 0, "answer")
    with pytest.raises(ValueError, match="answer_index 5"):
        dt.from_website_index(1, 5)


def test_labels_csv_rows_map_to_the_same_answer_text():
    labels = SHARED / "labels.csv"
    if not labels.exists():
        pytest.skip(f"shared GZ DECaLS examples absent: {labels}")
    with labels.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["survey"] == "decals"]
    assert rows
    for row in rows:
        q_key, a_key = dt.from_website_index(int(row["question_index"]), int(row["answer_index"]), row["answer_kind"])
        question = QUESTIONS[q_key]
        assert question.answer(a_key).label == row["answer_text"], row["image"]
        assert question.title == row["question_title"], row["image"]
        assert question.text == row["question_text"], row["image"]


def test_topological_order_puts_every_question_after_its_parents():
    order = dt.topological_order()
    assert sorted(order) == sorted(QUESTIONS) and order[0] == ROOT
    for question in DECALS_TREE:
        for answer in question.answers:
            target = question.next_question(answer.key)
            if target is not None:
                assert order.index(question.key) < order.index(target), (question.key, target)
