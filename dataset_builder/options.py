"""What a build is asked to do, as dataclasses that are also the command line (`HfArgumentParser`).

`InputArguments`, `StageArguments` and `OutputArguments` are the flags of `python -m dataset_builder build`
(one field, one flag: help in the field's metadata, the default written once, here); `BuildOptions` is all
three plus what the command line derives (progress bars, the command recorded in the card), and
`BuildOptions.check` turns every inconsistent combination into a `BuildError` worded for the command line,
before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .curate import DEFAULT_SPLIT_FRACTIONS, check_split_fractions, parse_split_fractions
from .instructions import CONFIGS, parse_configs
from .prepare import SummariserSpec

CATALOGUE_CONFIGS = ("description", "decision_tree")  # a catalogue-only build has no comments to converse about
SUMMARISERS = ("template", "transformers", "openai")
AT_LEAST_ONE = ("synthetic", "workers", "image_threads", "chunk_size", "shard_rows")


class BuildError(Exception):
    """A problem with the build's inputs or options, worded for the command line (no traceback)."""


def _flag(help: str, default: Any = None, **metadata: Any) -> Any:
    """A field with its command-line help (and argparse extras: metavar, choices) in its metadata."""
    return field(default=default, metadata={"help": help, **metadata})


@dataclass
class InputArguments:
    """A Talk export, a vote catalogue + image folder alone (catalogue_input.py), or a synthetic Galaxy Zoo."""

    _argument_group_name = "input (one of --talk, --catalogue with --images, or --synthetic)"

    talk: Path | None = _flag("Talk comments export (Panoptes JSON/CSV or the GZ Talk CSV)")
    tags: Path | None = _flag("Talk tags export (Panoptes), merged by comment id")
    catalogue: Path | None = _flag(
        "Galaxy Zoo vote catalogue (GZ DECaLS, GZ2 or Kaggle; CSV/parquet/FITS); without --talk, the build's only "
        "input besides --images (configs description,decision_tree; train/test by gzllava.splits)")
    catalogue_id_column: str | None = _flag(
        "catalogue column holding the Talk subject ids, or the image names of a catalogue-only build (None: the "
        "schema's id column)", metavar="COLUMN")
    images: Path | None = _flag("folder of subject images named by subject id")
    image_cache: Path | None = _flag("keep downloaded images here between runs (never fetched twice)", metavar="DIR")
    synthetic: int | None = _flag("build from N synthetic Galaxy Zoo subjects", metavar="N")
    seed: int = _flag("seed of the synthetic data", 0)
    image_size: int = _flag("synthetic image size in pixels", 128, metavar="PX")


@dataclass
class StageArguments:
    """How summaries and rows are made and curated."""

    _argument_group_name = "stages"

    summariser: str = _flag("summary backend (template: offline and deterministic)", "template",
                            choices=SUMMARISERS)
    summariser_model: str | None = _flag("model id/path (transformers) or model name (openai)")
    base_url: str | None = _flag("OpenAI-compatible endpoint (openai backend; key from OPENAI_API_KEY)")
    summary_cache: Path | None = _flag("folder caching summaries between runs")
    # `str | None | Sequence`: the command line gives text ("a,b"; the parser takes the first type), Python may
    # give a sequence. None: CONFIGS (CATALOGUE_CONFIGS for a catalogue-only build).
    configs: str | None | Sequence[str] = _flag(
        f"comma-separated configs to build (None: {','.join(CONFIGS)}; catalogue-only: "
        f"{','.join(CATALOGUE_CONFIGS)})")
    # None: DEFAULT_SPLIT_FRACTIONS; a catalogue-only build uses gzllava.splits
    split: str | None | Sequence[float] = _flag(
        "split fractions by subject (None: 0.8,0.1,0.1; catalogue-only builds use gzllava.splits)",
        metavar="TRAIN,VAL,TEST")
    near_duplicate_threshold: float | None = _flag(
        "estimated Jaccard similarity at which free-text rows are near duplicates (None: keep them)", 0.85,
        metavar="J")
    keep_near_duplicates: bool = _flag(
        "keep near-duplicate free text (e.g. a template summariser's repeated sentences); exact duplicates are "
        "still removed (the command line's near_duplicate_threshold=None)", False)
    offline: bool = _flag("never download images (local files only)", False)


@dataclass
class OutputArguments:
    """Where the build goes and how much runs at once."""

    _argument_group_name = "output"

    output_dir: Path | None = _flag("output folder (the Hub dataset repository layout; required)")
    push: str | None = _flag("upload the folder to this Hub dataset repository", metavar="REPO_ID")
    private: bool = _flag("create the Hub repository as private", False)
    workers: int = _flag("processes for images + template summaries + rows, and for synthetic rendering", 1)
    image_threads: int = _flag("threads fetching images (downloads are I/O bound)", 8)
    chunk_size: int = _flag("subjects whose images and rows are in memory at once, per process", 256)
    shard_rows: int = _flag("rows per parquet shard at most", 5000)


BUILD_ARGUMENTS = (InputArguments, StageArguments, OutputArguments)


@dataclass
class BuildOptions(OutputArguments, StageArguments, InputArguments):
    """Every build flag, plus what the command line derives rather than parses."""

    progress: bool = True
    command: str | None = None  # the command line, recorded in the card

    @property
    def catalogue_only(self) -> bool:
        return self.talk is None and self.synthetic is None and self.catalogue is not None

    def check(self) -> None:
        """BuildError for the first inconsistency; fills in the defaults that depend on the input kind."""
        if self.output_dir is None:
            raise BuildError("give the output folder: --output_dir DIR")
        if not self.catalogue_only and (self.talk is None) == (self.synthetic is None):
            raise BuildError("give exactly one input: --talk FILE, --catalogue FILE with --images DIR, or --synthetic N")
        if self.synthetic is not None and (self.catalogue is not None or self.images is not None):
            raise BuildError("--synthetic makes its own catalogue and images: drop --catalogue/--images")
        for name in AT_LEAST_ONE:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BuildError(f"--{name} {value}: expected at least 1")
        try:
            configs = self._configs()
            split = parse_split_fractions(self.split) if isinstance(self.split, str) else self.split
            split = check_split_fractions(split) if split is not None else None
        except ValueError as error:
            raise BuildError(str(error)) from None
        if self.catalogue_only:
            self._check_catalogue_only(configs)
        self.configs = configs
        self.split = DEFAULT_SPLIT_FRACTIONS if split is None and not self.catalogue_only else split
        if self.keep_near_duplicates:
            self.near_duplicate_threshold = None
        for name in ("talk", "tags", "catalogue"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise BuildError(f"--{name}: file not found: {path}")
        if self.images is not None and not Path(self.images).is_dir():
            raise BuildError(f"--images: folder not found: {self.images}")
        uses_summaries = any(c in ("description", "conversation") for c in self.configs)
        if uses_summaries and self.summariser != "template" and not self.summariser_model:
            raise BuildError(f"--summariser {self.summariser} needs --summariser_model (a model id or local path)")
        if self.base_url is not None and self.summariser != "openai":
            raise BuildError("--base_url is for --summariser openai")
        if self.image_size < 16:
            raise BuildError(f"--image_size {self.image_size}: need at least 16 pixels")

    def _check_catalogue_only(self, configs: list[str]) -> None:
        if self.images is None:
            raise BuildError("--catalogue without --talk builds from the catalogue and its images: give --images DIR")
        if "conversation" in configs:
            raise BuildError("--configs conversation needs Talk comments (--talk); a catalogue-only build makes "
                             f"{', '.join(CATALOGUE_CONFIGS)}")
        if self.split is not None:
            raise BuildError("--split: a catalogue-only build uses the fixed real-galaxy split of gzllava/splits.py "
                             "(train/test by galaxy id); drop --split")

    def _configs(self) -> list[str]:
        """The configs to build, from a comma-separated string or a sequence (ValueError for an unknown one)."""
        if self.configs is None:
            return list(CATALOGUE_CONFIGS if self.catalogue_only else CONFIGS)
        return parse_configs(self.configs if isinstance(self.configs, str) else ",".join(self.configs))

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
