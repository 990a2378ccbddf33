"""What the ingest-robustness and privacy work costs the dataset builder (issue 8, items 1-3).

Three figures (CPU seconds of this process), each against a reference measured in the same run:

1. cleaning 160k Talk comments (the mix of `bench_talk_ingest.py`) with the identity scrubbing of
   `privacy.scrub_identities`; reference: the same cleaner with only the mention and e-mail patterns
   it had before (`--comments` sets the count);
2. the final privacy pass (`scrub_outputs.finalise_outputs`) over a synthetic build of `--subjects` subjects
   (parquet rows, rejects, stats, reports, card); reference: that build itself;
3. reading a JSON-array Talk export of the same 160k comments with `read_talk_export` (record-by-record
   recovery), clean and with one broken record in the middle; reference: `json.load` of the file.

    OMP_NUM_THREADS=1 python benchmarks/bench_privacy.py
    OMP_NUM_THREADS=1 python benchmarks/bench_privacy.py --comments 20000 --subjects 100
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_talk_ingest import body  # noqa: E402

import dataset_builder.clean as clean  # noqa: E402
import dataset_builder.build as build_module  # noqa: E402
from dataset_builder.build import BuildOptions, build  # noqa: E402
from dataset_builder.scrub_outputs import finalise_outputs  # noqa: E402
from dataset_builder.synthetic import write_synthetic_export  # noqa: E402
from dataset_builder.talk import read_talk_export  # noqa: E402

# The cleaner's identity patterns before issue 8 (reference for figure 1).
_OLD_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_OLD_MENTION = re.compile(r"(?<![\w@])@\w+(?:[.-]\w+)*(?:['\u2019]s\b)?")


def _old_scrub(text: str) -> str:
    return _OLD_MENTION.sub(" ", _OLD_EMAIL.sub(" ", text)) if "@" in text else text


def best_of(runs: int, fn) -> float:
    """Best CPU time of this process over `runs` calls (CPU, not wall: the target machine's 2 cores are shared)."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def bench_clean(n: int) -> tuple[float, float]:
    rng = random.Random(0)
    bodies = [body(rng) for _ in range(n)]
    ours = best_of(2, lambda: [clean.clean_text(b) for b in bodies])
    with mock.patch.object(clean, "scrub_identities", _old_scrub):
        reference = best_of(2, lambda: [clean.clean_text(b) for b in bodies])
    return ours, reference


def bench_final_pass(subjects: int, tmp: Path) -> tuple[float, float, dict]:
    export = tmp / "export"
    write_synthetic_export(subjects, export, seed=1, size=64)
    options = BuildOptions(output_dir=tmp / "out", talk=export / "comments.json", tags=export / "tags.json",
                           catalogue=export / "gz_decals_votes.csv", catalogue_id_column="subject_id",
                           images=export / "images", progress=False)
    with mock.patch.object(build_module, "finalise_outputs", lambda *a, **k: {"by_file": {}}):
        start = time.process_time()
        build(options)
        reference = time.process_time() - start
    start = time.process_time()
    summary = finalise_outputs(tmp / "out", [export / "comments.json", export / "tags.json"])
    ours = time.process_time() - start
    return ours, reference, summary


def bench_json_reader(n: int, tmp: Path) -> tuple[float, float, float]:
    rng = random.Random(0)
    rows = [{"board_id": 1, "board_title": "Notes", "discussion_id": i, "discussion_title": f"Subject {10**7 + i}",
             "comment_id": 5 * 10**6 + i, "comment_body": body(rng), "comment_focus_id": 10**7 + i,
             "comment_focus_type": "Subject", "comment_user_id": f"u_{i:08x}", "comment_created_at": "2020-01-01"}
            for i in range(n)]
    items = [json.dumps(r, ensure_ascii=False) for r in rows]
    clean_path, broken_path = tmp / "comments.json", tmp / "broken.json"
    clean_path.write_text("[\n" + ",\n".join(items) + "\n]\n", encoding="utf-8")
    items[n // 2] = items[n // 2].replace('"comment_body": "', '"comment_body": ')
    broken_path.write_text("[\n" + ",\n".join(items) + "\n]\n", encoding="utf-8")

    def read(path: Path) -> None:
        count = sum(1 for _ in read_talk_export(path))
        assert count == n, (count, n)

    ours = best_of(2, lambda: read(clean_path))
    broken = best_of(2, lambda: read(broken_path))
    reference = best_of(2, lambda: [r["comment_body"] for r in json.loads(clean_path.read_text(encoding="utf-8"))])
    return ours, broken, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comments", type=int, default=160_000)
    parser.add_argument("--subjects", type=int, default=400)
    args = parser.parse_args()

    ours, reference = bench_clean(args.comments)
    print(f"1. clean_text, {args.comments:,} comments: {ours:.2f} s ({args.comments / ours:,.0f}/s) with identity "
          f"scrubbing; reference (mention + e-mail patterns only): {reference:.2f} s; ratio {ours / reference:.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        ours, reference, summary = bench_final_pass(args.subjects, Path(tmp))
        print(f"2. final privacy pass over a {args.subjects}-subject synthetic build: {ours:.2f} s "
              f"({summary['texts_scrubbed']} texts scrubbed); reference (the build): {reference:.2f} s; "
              f"ratio {ours / reference:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        ours, broken, reference = bench_json_reader(args.comments, Path(tmp))
        print(f"3. read_talk_export, JSON array of {args.comments:,} comments: {ours:.2f} s (one broken record: "
              f"{broken:.2f} s); reference (json.load): {reference:.2f} s; ratio {ours / reference:.2f}x")


if __name__ == "__main__":
    main()
