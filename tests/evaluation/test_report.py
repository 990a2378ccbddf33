"""The report's pieces: JSON without NaN and the markdown."""

from __future__ import annotations

import json

import numpy as np

from conftest import report_metrics
from gzllava.evaluation.report import jsonable, render_markdown


def test_jsonable_turns_nan_and_numpy_into_json():
    value = jsonable({"a": float("nan"), "b": np.float32(0.5), "c": np.arange(2), "d": (1, float("inf"))})
    assert value == {"a": None, "b": 0.5, "c": [0, 1], "d": [1, None]}
    json.dumps(value, allow_nan=False)


def test_markdown_reads_as_deltas_against_baselines():
    text = render_markdown(jsonable(report_metrics()), {})
    assert "| model (likelihood) | 4 | 0.750 | +0.250 |" in text
    assert "retrieval: not run (no references)" in text
    assert "1 skipped ({'bad label': 1})" in text


def test_markdown_shows_the_likelihood_ranking_where_it_was_measured():
    metrics = report_metrics()
    assert "ranking (ROC AUC" not in render_markdown(jsonable(metrics), {})  # no `auc` in these figures
    likelihood = metrics["models"]["model"]["morphology"]["likelihood"]
    likelihood["per_question"] = {"bar": {**likelihood["per_question"]["bar"], "auc": 0.8125}}
    metrics["baselines"]["majority"]["per_question"]["bar"]["auc"] = 0.5
    text = render_markdown(jsonable(metrics), {})
    assert "| question | model (likelihood) | majority |" in text
    assert "| bar | 0.81 | 0.50 |" in text
