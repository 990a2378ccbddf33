"""Synthetic Galaxy Zoo throughput on one core: images per minute at 64, 128 and 256 px.

Ours: `generate_galaxy` (structure + render + votes + Talk thread) and the same plus the JPEG
encoding that `write_synthetic_export` does. Reference, in the same run: PIL JPEG-encoding a
same-size uniform-noise image (quality 90), i.e. the cost of only writing an image file.

    OMP_NUM_THREADS=1 python benchmarks/bench_synthetic.py [--n 300]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from dataset_builder.synthetic import generate_galaxy  # noqa: E402
from dataset_builder.synthetic.export import encode_jpeg  # noqa: E402
from dataset_builder.synthetic.galaxy_sampler import sample_galaxy  # noqa: E402
from dataset_builder.synthetic.render import render  # noqa: E402


def per_image_seconds(fn, n: int, blocks: int = 6) -> float:
    """Per-call time of fn(i) over i in range(n), as the fastest of `blocks` equal blocks.

    The minimum over short blocks keeps other processes on a shared machine from inflating the
    figure (they can only slow a block down, never speed it up)."""
    per_block = max(n // blocks, 1)
    best = float("inf")
    for b in range(blocks):
        start = time.perf_counter()
        for i in range(b * per_block, (b + 1) * per_block):
            fn(i)
        best = min(best, (time.perf_counter() - start) / per_block)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="galaxies per size (256 px uses n/2)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    generate_galaxy(0)  # warm caches and imports
    header = "| size | generate_galaxy | + JPEG encode | render only | reference: JPEG of noise | ratio (gen+JPEG / ref) |"
    print(header)
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        n = args.n if size <= 128 else max(args.n // 2, 10)
        gen = per_image_seconds(lambda i: generate_galaxy(i, 1, size), n)
        gen_jpeg = per_image_seconds(lambda i: encode_jpeg(generate_galaxy(i, 1, size).image), n)
        params = [sample_galaxy(np.random.default_rng([1, i])) for i in range(n)]
        rng = np.random.default_rng(0)
        rend = per_image_seconds(lambda i: render(params[i], size, rng), n)
        noise = [np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(8)]
        ref = per_image_seconds(lambda i: encode_jpeg(noise[i % 8]), max(n, 120))

        def per_min(seconds: float) -> str:
            return f"{60 / seconds:,.0f}/min ({seconds * 1e3:.2f} ms)"

        print(f"| {size} px | {per_min(gen)} | {per_min(gen_jpeg)} | {per_min(rend)} | {per_min(ref)} | "
              f"{gen_jpeg / ref:.1f}x |")


if __name__ == "__main__":
    main()
