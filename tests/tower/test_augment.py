"""Augmentation respects labels: mirror flips swap clockwise/anticlockwise shares and words; eval = processor crop."""

import math

import numpy as np
import torch
from PIL import Image

from gzllava.tower.augment import centre_crop, mirror_text, random_views, rotate_and_zoom
from gzllava.tower.data import GalaxyTable, TowerCollator, resize_image
from gzllava.tower.model import image_processor_for, tiny_wordpiece_tokenizer
from gzllava.tower.questions import HeadSchema


def test_mirror_text_swaps_handedness_keeping_case():
    assert mirror_text("A clockwise spiral.") == "A anticlockwise spiral."
    assert mirror_text("Anticlockwise arms, counter-clockwise bar") == "Clockwise arms, clockwise bar"
    assert mirror_text("a smooth galaxy") == "a smooth galaxy"


def test_mirror_permutation_only_touches_spin():
    schema = HeadSchema.parse("smooth-or-featured,spiral-spin")
    assert schema.mirror_permutation().tolist() == [0, 1, 2, 4, 3]


def _table(n=64):
    schema = HeadSchema.parse("smooth-or-featured,spiral-spin")
    votes = {"spiral-spin_clockwise_fraction": 0.9, "spiral-spin_anticlockwise_fraction": 0.1,
             "smooth-or-featured_smooth_fraction": 0.0, "smooth-or-featured_featured-or-disk_fraction": 1.0,
             "smooth-or-featured_artifact_fraction": 0.0}
    shares, reached, counts = schema.targets(votes)
    images = torch.zeros(n, 3, 20, 20, dtype=torch.uint8)
    images[:, 0, 2:6, 2:12] = 255  # an asymmetric shape, so mirroring is visible
    table = GalaxyTable([str(i) for i in range(n)], images, ["A clockwise spiral."] * n,
                        torch.tensor(np.stack([shares] * n)), torch.tensor(np.stack([reached] * n)),
                        torch.tensor(np.stack([counts] * n)))
    return table, schema


def test_collator_flips_swap_spin_shares_and_texts():
    table, schema = _table()
    collator = TowerCollator(table, schema, 16, [0.5] * 3, [0.5] * 3, tiny_wordpiece_tokenizer(), augment=True,
                             jitter=0, seed=1)
    batch = collator([{"index": i} for i in range(len(table))])
    spin = batch["shares"][:, 3:5]
    mirrored = torch.isclose(spin[:, 0], torch.tensor(0.1))
    assert 0 < int(mirrored.sum()) < len(table)  # some flipped, some not
    assert torch.allclose(spin[~mirrored, 0], torch.tensor(0.9))
    assert torch.allclose(batch["shares"][:, :3], table.shares[:, :3])  # other questions untouched
    tok = tiny_wordpiece_tokenizer()
    anti = tok.convert_tokens_to_ids("anticlockwise")
    has_anti = (batch["input_ids"] == anti).any(1)
    assert torch.equal(has_anti, mirrored)


def test_rotations_without_flips_keep_labels():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    views, mirrored = random_views(images, 8, 0, torch.Generator().manual_seed(0), rotate=True, flip=False)
    assert not mirrored.any()
    for view, image in zip(views, images):
        assert any(torch.equal(view, torch.rot90(image, k, (1, 2))) for k in range(4))


def test_eval_crop_matches_saved_image_processor():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (50, 60, 3), dtype=np.uint8))
    stored = torch.from_numpy(resize_image(image, 32)).permute(2, 0, 1)[None]  # (1, 3, 32, 32)
    mean, std = [0.1, 0.2, 0.3], [0.2, 0.25, 0.3]
    ours = (centre_crop(stored, 16).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    processor = image_processor_for(16, 32, mean, std)
    theirs = processor(images=image, return_tensors="pt")["pixel_values"]
    assert theirs.shape == ours.shape == (1, 3, 16, 16)
    assert torch.allclose(ours, theirs, atol=2e-2)


def test_a_quarter_turn_by_any_angle_resampling_is_the_exact_rot90():
    images = torch.randint(0, 256, (2, 3, 8, 8), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    same = rotate_and_zoom(images, torch.zeros(2), torch.ones(2))
    assert torch.equal(same, images)  # no turn, no zoom: the pixels themselves
    turned = rotate_and_zoom(images, torch.full((2,), math.pi / 2), torch.ones(2))
    assert torch.equal(turned, torch.rot90(images, 1, (2, 3)))  # pixel centres land on pixel centres


def test_zoom_magnifies_about_the_centre():
    image = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    image[..., 6:10, 6:10] = 255  # a 4 px square at the centre
    bigger = rotate_and_zoom(image, torch.zeros(1), torch.full((1,), 2.0))
    assert int((bigger > 127).sum()) == 64  # 8 x 8 px
    assert torch.equal((bigger > 127).nonzero()[:, 2:].float().mean(0), torch.tensor([7.5, 7.5]))


def test_any_angle_views_stay_inside_the_turned_image():
    """With the real recipe's crop (32 px of 64, jitter 2, zoom 0.1) no view shows the padding outside the image."""
    images = torch.full((64, 3, 64, 64), 200, dtype=torch.uint8)
    views, _ = random_views(images, 32, 2, torch.Generator().manual_seed(0), any_angle=True, zoom=0.1)
    assert views.shape == (64, 3, 32, 32) and int(views.min()) == 200
    wide, _ = random_views(images, 60, 2, torch.Generator().manual_seed(0), any_angle=True)
    assert int(wide.min()) == 0  # a crop as wide as the image shows the corners the turn brought in


def test_any_angle_turns_between_the_quarter_turns():
    image = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    image[..., 15:17, 4:28] = 255  # a horizontal bar through the centre
    views, mirrored = random_views(image.expand(16, -1, -1, -1), 16, 0, torch.Generator().manual_seed(0),
                                   any_angle=True)
    quarter = [torch.rot90(centre_crop(image, 16)[0], k, (1, 2)) for k in range(4)]
    off_axis = [not any(torch.equal(view, q) or torch.equal(view, q.flip(2)) for q in quarter) for view in views]
    assert sum(off_axis) >= 12  # a uniform angle in [0, 90) is almost never a multiple of 90 degrees
    assert mirrored.any() and not mirrored.all()
