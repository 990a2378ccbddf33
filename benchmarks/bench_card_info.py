"""Cost of the card's `dataset_info` (card.dataset_infos): what it adds to a build.

Builds a synthetic gz-talk-instruct folder (3 configs, 128 px images), then times, in the same run:
- ours: `dataset_infos(folder)` (row counts from the parquet footers, arrow bytes read a row group at a time,
  file sizes), what `write_card` computes once per build;
- reference: `pyarrow.parquet.read_table` of every shard (one plain read of the same files);
and reports both against the build's own wall time.

    OMP_NUM_THREADS=1 python benchmarks/bench_card_info.py --subjects 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from dataset_builder.build import BuildOptions, build
    from dataset_builder.card import dataset_infos

    with tempfile.TemporaryDirectory(prefix="bench-card-info-") as tmp:
        out = Path(tmp) / "out"
        start = time.perf_counter()
        result = build(BuildOptions(output_dir=out, synthetic=args.subjects, progress=False))
        build_seconds = time.perf_counter() - start
        shards = sorted((out / "data").rglob("*.parquet"))
        ours = best_of(args.repeats, lambda: dataset_infos(out))
        reference = best_of(args.repeats, lambda: [pq.read_table(p) for p in shards])
        infos = dataset_infos(out)
        print(json.dumps({
            "subjects": args.subjects, "rows": result.rows, "shards": len(shards),
            "parquet_mb": round(sum(i.download_size for i in infos.values()) / 1e6, 1),
            "build_s": round(build_seconds, 2), "dataset_infos_s": round(ours, 3),
            "read_table_reference_s": round(reference, 3),
            "ratio_ours_to_reference": round(ours / reference, 2),
            "share_of_build": round(ours / build_seconds, 4),
        }, indent=2))


if __name__ == "__main__":
    main()
