"""python -m dataset_builder.synthetic --n 500 --out DIR [--seed 0] [--size 128] [--workers 1]"""

from __future__ import annotations

import argparse
import json
import logging

from . import write_synthetic_export


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m dataset_builder.synthetic", description=__doc__)
    parser.add_argument("--n", type=int, required=True, help="number of galaxies")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128, help="image size in pixels")
    parser.add_argument("--workers", type=int, default=1, help="processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = write_synthetic_export(args.n, args.out, seed=args.seed, size=args.size, workers=args.workers)
    print(json.dumps(counts, indent=2))
    return counts


if __name__ == "__main__":
    main()
