"""Offline `evaluate` metric modules for the description metrics, loaded by path.

`evaluate.load("bleu")` fetches its script from the Hub and fails offline, so the four metrics
the harness reports live here as ordinary `evaluate` metric modules (one folder each, the script
named like its folder) that wrap libraries installed from PyPI:

    bleu     sacrebleu corpus BLEU-4 (13a tokenisation, lowercased), in [0, 1]
    rouge_l  rouge-score ROUGE-L F-measure (Porter stemming), best reference per prediction
    meteor   pycocoevalcap's METEOR 1.5 jar (needs `java` on PATH)
    cider    pycocoevalcap's CIDEr-D scorer (the coco-caption implementation)

Load one with `evaluate.load(metric_path("bleu"))`. Their shared inputs and `MetricInfo` are in `shared.py`.
"""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("bleu", "rouge_l", "meteor", "cider")


def metric_path(name: str) -> str:
    """Folder of the metric module `name`, for `evaluate.load`."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; the shipped metrics are {', '.join(METRIC_NAMES)}")
    return str(METRICS_DIR / name)
