"""Run a recipe's stages (build, tower, align, instruct, evaluate) as child processes: quiet, logged, resumable.

Each `Stage` is one command (`python -m dataset_builder build ...`, `python train_clip.py ...`, `python
train_sft.py ...`, `python evaluate_gzllava.py ...`) and the file that proves it finished (a model folder's
`config.json`, a build's `build_stats.json`, an evaluation's `metrics.json`). A stage whose file exists is
skipped, so a run that stopped half-way continues where it stopped. The terminal shows one progress bar per
stage (the step counter the child's own tqdm writes, e.g. the Trainer's `120/500`), the child's full output
goes to `<log_dir>/<stage>.log`, and a failed stage raises `StageError` with one line naming the stage, its
exit code, the child's last error line and the log.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm


logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
# tqdm's counter "  12/500 [" (the bracket keeps "1/2" in ordinary text from counting as progress).
PROGRESS = re.compile(rb"(\d+)/(\d+) \[")
ERROR_LINE = re.compile(r"(Error|error:|Exception|failed|refused)")


class StageError(RuntimeError):
    """A stage's command failed; `exit_code` is the child's (2 means it rejected its input)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Stage:
    name: str
    command: list[str]  # arguments after `python`, e.g. ["train_sft.py", "--config", ...]
    done: Path  # this file exists once the stage has finished
    note: str = ""  # one line for the summary (what the stage makes)
    seconds: float | None = None  # wall time of this run (None when skipped)
    skipped: bool = field(default=False)


def _last_error_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").replace("\r", "\n").splitlines() if line.strip()]
    for line in reversed(lines[-60:]):
        if ERROR_LINE.search(line):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


class StageProgress:
    """A stage's one bar, following the counter of the child's bar that runs now. A child runs several bars, one
    after the other or nested (measuring samples, then training, with a 1/1 "Writing model shards" bar at each
    checkpoint): the bar switches to the counter it sees, and back to a total it showed before with that total's
    start time, so elapsed and remaining time stay those of the training loop (an average rate: no smoothing)."""

    def __init__(self, name: str, show: bool = True):
        self.bar = tqdm(desc=f"{name:>9}", total=None, unit="step", disable=not show, leave=True, smoothing=0,
                        bar_format="{desc}: {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
        self.started: dict[int, float] = {}  # total -> when a counter of that total was first seen

    def update(self, n: int, total: int) -> None:
        if total != self.bar.total:
            self.bar.reset(total=total)
            if not self.bar.disable:  # a disabled bar keeps no times
                self.bar.start_t = self.started.setdefault(total, self.bar.start_t)
        self.bar.n = n
        self.bar.refresh()

    def close(self, finished: bool) -> None:
        if finished and self.bar.total:
            self.bar.n = self.bar.total
        self.bar.close()


def run_stage(stage: Stage, log_dir: Path, env: dict[str, str] | None = None, show_progress: bool = True) -> Stage:
    """Run one stage unless its `done` file exists; the child's output goes to `<log_dir>/<name>.log`."""
    if stage.done.exists():
        stage.skipped = True
        logger.info("stage %s: %s exists, skipped", stage.name, stage.done)
        return stage
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{stage.name}.log"
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    started = time.time()
    progress = StageProgress(stage.name, show_progress)
    with log.open("wb") as sink:
        sink.write(f"$ {sys.executable} {' '.join(stage.command)}\n".encode())
        sink.flush()
        process = subprocess.Popen([sys.executable, *stage.command], cwd=REPO_ROOT, env=child_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        try:
            while chunk := process.stdout.read1(65536):
                sink.write(chunk)
                matches = PROGRESS.findall(chunk)
                if matches:
                    progress.update(*(int(x) for x in matches[-1]))
            code = process.wait()
        except BaseException:
            # Interrupted here (Ctrl-C in a notebook, a test's timeout): the child must not train on, orphaned.
            process.kill()
            process.wait()
            raise
    progress.close(finished=code == 0)
    stage.seconds = time.time() - started
    if code != 0:
        raise StageError(f"stage {stage.name} failed (exit {code}): {_last_error_line(log)} (full log: {log})", code)
    if not stage.done.exists():
        raise StageError(f"stage {stage.name} exited 0 but did not write {stage.done} (full log: {log})", 1)
    return stage


def run_stages(stages: list[Stage], log_dir: Path, env: dict[str, str] | None = None,
               show_progress: bool = True) -> list[Stage]:
    """Run the stages in order (each skipped when done); stop at the first failure."""
    for stage in stages:
        run_stage(stage, log_dir, env=env, show_progress=show_progress)
    return stages


def timing_table(stages: list[Stage]) -> str:
    """A markdown table: stage, what it made, minutes (or 'done earlier')."""
    rows = ["| stage | output | time |", "|---|---|---:|"]
    for stage in stages:
        took = "done earlier" if stage.skipped else f"{(stage.seconds or 0) / 60:.1f} min"
        rows.append(f"| {stage.name} | {stage.note or stage.done.parent} | {took} |")
    ran = sum(s.seconds or 0 for s in stages)
    rows.append(f"| **total (this run)** | | **{ran / 60:.1f} min** |")
    return "\n".join(rows)
