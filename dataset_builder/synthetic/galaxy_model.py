"""What a synthetic galaxy is made of: its light components (`Sersic`, `Disk`, `Tail`, `Arc`, stars, a
trail), `GalaxyParams` (the components plus the true decision-tree answers), the answer thresholds, and
the photometric relations the sampler and the renderer share.

Everything here is size-free: lengths are fractions of the cutout's width (the frame is the square
[-0.5, 0.5]^2, x to the right, y down) and brightnesses are r-band surface brightnesses in the
units of the DECaLS RGB stretch (see render.py: 1 unit is about two sky-noise sigmas of a
424 px Galaxy Zoo cutout). So the same galaxy renders alike at 64, 128 or 424 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Answer thresholds; the vote model (votes.py) splits votes more near them.
ROUND_Q = (0.45, 0.8)  # projected axis ratio: cigar-shaped < 0.45 <= in-between < 0.8 <= completely
WINDING_PITCH = (14.0, 25.0)  # pitch angle, degrees: tight < 14 <= medium < 25 <= loose
BULGE_BT = (0.06, 0.32)  # bulge-to-total flux: no < 0.06 <= obvious < 0.32 <= dominant
EDGE_ON_INCLINATION = 80.0  # degrees


@dataclass
class Sersic:
    """A Sersic (or exponential, n=1) ellipse: bulges, ellipticals, bars, companions, clumps."""

    x: float
    y: float
    re: float  # effective (half-light) radius along the major axis, frame units
    n: float  # Sersic index
    q: float  # axis ratio b/a
    pa: float  # position angle of the major axis, radians from +x
    ie: float  # surface brightness at re
    colour: tuple[float, float]  # (g-r, r-z) in magnitudes
    boxiness: float = 2.0  # generalised-ellipse exponent: 2 elliptical, >2 boxy


@dataclass
class Disk:
    """An exponential disk seen at an inclination, with optional arms, bar and ring in its plane."""

    x: float
    y: float
    scale: float  # exponential scale length, frame units
    i0: float  # central surface brightness (face-on)
    inclination: float  # radians, 0 face-on
    pa: float  # position angle of the major axis, radians
    thickness: float  # intrinsic axis ratio q0 of the disk seen exactly edge-on
    colour: tuple[float, float]
    arm_count: int = 0
    pitch: float = 0.0  # radians
    arm_strength: float = 0.0  # 0..1: fraction of disk light moved into the arms
    arm_sharpness: float = 3.0  # exponent of the arm profile: larger, thinner arms
    arm_phase: float = 0.0
    chirality: int = 1  # +1 / -1: S or Z winding
    arm_colour: tuple[float, float] = (0.3, 0.2)
    bar_length: float = 0.0  # semi-major axis, frame units; 0: no bar
    bar_q: float = 0.3
    bar_angle: float = 0.0  # in the disk plane, radians
    bar_i: float = 0.0  # bar peak surface brightness
    ring_radius: float = 0.0  # frame units; 0: no ring
    ring_width: float = 0.0
    ring_i: float = 0.0
    dust_tau: float = 0.0  # g-band optical depth of a mid-plane dust lane (edge-on disks)
    dust_width: float = 0.0  # frame units, perpendicular to the disk
    clump_field: tuple[tuple[float, float, float, float], ...] = ()  # irregulars: (x, y, sigma, peak)
    texture_seed: int = 0  # seeds the patchiness of arms and knots (render.py), so params fix the image
    patchiness: float = 0.0  # 0 smooth; ~0.5 arms broken into segments and knots; ~1 irregular


@dataclass
class Tail:
    """A tidal tail: one wide, loosely wound arm of faint light leaving a galaxy."""

    x: float
    y: float
    start_radius: float
    length: float  # radial extent, frame units
    pitch: float  # radians
    angle: float  # where the tail leaves the galaxy, radians
    chirality: int
    width: float  # angular half-width, radians
    peak: float
    colour: tuple[float, float]


@dataclass
class Arc:
    """A lensed arc around an elliptical."""

    x: float
    y: float
    radius: float
    width: float
    angle: float
    span: float  # radians
    peak: float
    colour: tuple[float, float]


@dataclass
class PointSources:
    """Foreground stars: positions, peak surface brightness before the PSF, colour g-r."""

    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    flux: list[float] = field(default_factory=list)
    gr: list[float] = field(default_factory=list)

    def add(self, x: float, y: float, flux: float, gr: float) -> None:
        self.x.append(x)
        self.y.append(y)
        self.flux.append(flux)
        self.gr.append(gr)


@dataclass
class Trail:
    """A satellite or aeroplane trail: a straight line, bright in one or two bands."""

    angle: float
    offset: float  # distance of the line from the frame centre
    width: float
    peak: float
    bands: tuple[float, float, float]  # relative brightness in g, r, z


@dataclass
class GalaxyParams:
    kind: str
    disk: Disk | None = None
    bulge: Sersic | None = None  # bulge, or the whole galaxy for ellipticals
    companions: list[Sersic | Disk] = field(default_factory=list)
    tails: list[Tail] = field(default_factory=list)
    arcs: list[Arc] = field(default_factory=list)
    stars: PointSources = field(default_factory=PointSources)
    background: list[Sersic] = field(default_factory=list)  # small field galaxies
    trail: Trail | None = None
    sky_noise: float = 1.0  # depth: multiplies the reference sky noise
    psf_fwhm: float = 0.010  # frame units (about 4 px of a 424 px cutout)
    merger: str = "neither"  # merger | tidal-debris | both | neither
    odd: tuple[str, ...] = ()  # odd-feature options present
    artifact: str | None = None  # bright-star | satellite-trail
    bulge_fraction: float = 0.0
    axis_ratio: float = 1.0  # projected axis ratio of the main body
    answers: dict = field(default_factory=dict)  # the true path through the decision tree
    latent: dict = field(default_factory=dict)  # an answer for every question (off-path: what it resembles)

    def truth(self) -> dict:
        """Decision-tree answers on the true path plus the parameters that decide them."""
        disk = self.disk
        out: dict = dict(self.answers)
        out.update(
            kind=self.kind,
            arm_count=disk.arm_count if disk else 0,
            pitch_deg=round(math.degrees(disk.pitch), 2) if disk and disk.arm_count else None,
            inclination_deg=round(math.degrees(disk.inclination), 2) if disk else None,
            has_bar=bool(disk and disk.bar_length > 0),
            has_ring=bool(disk and disk.ring_radius > 0),
            has_dust_lane=bool(disk and disk.dust_tau > 0),
            bulge_fraction=round(self.bulge_fraction, 4),
            axis_ratio=round(self.axis_ratio, 4),
            merger=self.merger,
            companions=len(self.companions),
            tidal_tails=len(self.tails),
            artifact=self.artifact,
            stars=len(self.stars.x),
        )
        return out


def projected_axis_ratio(inclination: float, thickness: float) -> float:
    """Hubble (1926): q^2 = cos^2 i (1 - q0^2) + q0^2 for an oblate disk of intrinsic ratio q0."""
    return math.sqrt(math.cos(inclination) ** 2 * (1 - thickness**2) + thickness**2)


def sersic_b(n: float) -> float:
    """b_n with half the light inside re (Ciotti & Bertin 1999 expansion)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n)


def sersic_flux(s: Sersic) -> float:
    b = sersic_b(s.n)
    return 2 * math.pi * s.n * s.ie * s.re**2 * s.q * math.exp(b) * b ** (-2 * s.n) * math.gamma(2 * s.n)
