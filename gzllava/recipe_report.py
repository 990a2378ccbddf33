"""Markdown accuracy tables from `evaluate_gzllava.py`'s metrics.json, for the demo and the real-galaxy recipe.

metrics.json (gzllava/evaluation): `models.model.morphology.{likelihood,generation}.per_question[q]` holds `n`,
`accuracy`, `balanced_accuracy` and `confident` (`n`, `accuracy`, `balanced_accuracy` on the items whose vote
majority has >= 0.8 of the votes), and on the likelihood route `auc` (ROC AUC of the answer probabilities);
`baselines.{majority,random}` have the same layout.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def load_metrics(folder: Path) -> dict:
    return json.loads((Path(folder) / "metrics.json").read_text())


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _route(metrics: dict, route: str) -> dict:
    return metrics["models"]["model"]["morphology"][route]


def synthetic_table(trained: dict, untrained: dict, reference: dict[str, float] | None = None,
                    reference_label: str = "reference") -> str:
    """Per-question accuracy: trained (likelihood, free text), untrained, an earlier run's figures, majority, chance."""
    likelihood, generation = _route(trained, "likelihood"), _route(trained, "generation")
    base = _route(untrained, "likelihood")
    majority, chance = trained["baselines"]["majority"], trained["baselines"]["random"]
    reference = reference or {}
    header = ["question", "n", "trained (likelihood)", "trained (free text)", "untrained (likelihood)",
              *([reference_label] if reference else []), "majority class", "random"]
    rows = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

    def row(name, n, figures):
        cells = [name, str(n), *figures]
        rows.append("| " + " | ".join(cells) + " |")

    for question, figures in likelihood["per_question"].items():
        row(question, figures["n"], [
            _fmt(figures["accuracy"]), _fmt(generation["per_question"][question]["accuracy"]),
            _fmt(base["per_question"].get(question, {}).get("accuracy")),
            *([_fmt(reference.get(question))] if reference else []),
            _fmt(majority["per_question"][question]["accuracy"]), _fmt(chance["per_question"][question]["accuracy"])])
    overall = likelihood["overall"]
    row("**all**", overall["n"], [
        f"**{_fmt(overall['accuracy'])}**", _fmt(generation["overall"]["accuracy"]), _fmt(base["overall"]["accuracy"]),
        *([_fmt(reference.get("all"))] if reference else []),
        _fmt(majority["overall"]["accuracy"]), _fmt(chance["overall"]["accuracy"])])
    return "\n".join(rows)


def real_table(metrics: dict) -> str:
    """Per question: n, accuracy and balanced accuracy (all reached items, and the confident subset) of the
    likelihood and free-text routes, beside the majority prior and chance; and the likelihood route's ROC AUC on
    all reached items (whether it ranks the galaxies, whatever its answer threshold)."""
    likelihood, generation = _route(metrics, "likelihood"), _route(metrics, "generation")
    majority, chance = metrics["baselines"]["majority"], metrics["baselines"]["random"]
    rows = ["| question | n | acc (likelihood) | bal. acc (likelihood) | bal. acc (free text) | n confident | "
            "confident acc (likelihood) | confident bal. acc (likelihood) | confident bal. acc (free text) | "
            "majority acc | majority bal. acc | chance bal. acc | AUC (likelihood) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for question, fig in likelihood["per_question"].items():
        gen = generation["per_question"].get(question, {})
        confident, gen_confident = fig.get("confident", {}), gen.get("confident", {})
        maj = majority["per_question"].get(question, {})
        rows.append(
            f"| {question} | {fig['n']} | {_fmt(fig['accuracy'])} | {_fmt(fig.get('balanced_accuracy'))} | "
            f"{_fmt(gen.get('balanced_accuracy'))} | {confident.get('n', 0)} | {_fmt(confident.get('accuracy'))} | "
            f"{_fmt(confident.get('balanced_accuracy'))} | {_fmt(gen_confident.get('balanced_accuracy'))} | "
            f"{_fmt(maj.get('accuracy'))} | {_fmt(maj.get('balanced_accuracy'))} | "
            f"{_fmt(chance['per_question'].get(question, {}).get('balanced_accuracy'))} | {_fmt(fig.get('auc'))} |")
    overall = likelihood["overall"]
    rows.append(f"| **all** | {overall['n']} | {_fmt(overall['accuracy'])} | "
                f"{_fmt(overall.get('mean_balanced_accuracy'))} (mean) | "
                f"{_fmt(generation['overall'].get('mean_balanced_accuracy'))} (mean) | "
                f"{overall.get('confident', {}).get('n', 0)} | {_fmt(overall.get('confident', {}).get('accuracy'))} | "
                f"{_fmt(overall.get('confident', {}).get('mean_balanced_accuracy'))} (mean) | "
                f"{_fmt(generation['overall'].get('confident', {}).get('mean_balanced_accuracy'))} (mean) | "
                f"{_fmt(majority['overall'].get('accuracy'))} | | | |")
    return "\n".join(rows)
