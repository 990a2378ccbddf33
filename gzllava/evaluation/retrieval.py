"""Image <-> text retrieval from the model's likelihoods, measured as PAPERCLIP did.

PAPERCLIP (Mishra-Sharma et al. 2024) reports top-k% retrieval accuracy: the share of queries
whose true match ranks within the top k% of all candidates of the evaluation set, against the
random expectation of k%. A generative model has no embedding to compare, so the score of
image i with text j is the length-normalised log-likelihood of description j given image i
(`LlavaEvaluator.score_candidates`): a (n_images, n_texts) matrix whose diagonal holds the
true pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TOP_PERCENTS = (1, 5, 10)


def top_count(percent: float, n: int) -> int:
    """How many candidates the top `percent`% of `n` is (at least one)."""
    return max(1, math.ceil(percent / 100.0 * n))


def true_ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of the true (diagonal) candidate in each row, best score first.

    Ties count against the true candidate, so a constant score matrix retrieves nothing early.
    """
    scores = np.asarray(scores, float)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"retrieval needs a square score matrix (image i matches text i), got {scores.shape}")
    diagonal = np.diag(scores)[:, None]
    others = ~np.eye(len(scores), dtype=bool)
    return ((scores >= diagonal) & others).sum(axis=1)


def retrieval_metrics(scores: np.ndarray, percents: Sequence[float] = TOP_PERCENTS) -> dict:
    """Image->text (rows) and text->image (columns) top-k% accuracy, ranks, and the random baseline."""
    scores = np.asarray(scores, float)
    n = len(scores)
    result: dict = {"n": n, "random": {}}
    for direction, matrix in (("image_to_text", scores), ("text_to_image", scores.T)):
        ranks = true_ranks(matrix)
        result[direction] = {
            "mean_rank": float(ranks.mean() + 1),
            "median_rank": float(np.median(ranks) + 1),
            **{f"top_{p}%": float(np.mean(ranks < top_count(p, n))) for p in percents},
        }
    for p in percents:
        # a random ranking puts the true candidate in the top m of n with probability m / n
        result["random"][f"top_{p}%"] = top_count(p, n) / n
    result["random"]["mean_rank"] = (n + 1) / 2
    return result
