"""The build's counts: the `Ledger` that must reconcile, stage timings, and `build_stats.json` / the card's figures.

Input records = comments (catalogue rows, for a catalogue-only build) behind rows + rejected input records;
`check_reconciled` stops a build whose counts do not add up before it replaces the previous one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .curate import Curator
from .writer import RejectLog

STATS_FILE = "build_stats.json"


@dataclass
class Ledger:
    """Counts that must reconcile: input records = comments behind rows + comment/row rejects."""

    input_records: int = 0
    comments_in_output: int = 0  # catalogue-only builds: catalogue rows behind rows (one per subject)
    records_are_subjects: bool = False  # catalogue-only: an input record is a catalogue row, not a comment
    subjects_in_output: int = 0
    subjects_dropped: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = round(self.stage_seconds.get(stage, 0.0) + seconds, 3)


class StageTimer:
    """`with StageTimer(ledger, stage):` adds the block's wall time to the stage's seconds."""

    def __init__(self, ledger: Ledger, stage: str) -> None:
        self.ledger, self.stage = ledger, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        self.ledger.add_seconds(self.stage, time.perf_counter() - self.start)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def build_stats(ledger: Ledger, rejects: RejectLog, curator: Curator, split_counts: dict[str, dict[str, int]],
                subjects: int, seconds: float) -> dict[str, Any]:
    """What `build_stats.json` holds: the reconciled counts, rows per config and split, curation, rejects, timings."""
    if ledger.records_are_subjects:  # catalogue rows: rejected as rows ("votes") or as subjects without rows
        comment_rejects = rejects.by_stage_kind[("votes", "row")] + rejects.by_stage_kind[("build", "subject")]
    else:
        comment_rejects = rejects.count("comment") + sum(
            n for (stage, kind), n in rejects.by_stage_kind.items() if kind == "row" and stage == "ingest")
    return {
        "input_kind": "catalogue rows" if ledger.records_are_subjects else "comments",
        "input_records": ledger.input_records,
        "comments_in_output": ledger.comments_in_output,
        "input_records_rejected": comment_rejects,
        "reconciled": ledger.input_records == ledger.comments_in_output + comment_rejects,
        "subjects": subjects,
        "subjects_in_output": ledger.subjects_in_output,
        "subjects_dropped": ledger.subjects_dropped,
        "rows": {config: dict(splits) for config, splits in split_counts.items()},
        "curation": curator.stats.to_json(),
        "rejects": rejects.summary(),
        "seconds": {**ledger.stage_seconds, "total": round(seconds, 3)},
    }


def card_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """The build figures the card shows."""
    keep = ("input_records", "comments_in_output", "input_records_rejected", "subjects", "subjects_in_output",
            "subjects_dropped")
    return {key: stats[key] for key in keep} | {"rejects": stats["rejects"]["by_stage_and_kind"]}


def card_report(report: dict[str, Any]) -> dict[str, Any]:
    """The report figures (reports/report.json) the card shows."""
    keep = ("subjects", "comments", "comments_per_subject", "words_per_comment", "distinct_hashtags", "coverage")
    return {key: report[key] for key in keep if key in report}


def check_reconciled(stats: dict[str, Any]) -> None:
    """RuntimeError when the counts do not reconcile: a bug in the builder, never published."""
    if not stats["reconciled"]:
        # A bug in the builder, not in the input: say so loudly rather than publish unexplained losses.
        raise RuntimeError(
            f"comment counts do not reconcile: {stats['input_records']} input records != "
            f"{stats['comments_in_output']} in the output + {stats['input_records_rejected']} rejected"
        )
