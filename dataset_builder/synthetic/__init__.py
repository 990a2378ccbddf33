"""The embedded synthetic Galaxy Zoo: realistic galaxy cutouts with known answers.

Deterministic per (seed, index): `generate_galaxy(i, seed)` always returns the same image bytes,
truth, votes and Talk thread, whatever else was generated before or in parallel. Each galaxy's
random streams (structure, pixel noise, volunteers, Talk) are separate children of one
`numpy.random.SeedSequence([seed, index])`, so changing one stage never changes another's draws.

    from dataset_builder.synthetic import generate_galaxy, iter_galaxies, write_synthetic_export
    galaxy = generate_galaxy(0)            # .image (128, 128, 3) uint8, .truth, .votes, .comments, .tags
    write_synthetic_export(500, "out/")    # comments.json, tags.json, catalogue CSV, images/, truth.jsonl

Command line: `python -m dataset_builder.synthetic --n 500 --out DIR`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .galaxy_model import GalaxyParams
from .galaxy_sampler import sample_galaxy
from .render import render
from .talk import make_thread
from .votes import simulate_votes

SUBJECT_ID_BASE = 100_000_000
SEED_STRIDE = 10_000_000  # indices per seed: subject ids never collide across seeds


@dataclass
class SyntheticGalaxy:
    subject_id: str
    image: np.ndarray  # (H, W, 3) uint8, DECaLS-like RGB
    truth: dict  # decision-tree answers on the true path (question key -> answer key; odd-feature: list) + params
    votes: dict[str, float]  # `<q>_<a>_fraction` where anyone answered, `<q>_total-votes` for every question
    comments: list[dict] = field(default_factory=list)  # Panoptes Talk export records
    tags: list[dict] = field(default_factory=list)  # Panoptes tags export records
    ra: float = 0.0
    dec: float = 0.0
    params: GalaxyParams | None = field(default=None, repr=False)

    @property
    def answers(self) -> dict:
        """Only the decision-tree answers of `truth` (question key -> answer key)."""
        return dict(self.params.answers) if self.params is not None else {}

    @property
    def iauname(self) -> str:
        return iau_name(self.ra, self.dec)


def subject_id_for(index: int, seed: int) -> int:
    if not 0 <= index < SEED_STRIDE:
        raise ValueError(f"index must be in [0, {SEED_STRIDE}), got {index}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return SUBJECT_ID_BASE + seed * SEED_STRIDE + index


def iau_name(ra: float, dec: float) -> str:
    """IAU-style name as in the GZ DECaLS catalogues, e.g. J094215.93+003524.1 (truncated, not rounded)."""
    cs = int(ra / 15 * 360000 + 1e-6)  # hundredths of a second of time
    ds = int(abs(dec) * 36000 + 1e-6)  # tenths of an arcsecond
    sign = "+" if dec >= 0 else "-"
    return (f"J{cs // 360000:02d}{cs // 6000 % 60:02d}{cs // 100 % 60:02d}.{cs % 100:02d}"
            f"{sign}{ds // 36000:02d}{ds // 600 % 60:02d}{ds // 10 % 60:02d}.{ds % 10}")


def generate_galaxy(index: int, seed: int = 0, size: int = 128) -> SyntheticGalaxy:
    """The index-th galaxy of the synthetic survey `seed`, rendered at size x size px."""
    subject = subject_id_for(index, seed)
    structure, noise, volunteers, talk = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(4))
    params = sample_galaxy(structure)
    ra, dec = float(structure.uniform(0, 360)), float(np.degrees(np.arcsin(structure.uniform(-0.34, 0.57))))
    image = render(params, size, noise)
    votes = simulate_votes(params, volunteers)
    truth = params.truth()
    comments, tags = make_thread(subject, truth, ra, dec, talk)
    return SyntheticGalaxy(str(subject), image, truth, votes, comments, tags, ra, dec, params)


def iter_galaxies(n: int, seed: int = 0, size: int = 128) -> Iterator[SyntheticGalaxy]:
    for index in range(n):
        yield generate_galaxy(index, seed, size)


from .export import write_synthetic_export  # noqa: E402  (export needs generate_galaxy)

__all__ = ["SyntheticGalaxy", "generate_galaxy", "iter_galaxies", "write_synthetic_export", "iau_name"]
