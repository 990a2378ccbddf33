"""`python -m dataset_builder`: build, push and inspect gz-talk-instruct.

    python -m dataset_builder build --synthetic 200 --output_dir out/gz-synthetic
    python -m dataset_builder build --talk comments.json --tags tags.json --catalogue votes.csv \\
        --images images/ --output_dir out/gz-talk-instruct --push org/gz-talk-instruct
    python -m dataset_builder build --catalogue labels.csv --catalogue_id_column GalaxyID \\
        --images images/ --output_dir out/gz2-build          # no Talk export: votes + images alone
    python -m dataset_builder push out/gz-talk-instruct org/gz-talk-instruct
    python -m dataset_builder report out/gz-talk-instruct

The build flags are the fields of `options.BuildOptions` (parsed by `HfArgumentParser`: one flag per
field, `--image_size` or `--image-size`). Input problems (a missing file or column, an unknown config) end
with one line on stderr that names the thing at fault and exit status 2; `--debug` shows the traceback
instead. `--out` is the old spelling of `--output_dir` (the name train_sft.py, train_clip.py and
evaluate_gzllava.py use): it still works for one release, with a deprecation line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import fields
from pathlib import Path

from transformers import HfArgumentParser

from .build import build
from .flags import add_old_spellings
from .options import BUILD_ARGUMENTS, BuildError, BuildOptions
from .provenance import command_line
from .push import push
from .stats import STATS_FILE
from .summarise.base import SummariserError
from .writer import REJECTS_FILE

EXIT_BAD_INPUT = 2
EXIT_NO_ROWS = 1


class _Parser(HfArgumentParser):
    """Usage errors on one line (argparse prints the whole usage block first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dataset_builder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    commands = parser.add_subparsers(dest="command", required=True)

    # One flag per field of the build's dataclasses (options.py): the help and the default are written there.
    b = commands.add_parser("build", dataclass_types=BUILD_ARGUMENTS,
                            help="build the dataset folder (and optionally push it)")
    add_old_spellings(b, "--output_dir", "--out", type=Path)

    p = commands.add_parser("push", help="upload a built folder to the Hub (token from HF_TOKEN)")
    p.add_argument("folder", type=Path)
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")

    r = commands.add_parser("report", help="print the statistics of a built folder")
    r.add_argument("folder", type=Path)
    return parser


def build_options(args: argparse.Namespace) -> BuildOptions:
    """The `BuildOptions` of a parsed `build` command line."""
    parsed = {f.name: getattr(args, f.name) for arguments in BUILD_ARGUMENTS for f in fields(arguments)}
    return BuildOptions(**parsed, progress=not args.quiet, command=command_line())


def _build(options: BuildOptions) -> int:
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
            return _build(build_options(args))
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
