"""Realism check: synthetic cutouts next to real GZ DECaLS cutouts with the same answers.

    python -m dataset_builder.synthetic.compare --real ../shared/data/gz_examples_decals \
        --out docs/synthetic_vs_real.png

`image_stats` (sky level, sky noise, central colour) is what the realism test compares.
"""

from __future__ import annotations

import argparse
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from . import generate_galaxy

log = logging.getLogger(__name__)

# (title, real example image (labels.csv), predicate on a synthetic galaxy's truth)
PAIRS: tuple[tuple[str, str, Callable[[dict], bool]], ...] = (
    ("smooth, round", "decals-0_a-0_0.jpg", lambda t: t.get("how-rounded") == "completely" and t["merger"] == "neither"),
    ("smooth, cigar", "decals-8_a-2_0.jpg", lambda t: t.get("how-rounded") == "cigar-shaped"),
    ("spiral", "decals-3_a-0_0.jpg", lambda t: t.get("has-spiral-arms") == "yes" and not t["has_bar"] and t["merger"] == "neither"),
    ("bar", "decals-2_a-0_0.jpg", lambda t: t.get("bar") == "yes" and t.get("has-spiral-arms") == "yes"),
    ("edge-on", "decals-1_a-0_0.jpg", lambda t: t.get("disk-edge-on") == "yes" and "dust-lane" not in t["odd-feature"]),
    ("dust lane", "decals-10_x-5_0.jpg", lambda t: "dust-lane" in t["odd-feature"]),
    ("merger", "decals-9_a-2_0.jpg", lambda t: t["merger"] in ("merger", "both")),
    ("ring", "decals-10_x-1_0.jpg", lambda t: "ring" in t["odd-feature"]),
    ("irregular", "decals-10_x-3_0.jpg", lambda t: "irregular" in t["odd-feature"]),
    ("star or artifact", "decals-0_a-2_0.jpg", lambda t: t["smooth-or-featured"] == "artifact"),
)


def image_stats(image: np.ndarray) -> dict[str, np.ndarray]:
    """Simple statistics of an (H, W, 3) uint8 cutout.

    sky: per-channel median of the outer 10% border; noise: per-channel robust sigma (1.4826 MAD)
    there; centre: mean RGB of the central 1/8 x 1/8 box.
    """
    a = image.astype(np.float32)
    size = a.shape[0]
    b = max(size // 10, 2)
    border = np.concatenate([a[:b].reshape(-1, 3), a[-b:].reshape(-1, 3), a[:, :b].reshape(-1, 3), a[:, -b:].reshape(-1, 3)])
    sky = np.median(border, axis=0)
    noise = 1.4826 * np.median(np.abs(border - sky), axis=0)
    half = max(size // 16, 1)
    centre = a[size // 2 - half : size // 2 + half, size // 2 - half : size // 2 + half].reshape(-1, 3).mean(axis=0)
    return {"sky": sky, "noise": noise, "centre": centre}


def load_real(path: Path, size: int) -> np.ndarray:
    """A real cutout resized to `size` px (Lanczos), as a model would see it."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size, size), Image.LANCZOS))


def jpeg_roundtrip(image: np.ndarray) -> np.ndarray:
    """The image as `write_synthetic_export` stores it (JPEG), decoded again."""
    from .export import encode_jpeg

    with Image.open(io.BytesIO(encode_jpeg(image))) as im:
        return np.asarray(im.convert("RGB"))


def find_synthetic(predicate: Callable[[dict], bool], seed: int, size: int, start: int = 0, limit: int = 3000):
    for index in range(start, start + limit):
        galaxy = generate_galaxy(index, seed, size)
        if predicate(galaxy.truth):
            return galaxy
    raise LookupError(f"no synthetic galaxy in indices {start}-{start + limit} of seed {seed} matches")


def make_comparison_figure(real_dir: Path, out: Path, seed: int = 0, size: int = 128) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = Path(real_dir) / "images"
    fig, axes = plt.subplots(2, len(PAIRS), figsize=(1.9 * len(PAIRS), 4.3), facecolor="white")
    for col, (title, real_name, predicate) in enumerate(PAIRS):
        real = load_real(images / real_name, size)
        synthetic = find_synthetic(predicate, seed, size)
        for row, (img, label) in enumerate(((real, real_name.removesuffix(".jpg")),
                                            (jpeg_roundtrip(synthetic.image), f"synthetic {synthetic.subject_id}"))):
            ax = axes[row, col]
            ax.imshow(img, interpolation="lanczos")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(label, fontsize=6)
            if row == 0:
                ax.set_title(title, fontsize=9)
        log.info("%s: real %s, synthetic %s", title, real_name, synthetic.subject_id)
    axes[0, 0].set_ylabel(f"real GZ DECaLS\n(resized to {size} px)", fontsize=8)
    axes[1, 0].set_ylabel(f"synthetic, {size} px\n(seed {seed})", fontsize=8)
    fig.suptitle("Synthetic Galaxy Zoo (bottom) vs real Galaxy Zoo DECaLS help examples (top), same answers", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=85)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", required=True, type=Path, help="folder with images/ of GZ DECaLS examples")
    parser.add_argument("--out", default=Path("docs/synthetic_vs_real.png"), type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not (args.real / "images").is_dir():
        parser.error(f"{args.real / 'images'} is not a folder of real cutouts")
    print(make_comparison_figure(args.real, args.out, args.seed, args.size))


if __name__ == "__main__":
    main()
