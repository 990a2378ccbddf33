"""`python -m dataset_builder`: build, push and inspect gz-talk-instruct.

    python -m dataset_builder build --synthetic 200 --output_dir out/gz-synthetic
    python -m dataset_builder build --talk comments.json --tags tags.json --catalogue votes.csv \\
        --images images/ --output_dir out/gz-talk-instruct --push org/gz-talk-instruct
    python -m dataset_builder build --catalogue labels.csv --catalogue-id-column GalaxyID \\
        --images images/ --output_dir out/gz2-build          # no Talk export: votes + images alone
    python -m dataset_builder push out/gz-talk-instruct org/gz-talk-instruct
    python -m dataset_builder report out/gz-talk-instruct

Input problems (a missing file or column, an unknown config) end with one line on stderr that names
the thing at fault and exit status 2; `--debug` shows the traceback instead. `--out` is the old spelling
of `--output_dir` (the name train_sft.py, train_clip.py and evaluate_gzllava.py use): it still works for
one release, with a deprecation line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path

from .build import build
from .curate import parse_split_fractions
from .flags import add_flag
from .instructions import CONFIGS, parse_configs
from .options import CATALOGUE_CONFIGS, BuildError, BuildOptions
from .provenance import command_line
from .push import push
from .stats import STATS_FILE
from .summarise.base import SummariserError
from .writer import REJECTS_FILE

EXIT_BAD_INPUT = 2
EXIT_NO_ROWS = 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, not {value}")
    return value


def _configs(text: str) -> list[str]:
    try:
        return parse_configs(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _split(text: str) -> tuple[float, float, float]:
    try:
        return parse_split_fractions(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line (argparse prints the whole usage block first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dataset_builder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    commands = parser.add_subparsers(dest="command", required=True)

    b = commands.add_parser("build", help="build the dataset folder (and optionally push it)")
    source = b.add_argument_group("input (one of --talk, --catalogue with --images, or --synthetic)")
    source.add_argument("--talk", type=Path, help="Talk comments export (Panoptes JSON/CSV or the GZ Talk CSV)")
    source.add_argument("--tags", type=Path, help="Talk tags export (Panoptes), merged by comment id")
    source.add_argument("--catalogue", type=Path,
                        help="Galaxy Zoo vote catalogue (GZ DECaLS, GZ2 or Kaggle; CSV/parquet/FITS); without --talk, "
                        "the build's only input besides --images (configs description,decision_tree; train/test "
                        "by gzllava.splits)")
    source.add_argument("--catalogue-id-column", metavar="COLUMN",
                        help="catalogue column holding the Talk subject ids, or the image names of a catalogue-only "
                        "build (default: the schema's id column)")
    source.add_argument("--images", type=Path, help="folder of subject images named by subject id")
    source.add_argument("--image-cache", type=Path, metavar="DIR", help="keep downloaded images here between runs")
    source.add_argument("--synthetic", type=_positive_int, metavar="N", help="build from N synthetic Galaxy Zoo subjects")
    source.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    source.add_argument("--image-size", type=_positive_int, default=128, metavar="PX",
                        help="synthetic image size in pixels (default 128)")
    add_flag(b, "--output_dir", "--out", type=Path, help="output folder (the Hub dataset repository layout; required)")
    b.add_argument("--summariser", choices=("template", "transformers", "openai"), default="template",
                   help="summary backend (default: template, offline and deterministic)")
    b.add_argument("--summariser-model", help="model id/path (transformers) or model name (openai)")
    b.add_argument("--base-url", help="OpenAI-compatible endpoint (openai backend; key from OPENAI_API_KEY)")
    b.add_argument("--summary-cache", type=Path, help="folder caching summaries between runs")
    b.add_argument("--configs", type=_configs, default=None,
                   help=f"comma-separated configs to build (default: {','.join(CONFIGS)}; catalogue-only: "
                   f"{','.join(CATALOGUE_CONFIGS)})")
    b.add_argument("--split", type=_split, default=None, metavar="TRAIN,VAL,TEST",
                   help="split fractions by subject (default 0.8,0.1,0.1; catalogue-only builds use gzllava.splits)")
    b.add_argument("--near-duplicate-threshold", type=float, default=0.85, metavar="J",
                   help="estimated Jaccard similarity at which free-text rows are near duplicates (default 0.85)")
    b.add_argument("--keep-near-duplicates", action="store_true",
                   help="keep near-duplicate free text (e.g. a template summariser's repeated sentences); "
                   "exact duplicates are still removed")
    b.add_argument("--offline", action="store_true", help="never download images (local files only)")
    b.add_argument("--workers", type=_positive_int, default=1,
                   help="processes for images + template summaries + rows, and for synthetic rendering (default 1)")
    b.add_argument("--image-threads", type=_positive_int, default=8, help="threads fetching images (default 8)")
    b.add_argument("--chunk-size", type=_positive_int, default=256, help="subjects processed at once (memory)")
    b.add_argument("--shard-rows", type=_positive_int, default=5000, help="rows per parquet shard at most")
    b.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Hub dataset repository")
    b.add_argument("--private", action="store_true", help="create the Hub repository as private")

    p = commands.add_parser("push", help="upload a built folder to the Hub (token from HF_TOKEN)")
    p.add_argument("folder", type=Path)
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")

    r = commands.add_parser("report", help="print the statistics of a built folder")
    r.add_argument("folder", type=Path)
    return parser


def _build(args: argparse.Namespace) -> int:
    options = BuildOptions(
        out_dir=args.output_dir, talk=args.talk, tags=args.tags, catalogue=args.catalogue, catalogue_id_column=args.catalogue_id_column, images=args.images, image_cache=args.image_cache,
        synthetic=args.synthetic, seed=args.seed, image_size=args.image_size, summariser=args.summariser,
        summariser_model=args.summariser_model, base_url=args.base_url, summary_cache=args.summary_cache,
        configs=args.configs, split=args.split, near_duplicate_threshold=None if args.keep_near_duplicates else args.near_duplicate_threshold,
        offline=args.offline, push=args.push, private=args.private, workers=args.workers, image_threads=args.image_threads,
        chunk_size=args.chunk_size, shard_rows=args.shard_rows, progress=not args.quiet, command=command_line(),
    )
    result = build(options)
    _print_summary(result.out_dir, result.stats)
    if result.rows == 0:
        top = result.stats["rejects"]["top_reasons"]
        why = ", ".join(f"{reason} ({n})" for reason, n in list(top.items())[:3])
        print(f"error: the build wrote no rows; every subject was rejected ({why}). "
              f"See {result.rejects} and {result.report}.", file=sys.stderr)
        return EXIT_NO_ROWS
    if result.pushed_to:
        print(f"pushed to {result.pushed_to}")
    return 0


def _print_summary(folder: Path, stats: dict) -> None:
    kind = stats.get("input_kind", "comments")
    print(f"{folder}: {stats['input_records']} input records -> {stats['comments_in_output']} {kind} behind "
          f"rows + {stats['input_records_rejected']} rejected; {stats['subjects_in_output']} of "
          f"{stats['subjects']} subjects in the output")
    for config, splits in stats["rows"].items():
        print(f"  {config}: " + ", ".join(f"{split} {n}" for split, n in splits.items()))
    print(f"  rejects: {folder / REJECTS_FILE}; report: {folder / 'reports' / 'report.md'}")


def _report(args: argparse.Namespace) -> int:
    folder = args.folder
    stats_path = folder / STATS_FILE
    if not stats_path.is_file():
        raise BuildError(f"{folder} is not a built dataset folder: {STATS_FILE} not found")
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    _print_summary(folder, stats)
    reasons: Counter[str] = Counter()
    rejects_path = folder / REJECTS_FILE
    if rejects_path.is_file():
        with rejects_path.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                reasons[f"{record['stage']}/{record['kind']}: {record['reason'].split(':')[0]}"] += 1
    for reason, count in reasons.most_common(15):
        print(f"  {count:7d}  {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command == "build" and args.output_dir is None:
        parser.error("build: the following arguments are required: --output_dir")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "build":
            return _build(args)
        if args.command == "push":
            print(f"pushed to {push(args.folder, args.repo_id, private=args.private)}")
            return 0
        return _report(args)
    except (BuildError, FileNotFoundError, ValueError, SummariserError) as error:
        # Input problems (and a summariser endpoint refusing us): the message names the file, column or value at fault.
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
