"""Reading answers: the free-text parser and the candidate-likelihood probabilities."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dataset_builder.decision_tree import QUESTIONS
from dataset_builder.instructions import answer_text
from gzllava.evaluation.answers import SYNONYMS, candidate_probabilities, candidate_texts, parse_answer

PARSER_TABLE = [
    # the dataset's own answer format: starts with the label
    ("smooth-or-featured", "Features or disk, with strong agreement among the volunteers (85%).", "featured-or-disk"),
    ("bar", "No bar: a clear majority of volunteers (70%) answered this.", "no"),
    ("bar", "Bar, probably: 60% of volunteers chose this, while 40% said No bar.", "yes"),
    # keys, labels, synonyms
    ("smooth-or-featured", "featured-or-disk", "featured-or-disk"),
    ("smooth-or-featured", "It is smooth with no features.", "smooth"),
    ("smooth-or-featured", "This looks like a foreground star.", "artifact"),
    ("has-spiral-arms", "The galaxy shows clear spiral arms.", "yes"),
    ("bar", "The galaxy is clearly barred.", "yes"),
    ("disk-edge-on", "Yes, it is a disk viewed edge-on.", "yes"),
    ("disk-edge-on", "We see it face-on.", "no"),
    ("spiral-winding", "The arms are loosely wound.", "loose"),
    ("how-rounded", "Cigar-shaped", "cigar-shaped"),
    ("merging", "It is merging with a neighbour.", "merger"),
    ("odd-feature", "A ring is visible around it.", "ring"),
    ("odd-feature", "Nothing odd.", "none"),
    # negations
    ("bar", "There is no sign of a bar.", "no"),
    ("bar", "The galaxy does not appear to have a bar.", "no"),
    ("disk-edge-on", "It is not edge-on.", "no"),
    ("has-spiral-arms", "I cannot see any spiral arms.", "no"),
    ("has-spiral-arms", "There is no bar, but spiral arms are visible.", "yes"),
    ("merging", "It is not merging.", "neither"),
    # numbers
    ("spiral-arm-count", "It has two arms.", "2"),
    ("spiral-arm-count", "More than four arms wind out from the centre.", "more-than-4"),
    ("spiral-arm-count", "I count 6 arms.", "more-than-4"),
    ("spiral-arm-count", "85% of volunteers counted 3.", "3"),
    # nothing to read
    ("bar", "A banana.", None),
    ("bar", "", None),
    ("has-spiral-arms", "There is no bar.", None),
]


@pytest.mark.parametrize(("question", "text", "expected"), PARSER_TABLE)
def test_parse_answer_table(question, text, expected):
    assert parse_answer(question, text) == expected


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_every_label_and_key_parses_to_its_answer(question):
    for answer in QUESTIONS[question].answers:
        assert parse_answer(question, answer.label) == answer.key
        assert parse_answer(question, answer.key) == answer.key


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_the_dataset_builders_answer_texts_parse_back(question):
    q = QUESTIONS[question]
    rng = random.Random(0)
    for answer in q.answers:
        for fraction in (0.95, 0.6, 0.35):
            others = [a for a in q.answers if a.key != answer.key]
            votes = {q.column(answer.key): fraction, q.column(others[0].key): (1 - fraction) * 0.9}
            text = answer_text(q, answer.key, fraction, votes, rng)
            assert parse_answer(q, text) == answer.key, text


def test_synonym_table_names_only_real_questions_and_answers():
    for question, answers in SYNONYMS.items():
        assert question in QUESTIONS
        assert set(answers) <= set(QUESTIONS[question].answer_keys)


def test_candidates_are_the_labels_in_tree_order():
    assert candidate_texts("bar") == ["Bar", "No bar"]
    assert candidate_texts("spiral-arm-count")[-1] == "More than 4"


def test_candidate_probabilities_softmax():
    probs = candidate_probabilities(np.array([[-1.0, -2.0, -3.0], [0.0, 0.0, 0.0], [-1000.0, -1.0, -1000.0]]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[0, 0] > probs[0, 1] > probs[0, 2]
    np.testing.assert_allclose(probs[0], np.exp([-1, -2, -3]) / np.exp([-1, -2, -3]).sum())
    np.testing.assert_allclose(probs[1], 1 / 3)
    assert probs[2, 1] == pytest.approx(1.0)  # no overflow on large gaps
