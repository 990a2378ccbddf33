"""Description metrics: BLEU-4, ROUGE-L, METEOR and CIDEr against the reference summaries.

Computed through the `evaluate` library from the metric modules shipped in `gzllava/metrics/`
(loaded by path: `evaluate.load("bleu")` would fetch from the Hub, which fails offline).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache

from gzllava.metrics import METRIC_NAMES, metric_path

logger = logging.getLogger(__name__)

# name in metrics.json -> (module, key of its result)
HEADLINE = {"bleu4": ("bleu", "bleu"), "rouge_l": ("rouge_l", "rougeL"), "meteor": ("meteor", "meteor"),
            "cider": ("cider", "cider")}


@lru_cache(maxsize=None)
def load_metric(name: str):
    import evaluate

    return evaluate.load(metric_path(name))


def description_metrics(predictions: Sequence[str], references: Sequence[str | Sequence[str]],
                        metrics: Sequence[str] = METRIC_NAMES) -> dict:
    """Corpus scores of generated descriptions against their references (one or more each)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no descriptions to score")
    unknown = set(metrics) - set(METRIC_NAMES)
    if unknown:
        raise ValueError(f"unknown description metric(s) {sorted(unknown)}; available: {', '.join(METRIC_NAMES)}")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    result: dict = {"n": len(predictions)}
    for headline, (module, key) in HEADLINE.items():
        if module not in metrics:
            continue
        scores = load_metric(module).compute(predictions=list(predictions), references=refs)
        result[headline] = scores[key]
        details = {k: v for k, v in scores.items() if k != key and not k.endswith("_per_prediction")}
        if details:
            result[f"{headline}_details"] = details
    return result
