"""Outputs of an evaluation run: metrics.json, predictions.jsonl, report.md + PNG plots (the model card's
model-index is `gzllava.model_card.update_model_card`).

Every figure of the report sits next to its baselines (majority class, random, the untuned base
model when given), so it reads as a delta. Plots are matplotlib PNGs (Agg backend) in `plots/`.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def jsonable(value: Any) -> Any:
    """NaN/inf -> None (JSON has neither), numpy scalars/arrays -> Python, recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _delta(value: float | None, reference: float | None) -> str:
    if value is None or reference is None or not all(math.isfinite(v) for v in (value, reference)):
        return "–"
    return f"{value - reference:+.3f}"


# --------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(metrics: dict) -> list[tuple[str, dict]]:
    """(label, {"per_question": ...}) of every morphology series to compare, model first."""
    series = []
    for role in ("model", "base"):
        morph = metrics["models"].get(role, {}).get("morphology")
        if morph:
            series.append((f"{role} (text)", morph["generation"]))
            series.append((f"{role} (likelihood)", morph["likelihood"]))
    for name in ("majority", "random"):
        if name in metrics["baselines"]:
            series.append((name, metrics["baselines"][name]))
    return series


def plot_accuracy(metrics: dict, path: Path, key: str = "accuracy") -> Path | None:
    series = _series(metrics)
    if not series:
        return None
    questions = list(series[0][1]["per_question"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(questions) + 2), 4))
    width = 0.8 / len(series)
    x = np.arange(len(questions))
    for k, (label, data) in enumerate(series):
        values = [data["per_question"].get(q, {}).get(key, np.nan) for q in questions]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, questions, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(f"Decision-tree {key.replace('_', ' ')} per question vs baselines")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusions(per_question: dict, path: Path, title: str) -> Path | None:
    if not per_question:
        return None
    plt = _pyplot()
    n = len(per_question)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax, (question, data) in zip(axes.flat, per_question.items()):
        matrix = np.asarray(data["confusion"]["matrix"], float)
        labels = data["confusion"]["answers"]
        ax.imshow(matrix, cmap="Blues", aspect="auto")
        ax.set_title(f"{question} (n={data['n']})", fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=6)
        ax.set_yticks(range(len(labels) - 1), labels[:-1], fontsize=6)
        for (r, c), count in np.ndenumerate(matrix):
            if count:
                ax.text(c, r, int(count), ha="center", va="center", fontsize=6)
        ax.set_xlabel("predicted", fontsize=6)
        ax.set_ylabel("target", fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(metrics: dict, path: Path) -> Path | None:
    curves = [(role, metrics["models"][role]["morphology"]["likelihood"]["reliability"])
              for role in ("model", "base") if metrics["models"].get(role, {}).get("morphology")]
    if not curves:
        return None
    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for role, rel in curves:
        filled = [b for b in rel["bins"] if b["count"]]
        ax.plot([b["mean_probability"] for b in filled], [b["mean_observed"] for b in filled], "o-",
                label=f"{role} (ECE {_fmt(rel['ece'])})")
        centres = [(b["low"] + b["high"]) / 2 for b in rel["bins"]]
        hist.bar(centres, [b["count"] for b in rel["bins"]], width=0.09, alpha=0.6, label=role)
    ax.set_ylabel("observed vote fraction / label")
    ax.set_title("Reliability of answer probabilities (likelihood route)")
    ax.legend(fontsize=8)
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("count")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_retrieval(metrics: dict, path: Path) -> Path | None:
    rows = [(role, metrics["models"][role]["retrieval"]) for role in ("model", "base")
            if "retrieval" in metrics["models"].get(role, {})]
    if not rows:
        return None
    plt = _pyplot()
    keys = [k for k in rows[0][1]["random"] if k.startswith("top_")]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), sharey=True)
    for ax, direction in zip(axes, ("image_to_text", "text_to_image")):
        series = [(role, [r[direction][k] for k in keys]) for role, r in rows] + [
            ("random", [rows[0][1]["random"][k] for k in keys])]
        width = 0.8 / len(series)
        x = np.arange(len(keys))
        for i, (label, values) in enumerate(series):
            ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
        ax.set_xticks(x, keys)
        ax.set_title(direction.replace("_", " "))
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("retrieval accuracy")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Top-k% retrieval over {rows[0][1]['n']} galaxies")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -------------------------------------------------------------------------------- markdown
def _morphology_section(metrics: dict, plots: dict) -> list[str]:
    series = _series(metrics)
    if not series:
        return []
    lines = ["## Morphology (decision-tree answers)", ""]
    headline = [(label, data.get("overall", {})) for label, data in series]
    majority = metrics["baselines"].get("majority", {}).get("overall", {}).get("accuracy")
    lines += ["| series | items | accuracy | Δ vs majority | mean macro-F1 | Brier | mean balanced accuracy "
              "| confident items | confident accuracy | confident mean balanced accuracy |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for label, overall in headline:
        confident = overall.get("confident") or {}
        lines.append(f"| {label} | {_fmt(overall.get('n'))} | {_fmt(overall.get('accuracy'))} | "
                     f"{_delta(overall.get('accuracy'), majority)} | {_fmt(overall.get('mean_macro_f1'))} | "
                     f"{_fmt(overall.get('brier'))} | {_fmt(overall.get('mean_balanced_accuracy'))} | "
                     f"{_fmt(confident.get('n'))} | {_fmt(confident.get('accuracy'))} | "
                     f"{_fmt(confident.get('mean_balanced_accuracy'))} |")
    model = metrics["models"].get("model", {}).get("morphology")
    if model:
        lines += ["", f"Free-text answers parsed to a tree answer: {_fmt(100 * model['generation']['parse_rate'], 1)}%. "
                  "Targets: vote-majority answers (or expert labels); Brier against vote fractions "
                  "(or the one-hot expert label); the majority baseline answers the most common answer of "
                  f"the {'training split' if _majority_source(metrics) == 'train' else 'evaluation set'}.", ""]
    questions = list(series[0][1]["per_question"])
    lines += ["### Per question, every item (accuracy / balanced accuracy / macro-F1)", "",
              "Balanced accuracy is the mean recall over the answers present among the targets (their number in "
              "brackets): with one answer present, always giving it scores 1.", "",
              "| question | n (answers) | " + " | ".join(label for label, _ in series) + " |",
              "|---|---|" + "---|" * len(series)]
    for q in questions:
        cells = []
        for _, data in series:
            m = data["per_question"].get(q, {})
            cells.append(f"{_fmt(m.get('accuracy'), 2)} / {_fmt(m.get('balanced_accuracy'), 2)} / "
                         f"{_fmt(m.get('macro_f1'), 2)}")
        first = series[0][1]["per_question"][q]
        lines.append(f"| {q} | {_count(first)} | " + " | ".join(cells) + " |")
    confident = {q: (series[0][1]["per_question"][q].get("confident") or {}) for q in questions}
    if any(c.get("n") for c in confident.values()):
        share = next(c["min_share"] for c in confident.values() if c.get("n"))
        lines += ["", f"### Per question, confident items (vote-majority share >= {share:g}; accuracy / balanced "
                  "accuracy)", "", "| question | n (answers) | " + " | ".join(label for label, _ in series) + " |",
                  "|---|---|" + "---|" * len(series)]
        for q in questions:
            cells = []
            for _, data in series:
                c = data["per_question"].get(q, {}).get("confident") or {}
                cells.append(f"{_fmt(c.get('accuracy'), 2)} / {_fmt(c.get('balanced_accuracy'), 2)}" if c.get("n")
                             else "–")
            lines.append(f"| {q} | {_count(confident[q])} | " + " | ".join(cells) + " |")
    ranked = [(label, data) for label, data in series
              if any(m.get("auc") is not None for m in data["per_question"].values())]
    if ranked:
        lines += ["", "### Per question, ranking (ROC AUC of the answer probabilities, one answer against the rest)",
                  "", "Whether the galaxies are ordered by their answer, whatever the threshold the argmax uses "
                  "(0.5: no order).", "", "| question | " + " | ".join(label for label, _ in ranked) + " |",
                  "|---|" + "---|" * len(ranked)]
        for q in questions:
            lines.append(f"| {q} | " + " | ".join(_fmt(data["per_question"].get(q, {}).get("auc"), 2)
                                                 for _, data in ranked) + " |")
    for key in ("accuracy", "confusion_generation", "confusion_likelihood", "reliability"):
        if plots.get(key):
            lines += ["", f"![{key}]({PLOTS_DIR}/{plots[key].name})"]
    return lines + [""]


def _count(metrics: dict) -> str:
    """`n (answers present)`, or `n` for metrics written before answers were counted."""
    n = metrics.get("n", 0)
    return f"{n} ({metrics['answers_present']})" if "answers_present" in metrics else str(n)


def _majority_source(metrics: dict) -> str:
    per_q = metrics["baselines"].get("majority", {}).get("per_question", {})
    return "train" if per_q and all(m.get("source") == "train" for m in per_q.values()) else "eval"


def _descriptions_section(metrics: dict) -> list[str]:
    rows = [(role, metrics["models"][role]["descriptions"]) for role in ("model", "base")
            if "descriptions" in metrics["models"].get(role, {})]
    if not rows:
        return []
    shuffled = metrics["baselines"].get("shuffled_references", {})
    names = [k for k in ("bleu4", "rouge_l", "meteor", "cider") if k in rows[0][1]]
    lines = ["## Descriptions", "", f"{rows[0][1]['n']} generated descriptions against the reference summaries. "
             "Baseline: each galaxy's reference replaced by another galaxy's (the text metrics' chance level).", "",
             "| series | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for role, data in rows:
        lines.append(f"| {role} | " + " | ".join(f"{_fmt(data.get(k))} ({_delta(data.get(k), shuffled.get(k))})"
                                                  for k in names) + " |")
    if shuffled:
        lines.append("| shuffled references | " + " | ".join(_fmt(shuffled.get(k)) for k in names) + " |")
    lines += ["", "(in brackets: the difference from the shuffled-reference baseline)", ""]
    judge = metrics["models"].get("model", {}).get("judge")
    if judge:
        lines += [f"LLM judge ({judge['model']}): mean score {_fmt(judge['mean_score'], 2)} / 10 over "
                  f"{judge['scored']} of {judge['n']} descriptions ({judge['unparsable']} unparsable replies, "
                  f"{judge['failed']} failed requests).", ""]
    return lines


def _retrieval_section(metrics: dict, plots: dict) -> list[str]:
    rows = [(role, metrics["models"][role]["retrieval"]) for role in ("model", "base")
            if "retrieval" in metrics["models"].get(role, {})]
    if not rows:
        return []
    keys = [k for k in rows[0][1]["random"] if k.startswith("top_")]
    lines = ["## Retrieval", "", f"Top-k% accuracy over {rows[0][1]['n']} galaxies, from the likelihood of each "
             "reference description given each image (PAPERCLIP's measure).", "",
             "| series | direction | " + " | ".join(keys) + " | mean rank |", "|---|---|" + "---|" * (len(keys) + 1)]
    for role, data in rows:
        for direction in ("image_to_text", "text_to_image"):
            lines.append(f"| {role} | {direction} | " + " | ".join(_fmt(data[direction][k]) for k in keys)
                         + f" | {_fmt(data[direction]['mean_rank'], 1)} |")
    random_row = rows[0][1]["random"]
    lines.append("| random | both | " + " | ".join(_fmt(random_row[k]) for k in keys)
                 + f" | {_fmt(random_row['mean_rank'], 1)} |")
    if plots.get("retrieval"):
        lines += ["", f"![retrieval]({PLOTS_DIR}/{plots['retrieval'].name})"]
    return lines + [""]


def _hallucination_section(metrics: dict) -> list[str]:
    rows = [(role, metrics["models"][role]["hallucination"]) for role in ("model", "base")
            if "hallucination" in metrics["models"].get(role, {})]
    if not rows:
        return []
    reference = metrics["baselines"].get("reference_hallucination")
    if reference:
        rows.append(("reference summaries", reference))
    lines = ["## Hallucination and refusal", "",
             f"Share of descriptions asserting a feature the labels contradict (vote fraction > "
             f"{rows[0][1]['threshold']} or expert label), mentioning redshift or numbers, or refusing.", "",
             "| series | n | contradiction | redshift | numbers | refusal |", "|---|---|---|---|---|---|"]
    for role, data in rows:
        lines.append(f"| {role} | {data['n']} | {_fmt(data['contradiction_rate'])} | {_fmt(data['redshift_rate'])} | "
                     f"{_fmt(data['number_rate'])} | {_fmt(data['refusal_rate'])} |")
    lines += ["", "| rule | checkable | violations (model) |", "|---|---|---|"]
    for name, counts in rows[0][1]["rules"].items():
        lines.append(f"| {name} | {counts['checkable']} | {counts['violations']} |")
    return lines + [""]


def _speed_section(metrics: dict) -> list[str]:
    lines = []
    for role in ("model", "base"):
        data = metrics["models"].get(role, {})
        parts = []
        if "morphology" in data:
            t = data["morphology"]["timing"]
            parts.append(f"morphology {_fmt(t['generation_items_per_s'], 2)} items/s generated, "
                         f"{_fmt(t['likelihood_items_per_s'], 2)} items/s scored")
        if "description_timing" in data:
            parts.append(f"descriptions {_fmt(data['description_timing']['images_per_s'], 2)} images/s")
        if "retrieval" in data:
            parts.append(f"retrieval {_fmt(data['retrieval']['timing']['images_per_s'], 2)} images/s "
                         f"({data['retrieval']['timing']['pairs']} pairs)")
        if parts:
            lines.append(f"- {role}: " + "; ".join(parts))
    return (["## Throughput", "", f"Batch size {metrics['settings']['batch_size']}.", *lines, ""] if lines else [])


def render_markdown(metrics: dict, plots: dict) -> str:
    es = metrics["eval_set"]
    lines = [f"# Evaluation of `{metrics['model']}`", "",
             f"- evaluation set: `{es['name']}` ({es['kind']}): {es['samples']} samples from {es['rows_read']} rows, "
             f"{es['skips']['total']} skipped" + (f" ({es['skips']['by_reason']})" if es['skips']['total'] else ""),
             f"- morphology items: {es['morphology_items']}" + (
                 f" (questions: {', '.join(metrics['settings']['questions'])})"
                 if metrics.get("settings", {}).get("questions") else "")]
    if metrics.get("baseline_model"):
        lines.append(f"- base model (untuned baseline): `{metrics['baseline_model']}`")
    not_run = metrics["models"].get("model", {}).get("not_run", {})
    for task, reason in not_run.items():
        lines.append(f"- {task}: not run ({reason})")
    lines.append("")
    lines += _morphology_section(metrics, plots)
    lines += _descriptions_section(metrics)
    lines += _retrieval_section(metrics, plots)
    lines += _hallucination_section(metrics)
    lines += _speed_section(metrics)
    return "\n".join(lines)


def write_report(metrics: dict, raw: dict, out: Path) -> dict[str, Path]:
    """Write metrics.json, predictions.jsonl, plots/*.png and report.md under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / PLOTS_DIR
    plot_dir.mkdir(exist_ok=True)
    plots: dict[str, Path | None] = {
        "accuracy": plot_accuracy(metrics, plot_dir / "accuracy_by_question.png"),
        "reliability": plot_reliability(metrics, plot_dir / "reliability.png"),
        "retrieval": plot_retrieval(metrics, plot_dir / "retrieval.png"),
    }
    morph = metrics["models"].get("model", {}).get("morphology")
    if morph:
        for method in ("generation", "likelihood"):
            plots[f"confusion_{method}"] = plot_confusions(
                morph[method]["per_question"], plot_dir / f"confusion_{method}.png",
                f"Confusion matrices, {'parsed free-text answers' if method == 'generation' else 'likelihood route'}")
    (out / METRICS_FILE).write_text(json.dumps(jsonable(metrics), indent=2, allow_nan=False) + "\n")
    with (out / PREDICTIONS_FILE).open("w") as handle:
        for role, outputs in raw.items():
            for task, records in outputs.items():
                for record in records["items"] if isinstance(records, dict) else records:
                    handle.write(json.dumps(jsonable({"role": role, "task": task, **record})) + "\n")
    (out / REPORT_FILE).write_text(render_markdown(jsonable(metrics), plots))
    logger.info("wrote %s", out / REPORT_FILE)
    return {k: v for k, v in plots.items() if v is not None}
