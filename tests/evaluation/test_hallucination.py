"""Contradiction rules against vote fractions and expert labels; redshift, numbers, refusals."""

from __future__ import annotations

import pytest
from PIL import Image

from gzllava.evaluation.samples import EvalSample
from gzllava.evaluation.hallucination import check_description, hallucination_metrics, mentions_number, mentions_redshift

NO_ARMS = {"has-spiral-arms_yes_fraction": 0.1, "has-spiral-arms_no_fraction": 0.9}
BARRED = {"bar_yes_fraction": 0.85, "bar_no_fraction": 0.15}


def _sample(votes=None, expert=None):
    return EvalSample(id="s", image_data=Image.new("RGB", (4, 4)), votes=votes or {}, expert=expert or {})


def test_spiral_arms_where_volunteers_see_none_is_a_contradiction():
    flags = check_description("A lovely spiral galaxy with two arms.", _sample(NO_ARMS))
    assert flags["contradictions"] == ["spiral arms, none seen"]
    assert check_description("A smooth galaxy with no spiral arms.", _sample(NO_ARMS))["contradictions"] == []


def test_the_threshold_decides_what_counts_as_contradicted():
    weak = {"has-spiral-arms_yes_fraction": 0.3, "has-spiral-arms_no_fraction": 0.7}
    assert check_description("Spiral arms are visible.", _sample(weak))["contradictions"] == []
    assert check_description("Spiral arms are visible.", _sample(weak), threshold=0.6)["contradictions"]


def test_denying_a_bar_that_volunteers_saw_and_expert_labels():
    assert check_description("There is no sign of a bar.", _sample(BARRED))["contradictions"] == ["no bar, bar seen"]
    assert check_description("A barred galaxy.", _sample(BARRED))["contradictions"] == []
    expert = _sample(expert={"bar": "no"})
    assert check_description("A strong bar crosses the centre.", expert)["contradictions"] == ["bar, none seen"]


@pytest.mark.parametrize(("text", "redshift", "number"), [
    ("Its redshift is high.", True, False),
    ("At z = 0.05 it is distant.", True, True),
    ("85% of volunteers saw a disk.", False, True),
    ("A spiral with two arms.", False, False),
    ("A spiral with 2 arms.", False, False),
    ("It lies 30 Mpc away.", False, True),
])
def test_redshift_and_number_mentions(text, redshift, number):
    assert mentions_redshift(text) is redshift
    assert mentions_number(text) is number


def test_rates_over_a_set_with_refusals_and_rule_counts():
    samples = [_sample(NO_ARMS), _sample(NO_ARMS), _sample(BARRED), _sample()]
    texts = ["A spiral galaxy.", "A smooth galaxy.", "I'm sorry, but I cannot determine anything from this image.",
             "Redshift 0.1."]
    result = hallucination_metrics(texts, samples)
    assert result["n"] == 4
    assert result["contradiction_rate"] == 0.25
    assert result["refusal_rate"] == 0.25
    assert result["redshift_rate"] == 0.25 and result["number_rate"] == 0.25
    assert result["rules"]["spiral arms, none seen"] == {"checkable": 2, "violations": 1}
    assert result["rules"]["no bar, bar seen"] == {"checkable": 1, "violations": 0}
