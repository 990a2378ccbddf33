"""Sample one galaxy's true structure (`galaxy_model.GalaxyParams`, in size-free frame units) and its Galaxy
Zoo DECaLS answers: `sample_galaxy`.

The class mix follows GZ DECaLS (Walmsley et al. 2022): about 40% smooth, a half featured
(spirals, many barred; lenticulars; edge-on disks; a few irregulars), a few percent artifacts,
some mergers and tidal debris, and rare rings, dust lanes, lens arcs and overlaps. Features are
drawn strong enough to be visible at 64-128 px: tiny models only learn morphology when classes
look clearly different (HF-STACK-NOTES, last section).
"""

from __future__ import annotations

import math

import numpy as np

from ..decision_tree import QUESTIONS, ROOT, answer_path
from .galaxy_model import (
    BULGE_BT,
    ROUND_Q,
    WINDING_PITCH,
    Arc,
    Disk,
    GalaxyParams,
    Sersic,
    Tail,
    Trail,
    projected_axis_ratio,
    sersic_flux,
)

# (kind, probability): the GZ DECaLS-like class mix.
KIND_MIX = (
    ("elliptical", 0.37),
    ("lenticular", 0.08),
    ("spiral", 0.34),
    ("edge-on", 0.13),
    ("irregular", 0.04),
    ("artifact", 0.04),
)
MERGER_RATE = 0.13  # of ellipticals, lenticulars and spirals
MERGER_MIX = (("merger", 0.4), ("tidal-debris", 0.3), ("both", 0.3))


# --------------------------------------------------------------------------- helpers
def _choice(rng: np.random.Generator, mix):
    """One option of ((option, weight), ...), drawn with probability proportional to its weight."""
    names, weights = zip(*mix)
    return names[int(rng.choice(len(names), p=np.asarray(weights) / sum(weights)))]


def _log_uniform(rng, lo, hi) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _bulge_for_fraction(rng, disk: Disk, fraction: float, re: float, n: float, q: float, colour) -> Sersic:
    """A bulge whose flux is `fraction` of bulge + disk (face-on disk flux: bulges are not inclined away)."""
    target = fraction / (1 - fraction) * 2 * math.pi * disk.i0 * disk.scale**2
    unit = Sersic(disk.x, disk.y, re, n, q, disk.pa + rng.normal(0, 0.1), 1.0, colour)
    unit.ie = target / sersic_flux(unit)
    return unit


def _elliptical_colour(rng) -> tuple[float, float]:
    return (float(rng.normal(1.0, 0.05)), float(rng.normal(0.55, 0.04)))


def _disk_colour(rng, red: bool = False) -> tuple[float, float]:
    if red:
        return (float(rng.normal(0.85, 0.05)), float(rng.normal(0.48, 0.04)))
    return (float(rng.normal(0.62, 0.06)), float(rng.normal(0.38, 0.04)))


def _arm_colour(rng) -> tuple[float, float]:
    return (float(rng.normal(0.25, 0.06)), float(rng.normal(0.15, 0.05)))


def _centre(rng) -> tuple[float, float]:
    return float(rng.normal(0, 0.008)), float(rng.normal(0, 0.008))


# --------------------------------------------------------------------------- kinds
def _elliptical(rng, g: GalaxyParams) -> None:
    x, y = _centre(rng)
    # 40% round, 45% in between, 15% cigar-shaped, clear of the answer thresholds
    shape = _choice(rng, (((0.82, 0.98), 0.4), ((0.48, 0.78), 0.45), ((0.28, 0.43), 0.15)))
    q = float(rng.uniform(*shape))
    g.bulge = Sersic(x, y, re=float(rng.uniform(0.04, 0.08)), n=float(rng.uniform(2.5, 4.5)), q=q,
                     pa=float(rng.uniform(0, math.pi)), ie=_log_uniform(rng, 8.0, 24.0), colour=_elliptical_colour(rng))
    g.axis_ratio, g.bulge_fraction = q, 1.0
    if rng.random() < 0.03:  # a lensed background galaxy: a thin blue arc around the elliptical
        g.arcs.append(Arc(x, y, radius=float(rng.uniform(2.0, 2.8)) * g.bulge.re, width=float(rng.uniform(0.004, 0.007)),
                          angle=float(rng.uniform(0, 2 * math.pi)), span=float(rng.uniform(1.0, 2.2)),
                          peak=float(rng.uniform(4.0, 8.0)), colour=(0.1, 0.05)))
        g.odd += ("lens-or-arc",)


def _disk(rng, x, y, *, inclination, scale, i0, colour) -> Disk:
    return Disk(x, y, scale=scale, i0=i0, inclination=inclination, pa=float(rng.uniform(0, math.pi)),
                thickness=float(rng.uniform(0.09, 0.14)), colour=colour, texture_seed=int(rng.integers(2**31)))


def _random_inclination(rng, max_deg: float) -> float:
    # isotropic orientations: cos i uniform
    return float(math.acos(rng.uniform(math.cos(math.radians(max_deg)), 1.0)))


def _add_bar(rng, d: Disk) -> None:
    d.bar_length = float(rng.uniform(1.4, 2.4)) * d.scale
    d.bar_q = float(rng.uniform(0.22, 0.34))
    d.bar_angle = float(rng.uniform(0, math.pi))
    d.bar_i = float(rng.uniform(0.9, 1.5)) * d.i0


def _add_ring(rng, d: Disk, inner: float) -> None:
    d.ring_radius = max(inner * 1.15, float(rng.uniform(1.6, 2.6)) * d.scale)
    d.ring_width = float(rng.uniform(0.12, 0.2)) * d.ring_radius
    d.ring_i = float(rng.uniform(0.5, 0.9)) * d.i0


def _maybe_add_ring(rng, g: GalaxyParams, d: Disk, chance: float) -> None:
    if rng.random() < chance:
        _add_ring(rng, d, inner=d.bar_length or 1.2 * d.scale)
        g.odd += ("ring",)


def _add_face_on_bulge(rng, g: GalaxyParams, d: Disk, re: tuple[float, float], n: tuple[float, float]) -> None:
    """A nearly round bulge holding `g.bulge_fraction` of the light: re (in disk scale lengths) and the Sersic
    index n drawn from the ranges given."""
    g.bulge = _bulge_for_fraction(rng, d, g.bulge_fraction, re=float(rng.uniform(*re)) * d.scale,
                                  n=float(rng.uniform(*n)), q=float(rng.uniform(0.8, 0.95)),
                                  colour=_elliptical_colour(rng))


def _set_disk(g: GalaxyParams, d: Disk) -> None:
    g.disk, g.axis_ratio = d, projected_axis_ratio(d.inclination, d.thickness)


def _lenticular(rng, g: GalaxyParams) -> None:
    x, y = _centre(rng)
    d = _disk(rng, x, y, inclination=_random_inclination(rng, 72), scale=float(rng.uniform(0.04, 0.06)),
              i0=_log_uniform(rng, 8.0, 22.0), colour=_disk_colour(rng, red=True))
    if rng.random() < 0.35:
        _add_bar(rng, d)
    _maybe_add_ring(rng, g, d, 0.3)
    g.bulge_fraction = float(rng.uniform(0.2, 0.55))
    _add_face_on_bulge(rng, g, d, re=(0.3, 0.5), n=(2.0, 4.0))
    _set_disk(g, d)


def _spiral(rng, g: GalaxyParams) -> None:
    x, y = _centre(rng)
    d = _disk(rng, x, y, inclination=_random_inclination(rng, 70), scale=float(rng.uniform(0.045, 0.07)),
              i0=_log_uniform(rng, 10.0, 30.0), colour=_disk_colour(rng))
    d.arm_count = int(_choice(rng, ((1, 0.05), (2, 0.55), (3, 0.2), (4, 0.1), (5, 0.05), (6, 0.05))))
    d.pitch = math.radians(float(rng.uniform(8.0, 38.0)))
    d.arm_strength = float(rng.uniform(0.5, 0.8))
    d.arm_sharpness = float(rng.uniform(1.3, 2.5)) if d.arm_count <= 4 else float(rng.uniform(1.0, 1.6))
    d.arm_phase = float(rng.uniform(0, 2 * math.pi))
    d.chirality = int(rng.choice((-1, 1)))
    d.arm_colour = _arm_colour(rng)
    d.patchiness = float(rng.uniform(0.3, 0.7))
    if rng.random() < 0.38:
        _add_bar(rng, d)
        d.arm_phase = d.bar_angle  # arms leave the ends of the bar
    _maybe_add_ring(rng, g, d, 0.07)
    g.bulge_fraction = float(np.clip(rng.beta(1.6, 5.0) * 0.75, 0.0, 0.55))
    if g.bulge_fraction < 0.01:
        g.bulge_fraction = 0.0
    else:
        _add_face_on_bulge(rng, g, d, re=(0.2, 0.4), n=(1.5, 3.5))
    _set_disk(g, d)


def _edge_on(rng, g: GalaxyParams) -> None:
    x, y = _centre(rng)
    d = _disk(rng, x, y, inclination=math.radians(float(rng.uniform(84, 90))), scale=float(rng.uniform(0.06, 0.09)),
              i0=_log_uniform(rng, 5.0, 12.0), colour=_disk_colour(rng))
    d.thickness = float(rng.uniform(0.08, 0.13))
    bulge_kind = _choice(rng, (("rounded", 0.55), ("boxy", 0.12), ("none", 0.33)))
    if bulge_kind != "none":
        g.bulge_fraction = float(rng.uniform(0.12, 0.35))
        g.bulge = _bulge_for_fraction(rng, d, g.bulge_fraction, re=float(rng.uniform(0.28, 0.45)) * d.scale,
                                      n=float(rng.uniform(1.5, 3.0)),
                                      q=float(rng.uniform(0.7, 0.9) if bulge_kind == "rounded" else rng.uniform(0.55, 0.7)),
                                      colour=_elliptical_colour(rng))
        g.bulge.pa = d.pa
        if bulge_kind == "boxy":
            g.bulge.boxiness = float(rng.uniform(3.5, 5.0))
    if rng.random() < 0.45:
        d.dust_tau = float(rng.uniform(2.0, 3.5))
        d.dust_width = float(rng.uniform(0.45, 0.7)) * d.thickness * d.scale
        g.odd += ("dust-lane",)
    _set_disk(g, d)
    g.latent["edge-on-bulge"] = bulge_kind


def _irregular(rng, g: GalaxyParams) -> None:
    x, y = _centre(rng)
    d = _disk(rng, x, y, inclination=_random_inclination(rng, 60), scale=float(rng.uniform(0.04, 0.065)),
              i0=_log_uniform(rng, 3.0, 8.0), colour=_disk_colour(rng))
    clumps = []
    for _ in range(int(rng.integers(4, 10))):
        r, phi = float(rng.uniform(0, 1.8)) * d.scale, float(rng.uniform(0, 2 * math.pi))
        clumps.append((x + r * math.cos(phi), y + r * math.sin(phi), float(rng.uniform(0.012, 0.028)),
                       float(rng.uniform(1.2, 4.5))))
    d.clump_field = tuple(clumps)
    d.patchiness = float(rng.uniform(0.8, 1.2))
    d.arm_colour = _arm_colour(rng)
    _set_disk(g, d)
    g.odd += ("irregular",)


def _artifact(rng, g: GalaxyParams) -> None:
    g.artifact = _choice(rng, (("bright-star", 0.6), ("satellite-trail", 0.4)))
    if g.artifact == "bright-star":
        g.stars.add(float(rng.normal(0, 0.05)), float(rng.normal(0, 0.05)), _log_uniform(rng, 3e4, 2e5),
                    float(rng.uniform(0.2, 1.0)))
    else:
        bands = [(1.0, 0.05, 0.05), (0.05, 1.0, 0.05), (0.05, 0.05, 1.0), (1.0, 1.0, 0.1)][int(rng.integers(4))]
        g.trail = Trail(angle=float(rng.uniform(0, math.pi)), offset=float(rng.normal(0, 0.06)),
                        width=float(rng.uniform(0.002, 0.005)), peak=float(rng.uniform(6, 30)), bands=bands)
    if rng.random() < 0.6:  # a faint, small galaxy that nobody would classify
        x, y = _centre(rng)
        g.bulge = Sersic(x + float(rng.normal(0, 0.08)), y + float(rng.normal(0, 0.08)), re=float(rng.uniform(0.008, 0.02)),
                         n=1.5, q=float(rng.uniform(0.5, 1.0)), pa=float(rng.uniform(0, math.pi)),
                         ie=float(rng.uniform(0.3, 1.0)), colour=_elliptical_colour(rng))
    g.axis_ratio = 1.0


# --------------------------------------------------------------------------- environment
def _main_radius(g: GalaxyParams) -> float:
    """Rough visible radius of the central galaxy, frame units."""
    r = 0.05
    if g.disk is not None:
        r = max(r, 3.6 * g.disk.scale)
    if g.bulge is not None:
        r = max(r, 3.0 * g.bulge.re)
    return r


def _add_interaction(rng, g: GalaxyParams) -> None:
    g.merger = _choice(rng, MERGER_MIX)
    main = g.disk or g.bulge
    if g.merger in ("merger", "both"):
        sep, phi = float(rng.uniform(0.13, 0.24)), float(rng.uniform(0, 2 * math.pi))
        cx, cy = main.x + sep * math.cos(phi), main.y + sep * math.sin(phi)
        if rng.random() < 0.5:
            comp = Sersic(cx, cy, re=float(rng.uniform(0.02, 0.045)), n=float(rng.uniform(2, 4)),
                          q=float(rng.uniform(0.5, 0.95)), pa=float(rng.uniform(0, math.pi)),
                          ie=_log_uniform(rng, 4.0, 12.0), colour=_elliptical_colour(rng))
        else:
            comp = _disk(rng, cx, cy, inclination=_random_inclination(rng, 70), scale=float(rng.uniform(0.025, 0.045)),
                         i0=_log_uniform(rng, 5.0, 14.0), colour=_disk_colour(rng))
        g.companions.append(comp)
        # a faint common envelope joins the pair (the bridge of light that says "touching")
        g.companions.append(Sersic((main.x + cx) / 2, (main.y + cy) / 2, re=sep * 0.55, n=1.0, q=0.45, pa=phi,
                                   ie=float(rng.uniform(0.8, 1.6)), colour=(0.6, 0.35)))
    if g.merger in ("tidal-debris", "both"):
        base_angle = float(rng.uniform(0, 2 * math.pi))
        chirality = int(rng.choice((-1, 1)))
        for k in range(int(rng.integers(1, 3))):
            g.tails.append(Tail(main.x, main.y, start_radius=0.7 * _main_radius(g), length=float(rng.uniform(0.16, 0.3)),
                                pitch=math.radians(float(rng.uniform(18, 32))), angle=base_angle + k * math.pi,
                                chirality=chirality, width=float(rng.uniform(0.25, 0.45)),
                                peak=float(rng.uniform(1.0, 2.5)), colour=(0.55, 0.3)))


def _add_overlap(rng, g: GalaxyParams) -> None:
    """A star or an unrelated galaxy seen over the outskirts: the "overlapping" odd feature."""
    main = g.disk or g.bulge
    r, phi = float(rng.uniform(0.5, 0.9)) * _main_radius(g), float(rng.uniform(0, 2 * math.pi))
    x, y = main.x + r * math.cos(phi), main.y + r * math.sin(phi)
    if rng.random() < 0.5:
        g.stars.add(x, y, _log_uniform(rng, 400, 3000), float(rng.uniform(0.3, 1.2)))
    else:
        g.companions.append(Sersic(x, y, re=float(rng.uniform(0.012, 0.025)), n=float(rng.uniform(1, 3)),
                                   q=float(rng.uniform(0.4, 0.9)), pa=float(rng.uniform(0, math.pi)),
                                   ie=float(rng.uniform(4.0, 10.0)), colour=(float(rng.uniform(1.0, 1.5)), 0.6)))
    g.odd += ("overlapping",)


def _add_field(rng, g: GalaxyParams) -> None:
    """Foreground stars and small background galaxies, kept off the central galaxy."""
    keep_out = 1.15 * _main_radius(g) if g.artifact is None else 0.06
    centre = g.disk or g.bulge

    def outside(x, y):
        return centre is None or math.hypot(x - centre.x, y - centre.y) > keep_out

    for _ in range(int(rng.poisson(7))):
        x, y = float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5))
        if outside(x, y):
            # number counts N(>F) ~ F^-0.7: most stars faint, a few bright
            g.stars.add(x, y, float(min(6 * rng.pareto(0.7) + 6, 5000)), float(rng.uniform(0.1, 1.4)))
    for _ in range(int(rng.poisson(6))):
        x, y = float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5))
        if outside(x, y):
            g.background.append(Sersic(x, y, re=float(rng.uniform(0.003, 0.011)), n=float(rng.uniform(1, 3)),
                                       q=float(rng.uniform(0.3, 1.0)), pa=float(rng.uniform(0, math.pi)),
                                       ie=_log_uniform(rng, 1.0, 8.0),
                                       colour=(float(rng.uniform(0.5, 1.7)), float(rng.uniform(0.3, 0.9)))))


# --------------------------------------------------------------------------- answers
def _bin(value: float, edges: tuple[float, float], keys: tuple[str, str, str]) -> str:
    return keys[0] if value < edges[0] else keys[1] if value < edges[1] else keys[2]


def _arm_count_key(m: int) -> str:
    return str(m) if m <= 4 else "more-than-4"


def _answers(g: GalaxyParams) -> None:
    """Fill g.answers (the true path) and g.latent (an answer for every question)."""
    d = g.disk
    latent = {
        "smooth-or-featured": {"elliptical": "smooth", "artifact": "artifact"}.get(g.kind, "featured-or-disk"),
        "disk-edge-on": "yes" if g.kind == "edge-on" or (g.kind == "elliptical" and g.axis_ratio < ROUND_Q[0]) else "no",
        "bar": "yes" if d is not None and d.bar_length > 0 else "no",
        "has-spiral-arms": "yes" if d is not None and d.arm_count > 0 else "no",
        "spiral-winding": _bin(math.degrees(d.pitch), WINDING_PITCH, ("tight", "medium", "loose"))
        if d is not None and d.arm_count else "medium",
        "spiral-arm-count": _arm_count_key(d.arm_count) if d is not None and d.arm_count else "2",
        "bulge-size": _bin(g.bulge_fraction, BULGE_BT, ("no", "obvious", "dominant")),
        "edge-on-bulge": g.latent.get("edge-on-bulge", "rounded" if g.bulge_fraction > BULGE_BT[0] else "none"),
        "how-rounded": _bin(g.axis_ratio, ROUND_Q, ("cigar-shaped", "in-between", "completely")),
        "merging": g.merger,
        "odd-feature": list(g.odd) or ["none"],
    }
    g.latent = latent
    g.answers = {key: latent[key] for key, _ in _walk(latent)}


def _walk(latent: dict) -> list[tuple[str, object]]:
    """The path a volunteer who gives every latent answer would take through the tree."""
    path, key = [], ROOT
    while key is not None:
        path.append((key, latent[key]))
        q = QUESTIONS[key]
        key = q.leads_to if q.multiple_choice else q.next_question(latent[key])
    return path


# --------------------------------------------------------------------------- entry point
_KIND_BUILDERS = {
    "elliptical": _elliptical,
    "lenticular": _lenticular,
    "spiral": _spiral,
    "edge-on": _edge_on,
    "irregular": _irregular,
    "artifact": _artifact,
}


def sample_galaxy(rng: np.random.Generator, kind: str | None = None) -> GalaxyParams:
    """Draw one galaxy (its kind from KIND_MIX unless given) and its decision-tree answers."""
    kind = kind or _choice(rng, KIND_MIX)
    if kind not in _KIND_BUILDERS:
        raise ValueError(f"unknown galaxy kind {kind!r}; kinds: {', '.join(_KIND_BUILDERS)}")
    g = GalaxyParams(kind=kind, sky_noise=float(rng.uniform(0.8, 1.25)), psf_fwhm=float(rng.uniform(0.008, 0.013)))
    _KIND_BUILDERS[kind](rng, g)
    if kind in ("elliptical", "lenticular", "spiral") and rng.random() < MERGER_RATE:
        _add_interaction(rng, g)
    elif kind != "artifact" and rng.random() < 0.04:
        _add_overlap(rng, g)
    _add_field(rng, g)
    _answers(g)
    answer_path(g.answers)  # the sampler must only ever produce valid paths
    return g
