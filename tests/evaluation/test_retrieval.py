"""Top-k% retrieval accuracy on rigged score matrices."""

from __future__ import annotations

import numpy as np
import pytest

from gzllava.evaluation.retrieval import retrieval_metrics, top_count, true_ranks


def test_top_count_is_at_least_one():
    assert top_count(1, 50) == 1 and top_count(10, 50) == 5 and top_count(5, 100) == 5 and top_count(1, 250) == 3


def test_a_perfect_matrix_retrieves_everything_first():
    scores = -np.ones((20, 20)) + 2 * np.eye(20)
    result = retrieval_metrics(scores)
    for direction in ("image_to_text", "text_to_image"):
        assert result[direction]["top_1%"] == 1.0 and result[direction]["mean_rank"] == 1.0


def test_a_reversed_matrix_retrieves_nothing_early():
    scores = -np.ones((20, 20)) - 2 * np.eye(20)  # the true pair is always the worst
    result = retrieval_metrics(scores)
    assert result["image_to_text"]["top_10%"] == 0.0
    assert result["image_to_text"]["mean_rank"] == 20.0


def test_directions_differ_on_an_asymmetric_matrix():
    # image 0 ranks text 0 first, but text 0 prefers image 1 (column 0: 5 > 3)
    scores = np.array([[3.0, 1.0, 0.0], [5.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(true_ranks(scores), [0, 1, 0])
    np.testing.assert_array_equal(true_ranks(scores.T), [1, 0, 0])
    result = retrieval_metrics(scores, percents=(33,))  # top 1 of 3
    assert result["image_to_text"]["top_33%"] == pytest.approx(2 / 3)
    assert result["text_to_image"]["top_33%"] == pytest.approx(2 / 3)


def test_ties_count_against_the_true_pair_and_random_is_k_percent():
    result = retrieval_metrics(np.zeros((10, 10)), percents=(10, 50))
    assert result["image_to_text"]["top_10%"] == 0.0
    assert result["random"] == {"top_10%": 0.1, "top_50%": 0.5, "mean_rank": 5.5}


def test_a_non_square_matrix_is_refused():
    with pytest.raises(ValueError, match="square"):
        retrieval_metrics(np.zeros((3, 4)))
