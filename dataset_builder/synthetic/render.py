"""Render a sampled galaxy to a DECaLS-like RGB cutout (numpy only, vectorised).

Pipeline, per image (planes are g, r, z in the units of the DECaLS stretch):
  extended light (bulge, disk, arms, bar, ring, dust, companions, tails, arcs)  -> (3, S, S)
  -> Gaussian PSF (separable, as two small matrix products: no FFT wrap-around)
  -> point sources (Moffat stars, analytic, on small patches) and satellite trails
  -> sky noise (Gaussian) + source noise (Poisson-like, variance grows with flux)
  -> asinh stretch + desaturation as for the Galaxy Zoo DECaLS JPEGs -> (S, S, 3) uint8.

Brightness units: a plane holds flux / band scale, the argument of the stretch's asinh, per
reference pixel of a 424 px Galaxy Zoo cutout. Rendering at S px averages reference pixels, so
the sky noise per pixel shrinks as S/424, exactly as for a real cutout resized to S px.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .galaxy_model import Arc, Disk, GalaxyParams, PointSources, Sersic, Tail, Trail, projected_axis_ratio, sersic_b

REFERENCE_SIZE = 424  # Galaxy Zoo DECaLS cutouts are 424 x 424 px

# The Galaxy Zoo DECaLS RGB mapping: after Dustin Lang's `dr2_style_rgb` as used by zooniverse/decals
# (scales and limits from the GZ DECaLS downloader): plane = band / scale, asinh, map [mn, mx] to [0, 1],
# desaturate. RGB planes are z, r, g.
BAND_SCALE = np.array([0.008, 0.014, 0.019], dtype=np.float32)  # g, r, z (nanomaggies per stretch unit)
STRETCH_MIN, STRETCH_MAX = -0.5, 300.0
# Sky noise per band (stretch units, 424 px), tuned so that the synthetic sky matches the 72 GZ
# DECaLS help examples at 64, 128 and 424 px: per-channel sky std about 4, 6 and 10 grey levels
# (robust sigma ~6 at 128 px; checked by test_image_statistics_match_real_decals_cutouts).
SKY_SIGMA = np.array([0.55, 0.55, 0.75], dtype=np.float32)
# Noise in the survey JPEGs is correlated over ~1 px, so it averages down more slowly than white
# noise when a cutout is resized: per-pixel sigma at S px = SKY_SIGMA * (S / 424) ** NOISE_EXPONENT.
NOISE_EXPONENT = 0.83
CHROMA_SIGMA = 0.011  # output units (0-1) at 424 px: the JPEGs' colour speckle, see colour_speckle
CHROMA_EXPONENT = 0.5  # measured: the speckle fades more slowly than the noise when a cutout shrinks
# Residual sky level per band (stretch units) that gives the real cutouts' slightly warm sky.
SKY_PEDESTAL = np.array([0.03, 0.0, 0.06], dtype=np.float32)
SOURCE_NOISE_FLUX = 4.0  # stretch units at which source (Poisson) variance equals the sky's
MOFFAT_BETA = 2.5


# --------------------------------------------------------------------------- colours, grids
def band_weights(colour: tuple[float, float]) -> np.ndarray:
    """(g, r, z) plane values per unit of r-band plane value, for colours (g-r, r-z) in magnitudes."""
    gr, rz = colour
    r_scale = BAND_SCALE[1]
    return np.array(
        [r_scale / BAND_SCALE[0] * 10 ** (-0.4 * gr), 1.0, r_scale / BAND_SCALE[2] * 10 ** (0.4 * rz)], dtype=np.float32
    )


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame coordinates of pixel centres: x (1, S) to the right, y (S, 1) down, in [-0.5, 0.5]."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size - 0.5).astype(np.float32)
    return c[None, :], c[:, None]


def _patch(size: int, x: float, y: float, radius: float):
    """Pixel slices and frame coordinates of the square patch of half-width `radius` around (x, y)."""
    lo_x = max(int(math.floor((x - radius + 0.5) * size)), 0)
    hi_x = min(int(math.ceil((x + radius + 0.5) * size)), size)
    lo_y = max(int(math.floor((y - radius + 0.5) * size)), 0)
    hi_y = min(int(math.ceil((y + radius + 0.5) * size)), size)
    if lo_x >= hi_x or lo_y >= hi_y:
        return None
    gx, gy = _grid(size)
    return (slice(lo_y, hi_y), slice(lo_x, hi_x)), gx[:, lo_x:hi_x], gy[lo_y:hi_y, :]


def _rotate(dx, dy, angle: float):
    c, s = math.cos(angle), math.sin(angle)
    return dx * c + dy * s, -dx * s + dy * c


def _add(flux: np.ndarray, image: np.ndarray, colour, where=None) -> None:
    w = band_weights(colour)
    if where is None:
        flux += w[:, None, None] * image
    else:
        flux[(slice(None), *where)] += w[:, None, None] * image


# --------------------------------------------------------------------------- profiles
def sersic_image(s: Sersic, x, y, softening: float) -> np.ndarray:
    """Sersic surface brightness at frame coordinates (x, y); `softening` keeps cusps finite."""
    xr, yr = _rotate(x - s.x, y - s.y, s.pa)
    if s.boxiness == 2.0:
        r = np.sqrt(xr * xr + (yr / s.q) ** 2 + softening**2)
    else:
        c = s.boxiness
        r = (np.abs(xr) ** c + np.abs(yr / s.q) ** c) ** (1 / c) + softening
    b = sersic_b(s.n)
    return (s.ie * np.exp(-b * ((r / s.re) ** (1 / s.n) - 1))).astype(np.float32)


def smooth_field(seed: int, cells: int, size: int) -> np.ndarray:
    """(S, S) Gaussian random field, unit variance, correlated over ~1/cells of the frame.

    A cells x cells grid of normal deviates interpolated with Gaussian weights as U @ f @ U.T."""
    coarse = np.random.default_rng(seed).standard_normal((cells, cells)).astype(np.float32)
    nodes = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    pixels = (np.arange(size, dtype=np.float32) + 0.5) / size
    u = np.exp(-0.5 * ((pixels[:, None] - nodes[None, :]) * cells) ** 2)
    u /= np.sqrt((u * u).sum(axis=1, keepdims=True))  # unit variance per pixel
    return u @ coarse @ u.T


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def add_disk(flux: np.ndarray, d: Disk, x, y, softening: float) -> None:
    """Exponential disk; its arms, bar, ring and clumps are drawn in the disk plane, then projected."""
    xr, yr = _rotate(x - d.x, y - d.y, d.pa)
    q_obs = projected_axis_ratio(d.inclination, d.thickness)
    # Seen inclined, a transparent disk's surface brightness rises (longer path); dust and
    # thickness limit that, hence the square root.
    brightening = 1.0 / math.sqrt(q_obs)
    r_ell = np.sqrt(xr * xr + (yr / q_obs) ** 2 + softening**2)
    base = (d.i0 * brightening) * np.exp(-r_ell / d.scale)
    # deprojected disk-plane coordinates (thin disk)
    cos_i = max(math.cos(d.inclination), 0.15)
    X, Y = xr, yr / cos_i
    R = np.sqrt(X * X + Y * Y) + softening
    theta = np.arctan2(Y, X)

    arm_part = None
    if d.arm_count > 0 and d.arm_strength > 0:
        r0 = max(d.bar_length, 0.5 * d.scale)
        psi = d.arm_count * (theta - d.chirality * np.log(R / r0) / math.tan(d.pitch) - d.arm_phase)
        k = d.arm_sharpness
        mean = math.gamma(k + 0.5) / (math.sqrt(math.pi) * math.gamma(k + 1))  # mean of cos^2k(psi/2)
        pattern = (0.5 * (1 + np.cos(psi))) ** k / mean
        on = d.arm_strength * _smoothstep((R - 0.6 * r0) / (0.6 * r0))
        arm_part = base * on * pattern
        base = base * (1 - on)
    if d.patchiness > 0:
        size = base.shape[-1]
        # arms broken into segments (coarse field) and dotted with star-forming knots (fine field)
        segments = np.exp(d.patchiness * smooth_field(d.texture_seed, 7, size) - 0.5 * d.patchiness**2)
        knots = 2.5 * d.patchiness * np.maximum(smooth_field(d.texture_seed + 1, 22, size) - 1.0, 0)
        if arm_part is not None:
            arm_part = arm_part * (segments + knots)
        else:  # irregulars: lumpy light everywhere
            base = base * segments
            arm_part = base * knots
    if d.clump_field:  # irregulars: bright star-forming clumps
        clumps = np.zeros_like(base)
        for cx, cy, sigma, peak in d.clump_field:
            clumps += peak * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma))
        arm_part = clumps if arm_part is None else arm_part + clumps

    _add(flux, base.astype(np.float32), d.colour)
    if arm_part is not None:
        _add(flux, arm_part.astype(np.float32), d.arm_colour)
    if d.bar_length > 0:
        bx, by = _rotate(X, Y, d.bar_angle)
        rb = np.sqrt((bx / d.bar_length) ** 2 + (by / (d.bar_length * d.bar_q)) ** 2)
        _add(flux, (d.bar_i * brightening * np.exp(-(rb**3))).astype(np.float32), (0.65, 0.38))
    if d.ring_radius > 0:
        ring = d.ring_i * brightening * np.exp(-0.5 * ((R - d.ring_radius) / d.ring_width) ** 2)
        _add(flux, ring.astype(np.float32), d.arm_colour)


def dust_attenuation(d: Disk, x, y) -> np.ndarray:
    """(3, S, S) transmission of a mid-plane dust lane: deeper in g than in z (reddening)."""
    xr, yr = _rotate(x - d.x, y - d.y, d.pa)
    tau = d.dust_tau * np.exp(-0.5 * (yr / d.dust_width) ** 2) * np.exp(-np.abs(xr) / (3 * d.scale))
    band_tau = np.array([1.0, 0.72, 0.45], dtype=np.float32)[:, None, None]
    return np.exp(-band_tau * tau[None]).astype(np.float32)


def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


def tail_image(t: Tail, x, y) -> np.ndarray:
    dx, dy = x - t.x, y - t.y
    R = np.sqrt(dx * dx + dy * dy) + 1e-6
    theta = np.arctan2(dy, dx)
    expected = t.angle + t.chirality * np.log(np.maximum(R, t.start_radius) / t.start_radius) / math.tan(t.pitch)
    along = (R - t.start_radius) / t.length
    envelope = _smoothstep(along / 0.15) * np.clip(1 - along, 0, 1)
    return (t.peak * envelope * np.exp(-0.5 * (_wrap(theta - expected) / t.width) ** 2)).astype(np.float32)


def arc_image(a: Arc, x, y) -> np.ndarray:
    dx, dy = x - a.x, y - a.y
    R = np.sqrt(dx * dx + dy * dy)
    along = _wrap(np.arctan2(dy, dx) - a.angle) / (a.span / 2)
    return (a.peak * np.exp(-0.5 * ((R - a.radius) / a.width) ** 2) * np.exp(-(along**4))).astype(np.float32)


def trail_image(t: Trail, x, y) -> np.ndarray:
    distance = x * math.cos(t.angle) + y * math.sin(t.angle) - t.offset
    return (t.peak * np.exp(-0.5 * (distance / t.width) ** 2)).astype(np.float32)


# --------------------------------------------------------------------------- PSF, stars, noise
def gaussian_blur(flux: np.ndarray, sigma_px: float) -> np.ndarray:
    """Separable Gaussian blur of (3, S, S) planes as G @ plane @ G.T (edges not wrapped)."""
    size = flux.shape[-1]
    if sigma_px < 0.2:
        return flux
    i = np.arange(size, dtype=np.float32)
    g = np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma_px) ** 2).astype(np.float32)
    g /= g.sum(axis=1, keepdims=True)
    return np.matmul(np.matmul(g, flux), g.T)


def add_stars(flux: np.ndarray, stars: PointSources, fwhm: float) -> None:
    """Moffat stars with flux conserved across resolutions; spikes on the brightest."""
    size = flux.shape[-1]
    scale = REFERENCE_SIZE / size  # reference pixels per pixel
    # a pixel integrates the PSF: widen it by the pixel response (box of 1 px ~ Gaussian FWHM 0.68 px)
    fwhm_ref = fwhm * REFERENCE_SIZE
    fwhm_px = math.hypot(fwhm * size, 0.68)
    alpha_ref = fwhm_ref / (2 * math.sqrt(2 ** (1 / MOFFAT_BETA) - 1))
    alpha_px = fwhm_px / (2 * math.sqrt(2 ** (1 / MOFFAT_BETA) - 1))
    for x, y, peak_ref, gr in zip(stars.x, stars.y, stars.flux, stars.gr):
        total = peak_ref * math.pi * alpha_ref**2 / (MOFFAT_BETA - 1)  # in reference-pixel units
        peak = total / (math.pi * (alpha_px * scale) ** 2 / (MOFFAT_BETA - 1))
        # patch out to where the profile falls below ~0.02 stretch units
        radius_px = alpha_px * math.sqrt(max((peak / 0.02) ** (1 / MOFFAT_BETA) - 1, 1.0))
        bright = peak_ref > 2e4
        patch = _patch(size, x, y, 1.5 if bright else min(radius_px / size, 0.6) + 1.5 / size)
        if patch is None:
            continue
        where, px, py = patch
        dx, dy = (px - x) * size, (py - y) * size  # pixels
        r2 = dx * dx + dy * dy
        image = peak * (1 + r2 / alpha_px**2) ** (-MOFFAT_BETA)
        if bright:  # diffraction spikes and a scattered-light halo on very bright stars
            width = 0.35 * fwhm_px
            spikes = np.exp(-0.5 * (dy / width) ** 2) * np.exp(-np.abs(dx) / (0.05 * size)) + np.exp(
                -0.5 * (dx / width) ** 2
            ) * np.exp(-np.abs(dy) / (0.05 * size))
            image = image + 2e-3 * peak * spikes + 3e-5 * peak * np.exp(-np.sqrt(r2) / (0.08 * size))
        _add(flux, image.astype(np.float32), (gr, 0.6 * gr - 0.1), where)


def add_noise(flux: np.ndarray, sky_noise: float, rng: np.random.Generator) -> np.ndarray:
    size = flux.shape[-1]
    sigma = (SKY_SIGMA * (sky_noise * (size / REFERENCE_SIZE) ** NOISE_EXPONENT))[:, None, None]
    std = sigma * np.sqrt(1 + np.maximum(flux, 0) / SOURCE_NOISE_FLUX)
    return flux + SKY_PEDESTAL[:, None, None] + std * rng.standard_normal(flux.shape, dtype=np.float32)


def decals_rgb(flux: np.ndarray, speckle: np.ndarray | None = None) -> np.ndarray:
    """(3, S, S) g, r, z planes -> (S, S, 3) uint8 RGB, as the GZ DECaLS JPEGs were made.

    `speckle` (3, S, S), optional: colour noise added after the desaturation (see add_noise)."""
    lo, hi = math.asinh(STRETCH_MIN), math.asinh(STRETCH_MAX)
    rgb = (np.arcsinh(flux[::-1]) - lo) / (hi - lo)  # planes now R=z, G=r, B=g
    # desaturate pixels dominated by one band, so that sky noise is grey, not confetti
    mean = rgb.mean(axis=0)
    mean = np.where(mean == 0, 1.0, mean)
    weight = 1 - np.minimum((rgb / mean / 2.5).max(axis=0), 1.0)
    weight = np.sin(weight * (np.pi / 2))
    rgb = rgb * weight + mean * (1 - weight) + mean * (1 - weight) ** 2 * rgb
    if speckle is not None:
        rgb = rgb + speckle
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0).copy()


def colour_speckle(size: int, sky_noise: float, rng: np.random.Generator) -> np.ndarray:
    """(3, S, S) independent per-channel noise in output units.

    The survey JPEGs keep faint colour speckle in the sky (their per-channel noise decorrelates by
    ~1.2, 2 and 2.5 grey levels at 64, 128 and 424 px, measured on the GZ DECaLS examples) that the desaturation of white
    band noise removes; this puts it back."""
    sigma = CHROMA_SIGMA * sky_noise * (size / REFERENCE_SIZE) ** CHROMA_EXPONENT
    return (sigma * rng.standard_normal((3, size, size), dtype=np.float32)).astype(np.float32)


# --------------------------------------------------------------------------- entry points
def render_flux(g: GalaxyParams, size: int) -> np.ndarray:
    """Noise-free (3, S, S) g, r, z planes after the PSF."""
    x, y = _grid(size)
    softening = 0.5 / size
    flux = np.zeros((3, size, size), dtype=np.float32)
    main = np.zeros_like(flux)
    if g.disk is not None:
        add_disk(main, g.disk, x, y, softening)
    if g.bulge is not None:
        _add(main, sersic_image(g.bulge, x, y, softening), g.bulge.colour)
    if g.disk is not None and g.disk.dust_tau > 0:
        main *= dust_attenuation(g.disk, x, y)
    flux += main
    for companion in g.companions:
        if isinstance(companion, Disk):
            add_disk(flux, companion, x, y, softening)
        else:
            _add(flux, sersic_image(companion, x, y, softening), companion.colour)
    for tail in g.tails:
        _add(flux, tail_image(tail, x, y), tail.colour)
    for arc in g.arcs:
        _add(flux, arc_image(arc, x, y), arc.colour)
    for s in g.background:
        patch = _patch(size, s.x, s.y, 6 * s.re + 2 / size)
        if patch is not None:
            where, px, py = patch
            _add(flux, sersic_image(s, px, py, softening), s.colour, where)
    flux = gaussian_blur(flux, g.psf_fwhm * size / 2.355)
    add_stars(flux, g.stars, g.psf_fwhm)
    if g.trail is not None:
        flux += np.asarray(g.trail.bands, dtype=np.float32)[:, None, None] * trail_image(g.trail, x, y)
    return flux


def render(g: GalaxyParams, size: int, rng: np.random.Generator) -> np.ndarray:
    """The (S, S, 3) uint8 cutout of a sampled galaxy; `rng` draws only the noise."""
    if size < 16:
        raise ValueError(f"image size must be at least 16 px, got {size}")
    flux = add_noise(render_flux(g, size), g.sky_noise, rng)
    return decals_rgb(flux, colour_speckle(size, g.sky_noise, rng))
