"""Instruction rows: reachable questions only, wording that follows the vote fraction, the row schema."""

from __future__ import annotations

import json

import pytest

from dataset_builder.answer_wording import answer_text, parse_answer
from dataset_builder.decision_tree import QUESTIONS, confidence_band, reachable_questions, vote_columns
from dataset_builder.instructions import (
    CONFIGS,
    DESCRIPTION_PROMPTS,
    WALK_ROW,
    conversation_rows,
    decision_tree_rows,
    description_rows,
    parse_configs,
    rows_for,
)
from dataset_builder.records import Reject, Subject, Summary

# A featured, face-on, unbarred two-armed spiral: a path through the featured branch.
SPIRAL_VOTES = {
    "smooth-or-featured_smooth_fraction": 0.10,
    "smooth-or-featured_featured-or-disk_fraction": 0.85,
    "smooth-or-featured_artifact_fraction": 0.05,
    "disk-edge-on_yes_fraction": 0.08,
    "disk-edge-on_no_fraction": 0.92,
    "bar_yes_fraction": 0.30,
    "bar_no_fraction": 0.70,
    "has-spiral-arms_yes_fraction": 0.95,
    "has-spiral-arms_no_fraction": 0.05,
    "spiral-winding_tight_fraction": 0.25,
    "spiral-winding_medium_fraction": 0.40,
    "spiral-winding_loose_fraction": 0.35,
    "spiral-arm-count_1_fraction": 0.05,
    "spiral-arm-count_2_fraction": 0.75,
    "spiral-arm-count_3_fraction": 0.10,
    "spiral-arm-count_4_fraction": 0.05,
    "spiral-arm-count_more-than-4_fraction": 0.05,
    "bulge-size_no_fraction": 0.2,
    "bulge-size_obvious_fraction": 0.6,
    "bulge-size_dominant_fraction": 0.2,
    "merging_merger_fraction": 0.05,
    "merging_tidal-debris_fraction": 0.05,
    "merging_both_fraction": 0.0,
    "merging_neither_fraction": 0.90,
    "odd-feature_none_fraction": 0.70,
    "odd-feature_ring_fraction": 0.55,
    "odd-feature_lens-or-arc_fraction": 0.0,
    "odd-feature_irregular_fraction": 0.05,
    "odd-feature_other_fraction": 0.0,
    "odd-feature_dust-lane_fraction": 0.0,
    "odd-feature_overlapping_fraction": 0.0,
    # votes of questions this galaxy does NOT reach (smooth branch): must never be asked
    "how-rounded_completely_fraction": 0.5,
    "how-rounded_in-between_fraction": 0.3,
    "how-rounded_cigar-shaped_fraction": 0.2,
}


def subject(subject_id="1234", votes=SPIRAL_VOTES, tags=("spiral", "ring")) -> Subject:
    return Subject(subject_id=subject_id, tags=list(tags), votes=dict(votes), image_bytes=b"jpeg bytes",
                   source="synthetic", truth={"smooth-or-featured": "featured-or-disk"})


def summary(subject_id="1234", features=("two spiral arms", "a ring"), uncertainty="medium") -> Summary:
    return Summary(subject_id=subject_id, description="A face-on spiral galaxy with two arms and a faint ring.",
                   visible_features=list(features), uncertainty=uncertainty, backend="template", model="template-v1")


def texts(message) -> list[str]:
    return [block["text"] for block in message["content"] if block["type"] == "text"]


def single_question_rows(rows):
    return [r for r in rows if r["question"] is not None]


def test_decision_tree_asks_only_reachable_questions_with_a_majority():
    rows = single_question_rows(decision_tree_rows(subject()))
    asked = [r["question"] for r in rows]
    assert asked == [q.key for q in reachable_questions(SPIRAL_VOTES)]
    assert "how-rounded" not in asked and "edge-on-bulge" not in asked  # other branches
    assert asked[:4] == ["smooth-or-featured", "disk-edge-on", "bar", "has-spiral-arms"]


def test_artifact_majority_stops_the_tree_at_the_first_question():
    votes = {"smooth-or-featured_smooth_fraction": 0.1, "smooth-or-featured_featured-or-disk_fraction": 0.1,
             "smooth-or-featured_artifact_fraction": 0.8, "bar_yes_fraction": 0.9, "bar_no_fraction": 0.1}
    rows = decision_tree_rows(subject(votes=votes))
    assert [(r["question"], r["answer"]) for r in rows] == [("smooth-or-featured", "artifact")]  # no walk for one Q


def test_questions_without_votes_are_skipped_not_invented():
    votes = {k: v for k, v in SPIRAL_VOTES.items() if not k.startswith("bar_")}
    asked = [r["question"] for r in single_question_rows(decision_tree_rows(subject(votes=votes)))]
    assert "bar" not in asked and "has-spiral-arms" in asked  # the walk goes on past an answer-independent step


def test_no_votes_gives_a_reject_with_a_reason():
    rows, rejects = rows_for("decision_tree", subject(votes={}), None)
    assert rows == [] and len(rejects) == 1 and "no vote fractions" in rejects[0].reason


def test_answer_row_keeps_key_fraction_and_every_vote_column():
    for row in single_question_rows(decision_tree_rows(subject())):
        question = QUESTIONS[row["question"]]
        assert row["answer_fraction"] == SPIRAL_VOTES[question.column(row["answer"])]
        assert list(row["votes"]) == vote_columns()  # all columns, same order: one parquet schema
        assert row["votes"]["bar_yes_fraction"] == 0.30
        assert row["votes"]["edge-on-bulge_boxy_fraction"] is None  # unknown -> null
        assert json.loads(row["truth"]) == {"smooth-or-featured": "featured-or-disk"}


@pytest.mark.parametrize(
    ("fraction", "band"), [(0.95, "confident"), (0.8, "confident"), (0.79, "likely"), (0.5, "likely"), (0.4, "uncertain")]
)
def test_confidence_band_thresholds(fraction, band):
    assert confidence_band(fraction) == band


def test_wording_follows_the_vote_fraction():
    rows = {r["question"]: r for r in single_question_rows(decision_tree_rows(subject()))}
    answer = lambda key: texts(rows[key]["messages"][1])[0]  # noqa: E731
    # confident (0.95): no runner-up, agreement words
    assert answer("has-spiral-arms").startswith("Spiral")
    assert "95%" in answer("has-spiral-arms") and "No spiral" not in answer("has-spiral-arms")
    # likely (0.70): a majority, with the dissent named
    assert answer("bar").startswith("No bar") and "70%" in answer("bar") and "30%" in answer("bar")
    # uncertain (0.40): the runner-up (Loose, 0.35) is mentioned
    winding = answer("spiral-winding")
    assert winding.startswith("Medium") and "Loose" in winding and "35%" in winding


def test_every_wording_in_every_band_parses_back_to_its_answer():
    question = QUESTIONS["bar"]
    import random

    for fraction in (0.3, 0.6, 0.9):
        votes = {"bar_yes_fraction": fraction, "bar_no_fraction": 1 - fraction}
        for seed in range(20):
            text = answer_text(question, "yes", fraction, votes, random.Random(seed))
            assert parse_answer(question, text) == "yes", text
            text = answer_text(question, "no", 1 - fraction, votes, random.Random(seed))
            assert parse_answer(question, text) == "no", text  # "No bar" is not read as "No"


def test_checkbox_question_mentions_other_ticked_options():
    row = next(r for r in decision_tree_rows(subject()) if r["question"] == "odd-feature")
    assert row["answer"] == "none"
    assert "Ring (55%)" in texts(row["messages"][1])[0]


def test_walk_row_is_multi_turn_with_the_image_once():
    rows = decision_tree_rows(subject())
    walk = rows[-1]
    assert walk["id"] == f"decision_tree-1234-{WALK_ROW}" and walk["question"] is None
    singles = single_question_rows(rows)
    assert len(walk["messages"]) == 2 * len(singles)
    images = [b for m in walk["messages"] for b in m["content"] if b["type"] == "image"]
    assert len(images) == 1 and walk["messages"][0]["content"][0] == {"type": "image", "text": None}


@pytest.mark.parametrize("config", CONFIGS)
def test_message_layout_image_placeholder_first_then_text_only(config):
    rows, _ = rows_for(config, subject(), summary())
    assert rows
    for row in rows:
        first, *rest = row["messages"]
        assert first["role"] == "user"
        assert first["content"][0] == {"type": "image", "text": None}
        assert all(b["type"] == "text" and b["text"] for b in first["content"][1:])
        for message in rest:
            assert all(b["type"] == "text" and b["text"] for b in message["content"])
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        assert row["id"].startswith(f"{config}-1234-") and row["subject_id"] == "1234"
        assert row["image"] == {"bytes": b"jpeg bytes", "path": None}
        assert row["tags"] == ["spiral", "ring"] and row["source"] == "synthetic"


def test_rows_are_deterministic_and_ids_unique():
    first = [rows_for(c, subject(), summary())[0] for c in CONFIGS]
    again = [rows_for(c, subject(), summary())[0] for c in CONFIGS]
    assert first == again
    ids = [row["id"] for rows in first for row in rows]
    assert len(ids) == len(set(ids))


def test_description_prompt_varies_across_subjects_and_answer_is_the_summary():
    prompts = set()
    for i in range(40):
        row = description_rows(subject(str(i)), summary(str(i)))[0]
        prompts.add(texts(row["messages"][0])[0])
        assert texts(row["messages"][1]) == [summary().description]
        assert row["summary_backend"] == "template"
    assert len(prompts) >= 8 and prompts <= set(DESCRIPTION_PROMPTS)


def test_conversation_talks_about_features_votes_tags_and_certainty():
    rows, reject = conversation_rows(subject(), summary())
    assert reject is None
    assistant = [texts(m)[0] for m in rows[0]["messages"] if m["role"] == "assistant"]
    assert assistant[0] == summary().description
    assert any("two spiral arms and a ring" in a for a in assistant)
    assert any(a.startswith("Spiral") for a in assistant)  # vote-grounded turn
    assert any("#spiral" in a for a in assistant)
    assert any("Somewhat" in a for a in assistant)  # uncertainty "medium"


def test_conversation_with_nothing_to_talk_about_is_rejected_with_reason():
    bare = subject(votes={}, tags=())
    rows, reject = conversation_rows(bare, summary(features=(), uncertainty="unknown"))
    assert rows == [] and isinstance(reject, Reject) and "too little to talk about" in reject.reason


def test_text_configs_without_a_summary_are_rejected():
    rows, rejects = rows_for("description", subject(), None)
    assert rows == [] and rejects[0].reason == "no summary for this subject"


def test_parse_configs():
    assert parse_configs("decision_tree, description") == ["decision_tree", "description"]
    with pytest.raises(ValueError, match="unknown config.*captions.*choose from"):
        parse_configs("description,captions")


# --- wording a trained model can say about a NEW image (issue 9) -------------------------------------------


def test_answers_are_the_models_estimate_not_a_claim_about_volunteers():
    """The demo model said "The volunteers agree: 71% chose this" about galaxies no volunteer saw."""
    import random

    from dataset_builder.answer_wording import CHECKBOX_EXTRA, CONFIDENT_PHRASES, LIKELY_PHRASES, UNCERTAIN_PHRASES

    for phrase in (*CONFIDENT_PHRASES, *LIKELY_PHRASES, *UNCERTAIN_PHRASES, CHECKBOX_EXTRA):
        lowered = phrase.lower()
        assert "estimat" in lowered or "expect" in lowered or "would" in lowered, phrase
        for claim in ("volunteers agree", "chose", "answered this", "picked this", "ticked by many"):
            assert claim not in lowered, phrase
    question = QUESTIONS["has-spiral-arms"]
    votes = {"has-spiral-arms_yes_fraction": 0.71, "has-spiral-arms_no_fraction": 0.29}
    texts_ = {answer_text(question, "yes", 0.71, votes, random.Random(seed)) for seed in range(30)}
    assert all(t.startswith("Spiral") and "71%" in t for t in texts_)


def test_template_descriptions_describe_the_galaxy_without_meta_text():
    """Descriptions said 'Its Talk hashtags are "..."', which the demo model repeated about real galaxies."""
    from dataset_builder.records import Comment
    from dataset_builder.summarise.template import template_summary

    for tags in (("spiral", "ring"), ("weird", "dustlane"), ("galaxy_zoo",)):
        for index in range(20):
            talk = Subject(subject_id=str(index), votes=SPIRAL_VOTES, tags=list(tags),
                           comments=[Comment(str(index), str(index), "lovely, maybe a merger?", "t")])
            text = template_summary(talk)["description"]
            for meta in ("talk", "hashtag", "tagged", "volunteer", "comment", "discussion", '"'):
                assert meta not in text.lower(), text
    dusty = template_summary(Subject(subject_id="9", votes=SPIRAL_VOTES, tags=["dustlane"]))["description"]
    assert "dust lane" in dusty  # a hashtag that names a feature still counts, hedged
    assert template_summary(Subject(subject_id="8", tags=["weird"]))["description"] == ""  # nothing to describe


def test_class_labels_give_answers_without_fractions():
    from dataset_builder.instructions import LABEL_BACKEND, label_rows

    labels = {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "has-spiral-arms": "yes"}
    galaxy = Subject(subject_id="587", votes={})
    rows, rejects = label_rows("decision_tree", galaxy, labels)
    assert not rejects and [r["question"] for r in rows] == ["smooth-or-featured", "disk-edge-on", "has-spiral-arms", None]
    for row in rows[:-1]:
        reply = texts(row["messages"][1])[0]
        assert parse_answer(QUESTIONS[row["question"]], reply) == labels[row["question"]]
        assert "%" not in reply and row["answer_fraction"] is None and row["summary_backend"] == LABEL_BACKEND
        assert all(v is None for v in row["votes"].values())
    (description,), _ = label_rows("description", galaxy, labels)
    assert "spiral galaxy" in texts(description["messages"][1])[0]
    none, (reject,) = label_rows("conversation", galaxy, labels)
    assert not none and "class label" in reject.reason
