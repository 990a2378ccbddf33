"""Curation: exact and near duplicates, length bounds, the summary validator, the split by subject."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dataset_builder.curate import Curator, LengthBounds, parse_split_fractions, split_for
from dataset_builder.instructions import conversation
from dataset_builder.minhash import MinHasher, NearDuplicateIndex, jaccard
from dataset_builder.summarise import summary_source_text, validate_summary
from dataset_builder.records import Comment, Subject

LONG = ("A grand design spiral galaxy with two long arms that wind out from a bright yellow bulge, "
        "a faint bar across the centre and a blue star-forming ring around it; a small companion sits "
        "to the lower left and there may be a faint tidal stream towards the top of the image.")


def row(config: str, subject_id: str, answer: str, question: str = "Describe this galaxy.", k: int = 0) -> dict:
    return {"id": f"{config}-{subject_id}-{k}", "subject_id": subject_id, "source": "test",
            "messages": conversation([(question, answer)])}


def test_exact_duplicate_same_image_same_conversation_is_removed():
    curator = Curator()
    assert curator.check("decision_tree", row("decision_tree", "1", "Bar. 90% agree."), image_key="img-a") is None
    reject = curator.check("decision_tree", row("decision_tree", "2", "Bar. 90% agree."), image_key="img-a")
    assert reject is not None and reject.stage == "curate" and reject.kind == "row"
    assert reject.id == "decision_tree-2-0" and reject.reason.startswith("exact duplicate")
    # Same templated answer for a different galaxy is a different sample, not a duplicate.
    assert curator.check("decision_tree", row("decision_tree", "3", "Bar. 90% agree."), image_key="img-b") is None
    # A different question about the same image is a different sample.
    assert curator.check("decision_tree", row("decision_tree", "3", "Bar. 90% agree.", question="Bar?", k=1),
                         image_key="img-b") is None
    assert curator.stats.kept == {"decision_tree": 3}
    assert curator.stats.rejected == {"decision_tree": {"exact_duplicate": 1}}


def test_case_and_punctuation_variants_of_free_text_are_near_duplicates():
    curator = Curator()
    assert curator.check("description", row("description", "1", LONG), image_key="a") is None
    shouted = LONG.upper().replace(",", "").replace(";", " ...")
    reject = curator.check("description", row("description", "2", shouted), image_key="b")
    assert reject is not None and "near duplicate of description-1-0 (estimated Jaccard 1.00)" in reject.reason


def test_near_duplicate_free_text_is_removed_and_names_the_kept_row():
    curator = Curator(near_duplicate_threshold=0.8)
    assert curator.check("description", row("description", "1", LONG), image_key="a") is None
    edited = LONG.replace("faint bar", "weak bar")  # one word changed: Jaccard ~0.9
    assert jaccard(LONG, edited) > 0.8
    reject = curator.check("description", row("description", "2", edited), image_key="b")
    assert reject is not None and "near duplicate of description-1-0" in reject.reason
    other = "A smooth, round elliptical galaxy with a bright core and nothing else of note in the field around it."
    assert curator.check("description", row("description", "3", other), image_key="c") is None


def test_near_duplicates_below_threshold_are_kept():
    curator = Curator(near_duplicate_threshold=0.95)
    half = LONG[: len(LONG) // 2] + " Nothing else stands out in this image of the galaxy at all today."
    assert jaccard(LONG, half) < 0.95
    assert curator.check("description", row("description", "1", LONG), image_key="a") is None
    assert curator.check("description", row("description", "2", half), image_key="b") is None


def test_decision_tree_rows_are_not_near_deduplicated():
    curator = Curator(near_duplicate_threshold=0.5)
    assert curator.check("decision_tree", row("decision_tree", "1", LONG), image_key="a") is None
    assert curator.check("decision_tree", row("decision_tree", "2", LONG + " Indeed."), image_key="b") is None


def test_minhash_estimate_tracks_exact_jaccard():
    hasher = MinHasher(num_permutations=256)
    rng = random.Random(0)
    words = LONG.split()
    for _ in range(10):
        other = " ".join(w if rng.random() > 0.15 else "changed" for w in words)
        estimate = float((hasher.signature(LONG) == hasher.signature(other)).mean())
        assert abs(estimate - jaccard(LONG, other)) < 0.12


def test_batch_signatures_equal_one_by_one_signatures():
    hasher = MinHasher()
    texts = [LONG, "", "two words", LONG.upper(), "A smooth round galaxy with nothing else in the field."]
    batch = hasher.signatures(texts)
    assert batch.shape == (5, 64)
    for text, row in zip(texts, batch):
        assert (row == hasher.signature(text)).all()


def test_near_duplicate_index_is_stable_across_instances():
    # Stable shingle hashes (not Python's salted hash): a rebuild drops the same rows.
    a, b = NearDuplicateIndex(), NearDuplicateIndex()
    assert (a.hasher.signature(LONG) == b.hasher.signature(LONG)).all()


def test_length_bounds():
    curator = Curator(length_bounds={"description": LengthBounds(min_words=5, max_words=20)})
    short = curator.check("description", row("description", "1", "Nice spiral."), image_key="a")
    assert short is not None and "too short: 2 words < 5" in short.reason
    long = curator.check("description", row("description", "2", LONG), image_key="b")
    assert long is not None and "too long" in long.reason
    assert curator.check("description", row("description", "3", "A barred spiral with two arms."), image_key="c") is None
    assert curator.stats.rejected["description"] == {"length": 2}


def test_validator_rejects_summaries_with_unsupported_facts():
    subject = Subject("9", comments=[Comment("c1", "9", "Lovely barred spiral with two arms", "test")])
    source = summary_source_text(subject)
    curator = Curator(validator=validate_summary)
    invented = "A barred spiral galaxy, NGC 1300, with two arms at a redshift of 0.02."
    reject = curator.check("description", row("description", "9", invented), image_key="a",
                           summary_text=invented, source_text=source)
    assert reject is not None and reject.reason.startswith("summary failed validation")
    supported = "A barred spiral galaxy with two arms."
    assert curator.check("description", row("description", "10", supported), image_key="b",
                         summary_text=supported, source_text=source) is None
    assert curator.stats.rejected["description"] == {"validator": 1}


def test_validator_is_not_applied_without_a_summary():
    calls = []
    curator = Curator(validator=lambda text, source: calls.append(text) or "always bad")
    assert curator.check("decision_tree", row("decision_tree", "1", "Bar. 90% agree."), image_key="a") is None
    assert calls == []


def test_split_is_deterministic_disjoint_and_follows_the_fractions():
    ids = [str(100_000 + i) for i in range(6000)]
    splits = {i: split_for(i) for i in ids}
    assert splits == {i: split_for(i) for i in reversed(ids)}  # order-independent, repeatable
    counts = Counter(splits.values())
    assert set(counts) == {"train", "validation", "test"}
    assert abs(counts["train"] / 6000 - 0.8) < 0.03 and abs(counts["test"] / 6000 - 0.1) < 0.02
    # Other fractions move subjects only between neighbouring splits, and 1,0,0 puts all in train.
    assert {split_for(i, (1.0, 0.0, 0.0)) for i in ids[:200]} == {"train"}
    assert {split_for(i, (0.0, 0.0, 1.0)) for i in ids[:200]} == {"test"}


def test_parse_split_fractions():
    assert parse_split_fractions("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    for bad in ("0.8,0.1", "0.5,0.5,0.5", "a,b,c", "1.2,-0.1,-0.1"):
        with pytest.raises(ValueError, match="split"):
            parse_split_fractions(bad)


def test_threshold_must_be_a_similarity():
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicateIndex(threshold=1.5)
