"""The "explore" report: what the ingested Talk data looks like before it becomes instructions.

`write_report` writes `report.md` (figures and tables), `report.json` (the same figures, for the
dataset card) and four PNG plots into one folder.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .records import Reject, Subject

TOP_TAGS = 20


def _quantiles(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"count": 0, "mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:  # nearest-rank quantile: a value that occurs in the data
        return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])

    return {"count": len(ordered), "mean": round(sum(ordered) / len(ordered), 3), "median": pick(0.5),
            "p90": pick(0.9), "max": ordered[-1]}


def reject_category(reason: str) -> str:
    """The part of a reason before its first ":" ("duplicate comment_id: row 7 ..." -> "duplicate comment_id")."""
    return reason.split(":", 1)[0].strip()


def compute_stats(subjects: Mapping[str, Subject], rejects: Sequence[Reject]) -> dict[str, Any]:
    comments_per_subject = [len(s.comments) for s in subjects.values()]
    words_per_comment = [len(c.body.split()) for s in subjects.values() for c in s.comments]
    tag_subjects = Counter(tag for s in subjects.values() for tag in set(s.tags))
    n = len(subjects)
    with_image = sum(1 for s in subjects.values() if s.image_bytes is not None)
    with_votes = sum(1 for s in subjects.values() if s.votes)
    with_comments = sum(1 for s in subjects.values() if s.comments)
    with_tags = sum(1 for s in subjects.values() if s.tags)
    both = sum(1 for s in subjects.values() if s.image_bytes is not None and s.votes)
    by_reason = Counter((r.stage, r.kind, reject_category(r.reason)) for r in rejects)
    return {
        "subjects": n,
        "comments": sum(comments_per_subject),
        "comments_per_subject": _quantiles(comments_per_subject),
        "comments_per_subject_histogram": dict(sorted(Counter(comments_per_subject).items())),
        "words_per_comment": _quantiles(words_per_comment),
        "distinct_hashtags": len(tag_subjects),
        "top_hashtags": [{"tag": t, "subjects": c} for t, c in
                         sorted(tag_subjects.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TAGS]],
        "coverage": {
            "with_comments": with_comments,
            "with_hashtags": with_tags,
            "with_image": with_image,
            "with_votes": with_votes,
            "with_image_and_votes": both,
        },
        "rejects": len(rejects),
        "rejects_by_reason": [{"stage": st, "kind": k, "reason": r, "count": c}
                              for (st, k, r), c in sorted(by_reason.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0]))],
    }


def _plots(stats: dict[str, Any], words: list[int], out_dir: Path, title: str) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    files: dict[str, str] = {}

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        files[name.removesuffix(".png")] = name

    hist = stats["comments_per_subject_histogram"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([int(k) for k in hist], list(hist.values()), color="#4c72b0")
    ax.set(xlabel="comments per subject", ylabel="subjects", title=f"{title}: comments per subject")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if hist and max(hist.values()) > 50 * min(hist.values()):  # long tail: keep the rare bins visible
        ax.set_yscale("log")
    save(fig, "comments_per_subject.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(words or [0], bins=min(50, max(1, len(set(words)))), color="#55a868")
    ax.set(xlabel="words per comment", ylabel="comments", title=f"{title}: words per comment")
    save(fig, "words_per_comment.png")

    top = stats["top_hashtags"]
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.25 * len(top) + 1)))
    ax.barh([t["tag"] for t in reversed(top)], [t["subjects"] for t in reversed(top)], color="#c44e52")
    ax.set(xlabel="subjects tagged", title=f"{title}: top {len(top)} hashtags")
    save(fig, "top_hashtags.png")

    coverage = stats["coverage"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = list(coverage)
    ax.bar([k.removeprefix("with_").replace("_", " ") for k in labels], [coverage[k] for k in labels], color="#8172b2")
    ax.axhline(stats["subjects"], color="black", linewidth=1, linestyle="--", label="all subjects")
    ax.set(ylabel="subjects with ...", title=f"{title}: coverage")
    ax.tick_params(axis="x", labelrotation=20)
    ax.legend()
    save(fig, "coverage.png")
    return files


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def write_report(subjects: Mapping[str, Subject], rejects: Sequence[Reject], out_dir: Path, title: str) -> Path:
    """Write report.md, report.json and the plots into `out_dir`; return the path of report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = compute_stats(subjects, rejects)
    words = [len(c.body.split()) for s in subjects.values() for c in s.comments]
    stats["plots"] = _plots(stats, words, out_dir, title)
    (out_dir / "report.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    n = stats["subjects"]
    cps, wpc, cov = stats["comments_per_subject"], stats["words_per_comment"], stats["coverage"]
    lines = [
        f"# {title}: explore report",
        "",
        f"- Subjects: {n:,}",
        f"- Comments kept: {stats['comments']:,}",
        f"- Comments per subject: mean {cps['mean']}, median {cps['median']:g}, 90th percentile "
        f"{cps['p90']:g}, max {cps['max']}",
        f"- Words per comment: mean {wpc['mean']}, median {wpc['median']:g}, 90th percentile "
        f"{wpc['p90']:g}, max {wpc['max']}",
        f"- Distinct hashtags: {stats['distinct_hashtags']:,}",
        f"- Rejected records: {stats['rejects']:,}",
        "",
        "## Coverage",
        "",
        "| subjects | count | share |",
        "|---|---:|---:|",
        *[f"| {k.replace('_', ' ')} | {v:,} | {_pct(v, n)} |" for k, v in cov.items()],
        "",
        "![coverage](coverage.png)",
        "",
        f"## Top {len(stats['top_hashtags'])} hashtags",
        "",
        "| hashtag | subjects |",
        "|---|---:|",
        *[f"| #{_cell(t['tag'])} | {t['subjects']:,} |" for t in stats["top_hashtags"]],
        "",
        "![top hashtags](top_hashtags.png)",
        "",
        "## Distributions",
        "",
        "![comments per subject](comments_per_subject.png)",
        "",
        "![words per comment](words_per_comment.png)",
        "",
        "## Rejects by stage and reason",
        "",
        "| stage | kind | reason | count |",
        "|---|---|---|---:|",
        *[f"| {r['stage']} | {r['kind']} | {_cell(r['reason'])} | {r['count']:,} |"
          for r in stats["rejects_by_reason"]],
        "",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
