"""Plausible Galaxy Zoo vote fractions for a sampled galaxy, by simulating its volunteers.

Each volunteer walks the decision tree. At every question they give the galaxy's answer with
probability 1 - a, else a confusable one (neighbours of ordinal answers are likelier), where the
ambiguity a comes from how visible the feature is (arm strength, bar contrast, inclination,
closeness to an answer threshold, image depth). Volunteers who answered differently go down other
branches, so off-path questions get votes too, exactly as in the GZ DECaLS catalogues; questions
nobody reached have no fractions and `<q>_total-votes` = 0 (NaN in the catalogue CSV).
The walk is done on counts (a multinomial per question in topological order), not per volunteer.
"""

from __future__ import annotations

import math

import numpy as np

from ..decision_tree import QUESTIONS, topological_order
from .galaxy_model import BULGE_BT, ROUND_Q, WINDING_PITCH, GalaxyParams

ORDINAL = {"spiral-winding", "spiral-arm-count", "bulge-size", "how-rounded"}
ODD_TICK = {"ring": 0.75, "dust-lane": 0.7, "lens-or-arc": 0.6, "irregular": 0.55, "overlapping": 0.6}
ODD_FALSE_TICK = 0.02  # an absent odd feature still gets the odd tick


def _near(value: float, edges: tuple[float, float], width: float) -> float:
    """1 at an answer threshold, falling to 0 at `width` away from the nearest one."""
    return max(0.0, 1.0 - min(abs(value - e) for e in edges) / width)


def ambiguity(g: GalaxyParams) -> dict[str, float]:
    """Per question, the probability that a volunteer does not give the galaxy's own answer."""
    d = g.disk
    depth = 0.1 * float(np.clip((g.sky_noise - 0.8) / 0.45, 0, 1))  # noisier image, less certain
    incl = math.degrees(d.inclination) if d is not None else 0.0
    a: dict[str, float] = {}

    if g.kind == "elliptical":
        a["smooth-or-featured"] = 0.1 + (0.2 if g.axis_ratio < ROUND_Q[0] else 0.0) + (0.15 if g.arcs else 0.0)
    elif g.kind == "lenticular":  # a smooth-looking disk: volunteers split
        a["smooth-or-featured"] = 0.55 - (0.2 if d.bar_length or d.ring_radius else 0.0)
    elif g.kind == "spiral":
        a["smooth-or-featured"] = 0.05 + 0.3 * (0.85 - d.arm_strength) / 0.3 + 0.15 * max(0.0, incl - 50) / 20
    elif g.kind == "artifact":
        a["smooth-or-featured"] = 0.15
    else:  # edge-on, irregular
        a["smooth-or-featured"] = 0.12
    if g.kind == "edge-on":
        a["disk-edge-on"] = 0.05 + 0.25 * (90 - incl) / 6
    elif d is not None:
        a["disk-edge-on"] = 0.03 + 0.35 * max(0.0, incl - 55) / 15
    else:
        a["disk-edge-on"] = 0.4 if g.axis_ratio < ROUND_Q[0] else 0.1
    if d is not None and d.bar_length > 0:
        a["bar"] = 0.12 + 0.3 * float(np.clip((1.5 - d.bar_i / d.i0) / 0.6, 0, 1)) + 0.1 * (incl > 55)
    else:
        a["bar"] = 0.12 + 0.1 * (incl > 55)
    if d is not None and d.arm_count:
        a["has-spiral-arms"] = 0.05 + 0.3 * (0.85 - d.arm_strength) / 0.3 + 0.1 * (incl > 55)
        pitch = math.degrees(d.pitch)
        a["spiral-winding"] = 0.3 + 0.25 * _near(pitch, WINDING_PITCH, 4.0)
        a["spiral-arm-count"] = {1: 0.4, 2: 0.2, 3: 0.35, 4: 0.4}.get(d.arm_count, 0.4)
    else:
        a["has-spiral-arms"] = 0.3 if g.kind == "irregular" else 0.25 if d is not None and d.ring_radius else 0.12
        a["spiral-winding"], a["spiral-arm-count"] = 0.5, 0.5
    a["bulge-size"] = 0.2 + 0.3 * _near(g.bulge_fraction, BULGE_BT, 0.06)
    a["edge-on-bulge"] = {"rounded": 0.25, "boxy": 0.45}.get(g.latent["edge-on-bulge"], 0.3)
    a["how-rounded"] = 0.12 + 0.35 * _near(g.axis_ratio, ROUND_Q, 0.08)
    a["merging"] = {"neither": 0.06, "merger": 0.25, "both": 0.3}.get(g.merger, 0.4)
    return {k: float(np.clip(v + depth, 0.0, 0.8)) for k, v in a.items()}


def answer_probabilities(question_key: str, answer: str, ambiguity_: float) -> np.ndarray:
    """(A,) probabilities of each answer for a galaxy whose own answer is `answer`."""
    keys = QUESTIONS[question_key].answer_keys
    own = keys.index(answer)
    idx = np.arange(len(keys))
    if question_key in ORDINAL:
        confusion = np.exp(-np.abs(idx - own).astype(float) * 1.2)
    else:
        confusion = np.ones(len(keys))
    if question_key == "smooth-or-featured" and answer != "artifact":
        confusion[keys.index("artifact")] = 0.15
    confusion[own] = 0.0
    p = ambiguity_ * confusion / confusion.sum()
    p[own] = 1.0 - ambiguity_
    return p


def odd_tick_probabilities(present: list[str]) -> np.ndarray:
    keys = QUESTIONS["odd-feature"].answer_keys
    real = [k for k in present if k != "none"]
    return np.array(
        [(0.15 if real else 0.85) if k == "none" else ODD_TICK.get(k, 0.5) if k in real else ODD_FALSE_TICK for k in keys]
    )


def volunteer_count(rng: np.random.Generator) -> int:
    """GZ DECaLS: ~40 classifications for most galaxies, ~5-15 for those retired early."""
    return int(rng.integers(33, 46)) if rng.random() < 0.8 else int(rng.integers(5, 16))


def simulate_votes(g: GalaxyParams, rng: np.random.Generator, volunteers: int | None = None) -> dict[str, float]:
    """`<q>_<a>_fraction` for every question someone reached, and `<q>_total-votes` for all."""
    n_root = volunteer_count(rng) if volunteers is None else volunteers
    amb = ambiguity(g)
    inflow = dict.fromkeys(QUESTIONS, 0)
    inflow["smooth-or-featured"] = n_root
    votes: dict[str, float] = {}
    for key in topological_order():
        question, n = QUESTIONS[key], inflow[key]
        votes[question.total_votes_column] = float(n)
        if n == 0:
            continue
        if question.multiple_choice:
            ticks = rng.binomial(n, odd_tick_probabilities(g.latent[key]))
            for a, count in zip(question.answers, ticks):
                votes[question.column(a.key)] = count / n
            continue
        counts = rng.multinomial(n, answer_probabilities(key, g.latent[key], amb[key]))
        for a, count in zip(question.answers, counts):
            votes[question.column(a.key)] = count / n
            target = question.next_question(a.key)
            if target is not None:
                inflow[target] += int(count)
    return votes
