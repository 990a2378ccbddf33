"""What a build is asked to do: `BuildOptions` (inputs, stages, output) and its checks.

`BuildOptions.check` turns every inconsistent combination into a `BuildError` worded for the command line,
before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .curate import DEFAULT_SPLIT_FRACTIONS, check_split_fractions
from .instructions import CONFIGS
from .prepare import SummariserSpec

CATALOGUE_CONFIGS = ("description", "decision_tree")  # a catalogue-only build has no comments to converse about


class BuildError(Exception):
    """A problem with the build's inputs or options, worded for the command line (no traceback)."""


@dataclass
class BuildOptions:
    out_dir: Path
    # inputs: a Talk export, a vote catalogue + image folder alone (catalogue_input.py), or a synthetic
    # Galaxy Zoo of `synthetic` subjects
    talk: Path | None = None
    tags: Path | None = None
    catalogue: Path | None = None
    catalogue_id_column: str | None = None  # the catalogue column holding Talk subject ids (default: auto)
    images: Path | None = None
    image_cache: Path | None = None  # downloaded images are kept here (never fetched twice)
    synthetic: int | None = None
    seed: int = 0
    image_size: int = 128
    # stages
    summariser: str = "template"
    summariser_model: str | None = None
    base_url: str | None = None
    summary_cache: Path | None = None
    configs: Sequence[str] | None = None  # None: CONFIGS (CATALOGUE_CONFIGS for a catalogue-only build)
    split: Sequence[float] | None = None  # None: DEFAULT_SPLIT_FRACTIONS; catalogue-only: gzllava.splits
    near_duplicate_threshold: float | None = 0.85  # None: keep near duplicates
    offline: bool = False  # images: never download
    # output
    push: str | None = None
    private: bool = False
    workers: int = 1  # processes for images + summaries + rows (template summariser only)
    image_threads: int = 8  # threads fetching images (downloads are I/O bound)
    chunk_size: int = 256  # subjects whose images/rows are in memory at once, per process
    shard_rows: int = 5000
    progress: bool = True
    command: str | None = None  # recorded in the card

    @property
    def catalogue_only(self) -> bool:
        return self.talk is None and self.synthetic is None and self.catalogue is not None

    def check(self) -> None:
        if not self.catalogue_only and (self.talk is None) == (self.synthetic is None):
            raise BuildError("give exactly one input: --talk FILE, --catalogue FILE with --images DIR, or --synthetic N")
        if self.synthetic is not None and (self.catalogue is not None or self.images is not None):
            raise BuildError("--synthetic makes its own catalogue and images: drop --catalogue/--images")
        if self.catalogue_only:
            if self.images is None:
                raise BuildError("--catalogue without --talk builds from the catalogue and its images: give --images DIR")
            if self.configs is not None and "conversation" in self.configs:
                raise BuildError("--configs conversation needs Talk comments (--talk); a catalogue-only build makes "
                                 f"{', '.join(CATALOGUE_CONFIGS)}")
            if self.split is not None:
                raise BuildError("--split: a catalogue-only build uses the fixed real-galaxy split of gzllava/splits.py "
                                 "(train/test by galaxy id); drop --split")
        if self.configs is None:
            self.configs = CATALOGUE_CONFIGS if self.catalogue_only else CONFIGS
        if self.split is None and not self.catalogue_only:
            self.split = DEFAULT_SPLIT_FRACTIONS
        if self.synthetic is not None and self.synthetic < 1:
            raise BuildError(f"--synthetic {self.synthetic}: need at least 1 subject")
        for name in ("talk", "tags", "catalogue"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise BuildError(f"--{name}: file not found: {path}")
        if self.images is not None and not Path(self.images).is_dir():
            raise BuildError(f"--images: folder not found: {self.images}")
        unknown = [c for c in self.configs if c not in CONFIGS]
        if unknown or not self.configs:
            raise BuildError(f"unknown config(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(CONFIGS)}")
        try:
            if self.split is not None:
                self.split = check_split_fractions(self.split)
        except ValueError as error:
            raise BuildError(str(error)) from None
        uses_summaries = any(c in ("description", "conversation") for c in self.configs)
        if uses_summaries and self.summariser != "template" and not self.summariser_model:
            raise BuildError(f"--summariser {self.summariser} needs --summariser-model (a model id or local path)")
        if self.base_url is not None and self.summariser != "openai":
            raise BuildError("--base-url is for --summariser openai")
        if min(self.workers, self.image_threads, self.chunk_size, self.shard_rows) < 1:
            raise BuildError("--workers, --image-threads, --chunk-size and --shard-rows must be at least 1")
        if self.image_size < 16:
            raise BuildError(f"--image-size {self.image_size}: need at least 16 pixels")

    def summariser_spec(self) -> SummariserSpec:
        """The summariser the chunk preparer opens (in whichever process runs it)."""
        kwargs: dict[str, object] = {}
        if self.summary_cache is not None:
            kwargs["cache_dir"] = self.summary_cache
        if self.summariser_model is not None:
            kwargs["model"] = self.summariser_model
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        return SummariserSpec(self.summariser, kwargs)
