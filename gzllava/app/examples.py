"""Example galaxies for the app: a few synthetic Galaxy Zoo cutouts rendered at start (never real data)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from dataset_builder.synthetic import generate_galaxy

# (truth predicate, caption, question): one galaxy of each kind, the first the generator makes for seed 0
KINDS = (
    (lambda t: t.get("has-spiral-arms") == "yes", "spiral", "Is there any sign of a spiral arm pattern?"),
    (lambda t: t.get("smooth-or-featured") == "smooth", "smooth", "Describe this galaxy's morphology."),
    (lambda t: t.get("disk-edge-on") == "yes", "edge-on disk", "Could this be a disk viewed edge-on?"),
    (lambda t: t.get("bar") == "yes", "barred", "Is there a bar through the centre of this galaxy?"),
)


def render_examples(out_dir: str | Path, seed: int = 0, size: int = 128, search: int = 200) -> list[tuple[Path, str, str]]:
    """Write one PNG per kind found among the first `search` synthetic galaxies; (path, caption, question) each."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    found: list[tuple[Path, str, str]] = []
    remaining = list(KINDS)
    for index in range(search):
        if not remaining:
            break
        galaxy = generate_galaxy(index, seed=seed, size=size)
        for kind in remaining:
            predicate, caption, question = kind
            if predicate(galaxy.truth):
                path = out_dir / f"synthetic_{caption.replace(' ', '_')}_{seed}_{index}.png"
                Image.fromarray(galaxy.image).save(path)
                found.append((path, caption, question))
                remaining.remove(kind)
                break
    return found
