"""Catalogue-only build throughput: `build --catalogue --images` vs decoding the same images once.

Ours: the whole build (catalogue read + sum checks, image verification, template descriptions,
decision-tree rows, curation, parquet shards with the images embedded, report, card, atomic swap).
Reference, measured in the same run: opening and fully decoding every image with PIL, nothing else
(the least any builder that verifies its images must do). Ratio = ours / reference.

    OMP_NUM_THREADS=1 python benchmarks/bench_catalogue_build.py                   # the real GZ2 sample
    OMP_NUM_THREADS=1 python benchmarks/bench_catalogue_build.py --generated 2000  # no ../shared/data needed
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "robustness"))

REAL = REPO / ".." / "shared" / "data" / "gz2_kaggle_5000"


def generated(folder: Path, n: int) -> tuple[Path, Path]:
    """A Kaggle-layout catalogue (questions 1, 2, 6, 7, 8) and n 424 px JPEGs, like the real sample."""
    from test_builder_build import write_kaggle

    ids = list(range(100000, 100000 + n))
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:424, :424]
    for galaxy_id in ids:
        radius = rng.uniform(20, 80)
        blob = np.exp(-((yy - 212) ** 2 + (xx - 212) ** 2) / (2 * radius**2))
        pixels = np.clip(blob[..., None] * [220, 200, 170] + rng.normal(8, 4, (424, 424, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8), mode="RGB").save(images / f"{galaxy_id}.jpg", quality=90)
    return write_kaggle(folder / "labels.csv", ids), images


def decode_all(images: Path) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    for path in sorted(images.iterdir()):
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            image.load()
        count += 1
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generated", type=int, metavar="N", help="use N generated galaxies instead of the real sample")
    args = parser.parse_args()
    from dataset_builder.build import BuildOptions, build

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.generated or not (REAL / "labels.csv").is_file():
            catalogue, images = generated(tmp_path / "input", args.generated or 2000)
            source = f"{len(list(images.iterdir()))} generated 424 px galaxies"
        else:
            catalogue, images = REAL / "labels.csv", REAL / "images"
            source = "gz2_kaggle_5000 (5,000 real 424 px SDSS JPEGs)"
        count, reference = decode_all(images)  # also warms the page cache for the build
        count, reference = decode_all(images)
        start = time.perf_counter()
        result = build(BuildOptions(output_dir=tmp_path / "out", catalogue=catalogue, catalogue_id_column="GalaxyID",
                                    images=images, progress=False))
        ours = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.stats["seconds"].items() if k != "total")
    print(f"input: {source}")
    print(f"rows: {result.split_counts}")
    print(f"ours: build {ours:.1f} s ({count / ours:.0f} galaxies/s); stages: {stages}")
    print(f"reference: PIL decode of every image {reference:.1f} s ({count / reference:.0f} images/s)")
    print(f"ratio ours / reference: {ours / reference:.1f}x; peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
