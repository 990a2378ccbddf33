"""The synthetic Galaxy Zoo: determinism, valid truths, consistent votes, images that show the
answers, noisy Talk threads, the export layout, and realism against real GZ DECaLS cutouts."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_builder.decision_tree import QUESTIONS, answer_path, majority_answer, reachable_questions
from dataset_builder.synthetic import generate_galaxy, iau_name, iter_galaxies, write_synthetic_export
from dataset_builder.synthetic.compare import image_stats, jpeg_roundtrip, load_real
from dataset_builder.synthetic.galaxy_sampler import sample_galaxy
from dataset_builder.synthetic.render import render
from dataset_builder.synthetic.talk import HASHTAG_RE
from dataset_builder.synthetic.votes import ambiguity, simulate_votes

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "gz_examples_decals"
N_SURVEY = 300


@pytest.fixture(scope="module")
def survey():
    """300 galaxies of seed 11 at 128 px (about 2 s)."""
    return list(iter_galaxies(N_SURVEY, seed=11, size=128))


# --------------------------------------------------------------------------- determinism
def test_same_seed_and_index_give_identical_galaxies():
    a, b = generate_galaxy(7, seed=3), generate_galaxy(7, seed=3)
    assert a.image.tobytes() == b.image.tobytes()
    assert (a.subject_id, a.truth, a.votes, a.comments, a.tags) == (b.subject_id, b.truth, b.votes, b.comments, b.tags)


def test_different_index_or_seed_gives_different_galaxies():
    base = generate_galaxy(7, seed=3)
    for other in (generate_galaxy(8, seed=3), generate_galaxy(7, seed=4)):
        assert other.subject_id != base.subject_id
        assert other.image.tobytes() != base.image.tobytes()


def test_bad_arguments_are_refused_with_the_value():
    with pytest.raises(ValueError, match="-1"):
        generate_galaxy(-1)
    with pytest.raises(ValueError, match="seed"):
        generate_galaxy(0, seed=-2)
    with pytest.raises(ValueError, match="got 8"):
        generate_galaxy(0, size=8)
    with pytest.raises(ValueError, match="blob"):
        sample_galaxy(np.random.default_rng(0), "blob")


def test_iau_name_format():
    assert iau_name(145.56637, 0.59005) == "J094215.92+003524.1"  # 15.9288 s, truncated
    assert iau_name(10.0, -5.5) == "J004000.00-053000.0"
    assert iau_name(359.99999, 89.99999) == "J235959.99+895959.9"


# --------------------------------------------------------------------------- truth
def test_truth_is_a_valid_path_and_the_class_mix_is_gz_like(survey):
    kinds = Counter()
    for g in survey:
        path = answer_path(g.answers)  # raises on any invalid path
        assert {k: g.truth[k] for k, _ in path} == g.answers
        kinds[g.truth["smooth-or-featured"]] += 1
    assert 0.28 < kinds["smooth"] / N_SURVEY < 0.5
    assert 0.4 < kinds["featured-or-disk"] / N_SURVEY < 0.65
    assert 0.005 < kinds["artifact"] / N_SURVEY < 0.1


# --------------------------------------------------------------------------- votes
def test_vote_fractions_sum_to_one_and_flow_through_the_tree(survey):
    for g in survey:
        v = g.votes
        for q in QUESTIONS.values():
            total = v[q.total_votes_column]
            fractions = [v.get(q.column(a)) for a in q.answer_keys]
            if total == 0:
                assert all(f is None for f in fractions), (g.subject_id, q.key)  # unreached: absent
                continue
            assert all(0 <= f <= 1 for f in fractions)
            if not q.multiple_choice:
                assert math.isclose(sum(fractions), 1.0, abs_tol=1e-9), (g.subject_id, q.key)
        # volunteers who answered "smooth" are exactly those asked how rounded it is
        smooth = round(v["smooth-or-featured_smooth_fraction"] * v["smooth-or-featured_total-votes"])
        assert v["how-rounded_total-votes"] == smooth
        assert v["merging_total-votes"] == v["odd-feature_total-votes"]


def test_majority_equals_truth_for_clear_cases(survey):
    agree = disagree = 0
    for g in survey:
        amb = ambiguity(g.params)
        if g.votes["smooth-or-featured_total-votes"] < 30:
            continue
        for key, answer in g.answers.items():
            if QUESTIONS[key].multiple_choice or amb[key] >= 0.3:
                continue
            majority = majority_answer(QUESTIONS[key], g.votes)
            agree += majority is not None and majority[0] == answer
            disagree += majority is None or majority[0] != answer
    assert agree > 300
    assert agree / (agree + disagree) > 0.93


def test_ambiguous_galaxies_split_their_votes(survey):
    clear, murky = [], []
    for g in survey:
        if g.votes["smooth-or-featured_total-votes"] < 30:
            continue
        top = majority_answer(QUESTIONS["smooth-or-featured"], g.votes)[1]
        (murky if g.truth["kind"] == "lenticular" else clear if g.truth["kind"] == "elliptical" else []).append(top)
    assert murky and clear
    assert np.median(murky) < np.median(clear) - 0.2


def test_walking_the_majority_reaches_truth_path_for_confident_spiral():
    rng = np.random.default_rng(0)
    g = sample_galaxy(rng, "spiral")
    g.disk.arm_strength, g.disk.inclination = 0.85, 0.2  # a strong, face-on spiral
    votes = simulate_votes(g, np.random.default_rng(1), volunteers=2000)
    path = [q.key for q in reachable_questions(votes)]
    assert path[:4] == ["smooth-or-featured", "disk-edge-on", "bar", "has-spiral-arms"]
    assert "spiral-arm-count" in path and "how-rounded" not in path


# --------------------------------------------------------------------------- images
@pytest.mark.parametrize("size", [64, 96, 128])
def test_image_shape_and_dtype(size):
    image = generate_galaxy(3, size=size).image
    assert image.shape == (size, size, 3) and image.dtype == np.uint8


def _luminance_above_sky(image: np.ndarray) -> np.ndarray:
    lum = image.astype(np.float32).mean(axis=2)
    stats = image_stats(image)
    return np.maximum(lum - stats["sky"].mean() - 3 * stats["noise"].mean(), 0)


def _moments_axis_ratio(image: np.ndarray, radius: float = 0.25) -> float:
    """Minor/major axis ratio from the second moments of the light within `radius` of the centre."""
    w = _luminance_above_sky(image)
    size = image.shape[0]
    y, x = (np.mgrid[:size, :size] + 0.5) / size - 0.5
    w = w * (np.hypot(x, y) < radius)
    m = w.sum()
    cx, cy = (w * x).sum() / m, (w * y).sum() / m
    cov = np.array([[(w * (x - cx) ** 2).sum(), (w * (x - cx) * (y - cy)).sum()],
                    [(w * (x - cx) * (y - cy)).sum(), (w * (y - cy) ** 2).sum()]]) / m
    lo, hi = np.linalg.eigvalsh(cov)
    return float(np.sqrt(lo / hi))


def test_edge_on_disks_are_elongated_and_round_ellipticals_are_not(survey):
    edge_on = [_moments_axis_ratio(g.image) for g in survey if g.truth.get("disk-edge-on") == "yes"]
    round_ = [_moments_axis_ratio(g.image) for g in survey
              if g.truth.get("how-rounded") == "completely" and g.truth["merger"] == "neither"]
    assert len(edge_on) >= 10 and len(round_) >= 10
    assert np.median(edge_on) < 0.35
    assert np.median(round_) > 0.75


def _azimuthal_variation(image: np.ndarray) -> float:
    """Mean over annuli around the light centroid of std/mean of the light along the annulus,
    using only annuli well above the sky (so that sky noise does not count as structure)."""
    w = _luminance_above_sky(image)
    size = image.shape[0]
    y, x = (np.mgrid[:size, :size] + 0.5) / size - 0.5
    core = w * (np.hypot(x, y) < 0.1)
    cx, cy = (core * x).sum() / core.sum(), (core * y).sum() / core.sum()
    r = np.hypot(x - cx, y - cy)
    values = []
    for lo in np.arange(0.03, 0.2, 0.015):
        ring = w[(r >= lo) & (r < lo + 0.015)]
        if ring.mean() > 12:
            values.append(ring.std() / ring.mean())
    return float(np.mean(values)) if values else 0.0


def test_spirals_have_more_azimuthal_structure_than_smooth_galaxies(survey):
    spirals = [_azimuthal_variation(g.image) for g in survey
               if g.truth.get("has-spiral-arms") == "yes" and g.truth["inclination_deg"] < 45]
    smooth = [_azimuthal_variation(g.image) for g in survey
              if g.truth.get("how-rounded") == "completely" and g.truth["merger"] == "neither"]
    assert len(spirals) >= 8 and len(smooth) >= 8
    assert np.median(spirals) > 2 * np.median(smooth)


def test_artifacts_and_noise_come_from_separate_streams():
    """The pixel noise has its own random stream: re-rendering with it changes only the noise."""
    g = generate_galaxy(2)
    again = render(g.params, 128, np.random.default_rng(123))
    diff = np.abs(again.astype(int) - g.image.astype(int))
    assert 0 < np.median(diff) < 12


# --------------------------------------------------------------------------- talk
def test_talk_threads_are_noisy_and_tags_match_hashtags(survey):
    comments = [c for g in survey for c in g.comments]
    bodies = [c["comment_body"] for c in comments]
    assert 1.0 < len(comments) / sum(bool(g.comments) for g in survey) < 2.2  # ~1.6 per commented subject
    assert sum(bool(HASHTAG_RE.search(b)) for b in bodies) > 0.2 * len(bodies)
    assert any(re.search(r"@\w+", b) for b in bodies)
    assert any("http" in b for b in bodies)
    assert any("<" in b or "&amp;" in b or "&#39;" in b or "&nbsp;" in b for b in bodies)
    assert any("Ã" in b or "â€" in b or "ð" in b for b in bodies)  # mojibake
    fields = {"board_id", "board_title", "board_description", "discussion_id", "discussion_title", "comment_id",
              "comment_body", "comment_focus_id", "comment_focus_type", "comment_user_id", "comment_created_at"}
    by_id = {}
    for g in survey:
        for c in g.comments:
            assert set(c) == fields
            assert c["comment_focus_id"] == int(g.subject_id) and c["discussion_title"] == f"Subject {g.subject_id}"
            by_id[c["comment_id"]] = c
    assert len(by_id) == len(comments)  # comment ids unique
    tags = [t for g in survey for t in g.tags]
    assert tags
    for t in tags:
        c = by_id[t["comment_id"]]
        assert t["taggable_id"] == c["comment_focus_id"] and t["user_id"] == c["comment_user_id"]
        assert f"#{t['name']}" in c["comment_body"].lower()
    tagged = Counter(t["comment_id"] for t in tags)
    for c in comments:
        assert tagged[c["comment_id"]] == len({m.lower() for m in HASHTAG_RE.findall(c["comment_body"])})


def test_comments_talk_about_the_true_features(survey):
    spiral_words = [c["comment_body"].lower() for g in survey if g.truth["kind"] == "spiral" for c in g.comments]
    smooth_words = [c["comment_body"].lower() for g in survey if g.truth["kind"] == "elliptical" for c in g.comments]
    assert sum("spiral" in b for b in spiral_words) > 0.3 * len(spiral_words)
    assert sum("spiral" in b for b in smooth_words) < 0.1 * len(smooth_words)


# --------------------------------------------------------------------------- export
def test_write_synthetic_export_layout(tmp_path):
    counts = write_synthetic_export(45, tmp_path, seed=2, size=64)
    assert counts["subjects"] == counts["images"] == 45
    images = sorted((tmp_path / "images").glob("*.jpg"))
    assert len(images) == 45
    with Image.open(images[0]) as im:
        assert im.format == "JPEG" and im.size == (64, 64)
    comments = json.loads((tmp_path / "comments.json").read_text())
    tags = json.loads((tmp_path / "tags.json").read_text())
    assert len(comments) == counts["comments"] and len(tags) == counts["tags"]
    assert any(c["comment_focus_id"] is None for c in comments)  # a general-board chat, as in real exports
    with (tmp_path / "gz_decals_votes.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 45
    ids = {r["subject_id"] for r in rows}
    assert ids == {p.stem for p in images}
    assert {c["comment_focus_id"] for c in comments if c["comment_focus_id"]} <= {int(i) for i in ids}
    row = rows[0]
    assert row["file_loc"] == f"images/{row['subject_id']}.jpg" and row["iauname"].startswith("J")
    assert "has-spiral-arms_yes_fraction" in row and "smooth-or-featured_total-votes" in row
    # unreached questions are empty (NaN) with zero total votes
    unreached = [r for r in rows if r["disk-edge-on_total-votes"] == "0"]
    assert all(r["disk-edge-on_yes_fraction"] == "" for r in unreached)
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert [t["subject_id"] for t in truth] == [r["subject_id"] for r in rows]
    assert truth[0]["truth"] == generate_galaxy(0, seed=2, size=64).truth


@pytest.mark.integration
def test_export_is_identical_with_two_workers(tmp_path):
    write_synthetic_export(40, tmp_path / "one", seed=5, size=64, workers=1)
    write_synthetic_export(40, tmp_path / "two", seed=5, size=64, workers=2)
    for name in ("comments.json", "tags.json", "gz_decals_votes.csv", "truth.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    for path in (tmp_path / "one" / "images").iterdir():
        assert path.read_bytes() == (tmp_path / "two" / "images" / path.name).read_bytes()


def test_export_refuses_bad_counts(tmp_path):
    with pytest.raises(ValueError, match="n must be"):
        write_synthetic_export(0, tmp_path)
    with pytest.raises(ValueError, match="workers"):
        write_synthetic_export(2, tmp_path, workers=0)


# --------------------------------------------------------------------------- realism
def test_image_statistics_match_real_decals_cutouts(survey):
    """Sky level, sky noise and central colour of synthetic cutouts vs the real GZ DECaLS examples,
    both at 128 px (real ones resized) and both through JPEG."""
    images = sorted((SHARED / "images").glob("*.jpg")) if SHARED.is_dir() else []
    if not images:
        pytest.skip(f"shared GZ DECaLS examples absent: {SHARED}")
    real = [image_stats(load_real(p, 128)) for p in images]
    synth = [image_stats(jpeg_roundtrip(g.image)) for g in survey if g.truth["artifact"] is None]

    def med(stats, key):
        return np.median([s[key] for s in stats], axis=0)

    assert np.all(np.abs(med(synth, "sky") - med(real, "sky")) <= 3), (med(synth, "sky"), med(real, "sky"))
    ratio = med(synth, "noise").mean() / med(real, "noise").mean()
    assert 0.7 < ratio < 1.4, (med(synth, "noise"), med(real, "noise"))
    real_lum = [s["centre"].mean() for s in real]
    assert np.percentile(real_lum, 25) < np.median([s["centre"].mean() for s in synth]) < np.percentile(real_lum, 90)
    # galaxy centres are red-ish (old bulges): R - B of the centre within the real spread
    real_rb = [s["centre"][0] - s["centre"][2] for s in real]
    synth_rb = np.median([s["centre"][0] - s["centre"][2] for s in synth])
    assert np.percentile(real_rb, 10) < synth_rb < np.percentile(real_rb, 90)


def test_command_line_writes_an_export(tmp_path, capsys):
    from dataset_builder.synthetic.__main__ import main

    counts = main(["--n", "6", "--out", str(tmp_path), "--size", "48", "--seed", "9"])
    assert counts["images"] == 6 and len(list((tmp_path / "images").glob("*.jpg"))) == 6
    assert json.loads(capsys.readouterr().out)["subjects"] == 6
