"""Where a build came from, for its card: the builder's version and commit, the command, the inputs and the
summariser (`Provenance`), enough to rebuild it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _builder_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gz-llava")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _builder_version()


@dataclass
class Provenance:
    """Where a build came from: enough to rebuild it."""

    inputs: list[str]  # human-readable descriptions of the inputs
    synthetic: bool
    builder_version: str
    commit: str | None
    summariser: str  # backend name
    summariser_model: str | None
    split_fractions: tuple[float, float, float]
    seed: int | None = None
    command: str | None = None
    # None: split by a hash of the subject id (Talk and synthetic builds); else the fixed real-galaxy split
    # of gzllava.splits that catalogue-only builds use, described (catalogue_input.split_rule)
    split_rule: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def git_commit(path: Path = Path(__file__).resolve().parent) -> str | None:
    """The commit of the builder's checkout (provenance), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def command_line() -> str:
    """The command line that is running, as `python -m dataset_builder ...` (recorded in the card)."""
    return " ".join(shlex.quote(arg) for arg in ["python", "-m", "dataset_builder", *sys.argv[1:]])
