"""A tower learning curve: one question's head figures against the number of training galaxies, as a table and a PNG.

```bash
# towers of one recipe on growing shares of the training galaxies (train_clip.py --train_fraction F [--seed S]),
# each measured into <tower>/eval-<side> by `python -m gzllava.tower.evaluate ... --output_dir <tower>/eval-<side>`
python -m gzllava.tower.learning_curve outputs/exp/tower-frac0.25 outputs/exp/tower-frac0.5 outputs/exp/tower \
    --question disk-edge-on --output_dir docs/
```
Each tower folder holds `final/training_summary.json` (train_galaxies, seed) and one or more `eval-*/metrics.json`;
every evaluation name found in any of them that reaches the question is one panel pair: vote cross-entropy on all reached galaxies, and balanced
accuracy on the confident votes. Writes OUTPUT_DIR/learning_curve_<question>.md and .png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None


def read_points(towers: list[str], question: str) -> list[dict]:
    """One point per (tower, evaluation): train_galaxies, seed, evaluation name, cross-entropy, balanced accuracy."""
    points = []
    for tower in map(Path, towers):
        summary_path = tower / "final" / "training_summary.json"
        if not summary_path.is_file():
            raise FileNotFoundError(f"{tower}: no final/training_summary.json (a train_clip.py output folder)")
        summary = _read_json(summary_path)
        if "train_galaxies" not in summary:
            raise ValueError(f"{summary_path}: no train_galaxies (written by train_clip.py)")
        evaluations = sorted(tower.glob("eval-*/metrics.json"))
        if not evaluations:
            raise FileNotFoundError(f"{tower}: no eval-*/metrics.json (measure it with gzllava.tower.evaluate "
                                    f"--output_dir {tower}/eval-NAME)")
        for path in evaluations:
            row = _read_json(path).get("head", {}).get(question)
            if row is None:  # not reached on that side (GZ1's classes never reach how-rounded)
                continue
            points.append({"tower": tower.name, "train_galaxies": summary["train_galaxies"],
                           "seed": summary.get("training_arguments", {}).get("seed"),
                           "evaluation": path.parent.name.removeprefix("eval-"),
                           "cross_entropy": row["all"].get("cross_entropy"), "n_all": row["all"]["n"],
                           "balanced_accuracy": row.get("confident", {}).get("balanced_accuracy"),
                           "auc": row["all"].get("auc"), "n_confident": row.get("confident", {}).get("n")})
    if not points:
        raise ValueError(f"no evaluation of {', '.join(towers)} has head figures for the question {question!r}")
    return points


def table(points: list[dict], question: str) -> str:
    def fmt(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"# Tower learning curve: {question}", "",
             "| evaluation | training galaxies | seed | tower | vote cross-entropy (all, n) | ROC AUC (all) "
             "| balanced accuracy (confident, n) |", "|---|---:|---:|---|---:|---:|---:|"]
    for p in sorted(points, key=lambda p: (p["evaluation"], p["train_galaxies"], p["seed"] or 0)):
        lines.append(f"| {p['evaluation']} | {p['train_galaxies']} | {p['seed']} | {p['tower']} | "
                     f"{fmt(p['cross_entropy'])} ({p['n_all']}) | {fmt(p['auc'])} | "
                     f"{fmt(p['balanced_accuracy'])} ({p['n_confident']}) |")
    return "\n".join(lines) + "\n"


def plot(points: list[dict], question: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluations = sorted({p["evaluation"] for p in points})
    figure, axes = plt.subplots(2, len(evaluations), figsize=(4 * len(evaluations), 6), dpi=110, squeeze=False)
    for column, name in enumerate(evaluations):
        mine = sorted((p for p in points if p["evaluation"] == name), key=lambda p: p["train_galaxies"])
        for row, (key, label) in enumerate((("cross_entropy", "vote cross-entropy (all reached)"),
                                            ("balanced_accuracy", "balanced accuracy (confident)"))):
            axis = axes[row][column]
            for seed in sorted({p["seed"] for p in mine}, key=lambda s: (s is None, s)):
                xy = [(p["train_galaxies"], p[key]) for p in mine if p["seed"] == seed and p[key] is not None]
                if xy:
                    axis.plot(*zip(*xy), marker="o", label=f"seed {seed}")
            axis.set_xscale("log")
            sizes = sorted({p["train_galaxies"] for p in mine})
            axis.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=7)
            axis.minorticks_off()
            axis.set_title(f"{name}: {question}", fontsize=9)
            axis.set_xlabel("training galaxies")
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gzllava.tower.learning_curve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("towers", nargs="+", help="train_clip.py output folders, each with eval-*/metrics.json")
    parser.add_argument("--question", default="disk-edge-on", help="a head question (default disk-edge-on)")
    parser.add_argument("--output_dir", required=True, help="writes learning_curve_<question>.md and .png here")
    args = parser.parse_args(argv)
    try:
        points = read_points(args.towers, args.question)
    except (OSError, ValueError) as error:
        print(f"gzllava.tower.learning_curve: error: {error}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = table(points, args.question)
    (out / f"learning_curve_{args.question}.md").write_text(text)
    plot(points, args.question, out / f"learning_curve_{args.question}.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
