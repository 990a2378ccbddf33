"""Atomic output folders: a build is written beside `--out` and swapped in only when it is complete.

    with StagedFolder(out_dir) as staging:     # staging.path = <parent>/.<name>.building
        ... write everything under staging.path ...
        staging.commit()                        # <out> now holds the new build; the old one is gone

A build that dies (an exception, Ctrl-C, SIGKILL, a full disk) leaves `<out>` exactly as it was (the
previous complete build, or nothing) and at worst a `.<name>.building` folder, which the next build
removes before it starts. The swap is two renames on one file system: `<out>` -> `.<name>.previous`,
staging -> `<out>`; between them the old build is still complete under `.<name>.previous`, and a build
that finds `<out>` missing and `.<name>.previous` present puts it back first.

`<out>` must be new, empty, or a previous build (it has `build_stats.json`): the swap replaces the whole
folder, so a folder holding anything else is refused rather than deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

BUILD_MARKER = "build_stats.json"  # a folder with this file at its top is a build of ours


class OutputFolderError(ValueError):
    """`--out` is a folder the build must not replace."""


class StagedFolder:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir).resolve()  # "." or "a/.." have no name of their own to stage beside
        parent, name = self.out_dir.parent, self.out_dir.name
        self.path = parent / f".{name}.building"
        self.previous = parent / f".{name}.previous"
        self.committed = False

    def check(self) -> None:
        """Refuse an `--out` that is a file, or a non-empty folder that is not a previous build."""
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise OutputFolderError(f"--out {out}: exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not (out / BUILD_MARKER).is_file():
            raise OutputFolderError(
                f"--out {out}: folder is not empty and holds no previous build ({BUILD_MARKER} missing); "
                "a build replaces its --out folder as a whole, so give a new or empty folder")

    def __enter__(self) -> StagedFolder:
        self.check()
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        if not self.out_dir.exists() and self.previous.is_dir():
            # A swap was interrupted between its two renames: the last complete build is the previous one.
            logger.warning("restoring %s from %s (an earlier build was interrupted mid-swap)", self.out_dir, self.previous)
            os.replace(self.previous, self.out_dir)
        for stale in (self.path, self.previous):
            if stale.exists():
                logger.info("removing %s (left by an interrupted build)", stale)
                shutil.rmtree(stale)
        self.path.mkdir()
        return self

    def commit(self) -> None:
        """Swap the finished staging folder in as `<out>`."""
        if self.out_dir.exists():
            os.replace(self.out_dir, self.previous)
        os.replace(self.path, self.out_dir)
        if self.previous.exists():
            shutil.rmtree(self.previous)
        self.committed = True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if not self.committed and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)  # an unfinished build: `<out>` is untouched
