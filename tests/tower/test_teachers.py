"""Ensemble distillation (`teacher_model_name_or_path`, `teacher_weight`): the head's targets mix the volunteers'
shares with the teachers' mean predicted shares; bad teachers or weights fail before training."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gzllava.tower.arguments import parse_arguments
from gzllava.tower.augment import random_views
from gzllava.tower.data import GalaxyTable, TowerCollator
from gzllava.tower.model import (GZClipForTraining, TowerShape, image_processor_for, load_tower, make_processor,
                                 new_clip, save_tower, tiny_wordpiece_tokenizer)
from gzllava.tower.questions import HeadSchema
from gzllava.tower.run import prepare_training, train
from gzllava.tower.teachers import mix_targets, predict_shares, teacher_shares

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_teacher(folder: Path, head_questions: str = "decals", image_size: int = 32, stored: int = 32,
                 mean=(0.2, 0.3, 0.4), std=(0.3, 0.25, 0.2), seed: int = 0) -> str:
    """A tiny untrained GZ-CLIP folder with a head (random weights: its predictions differ from the votes)."""
    torch.manual_seed(seed)
    shape = TowerShape(image_size=image_size, patch_size=8, vision_hidden_size=32, vision_layers=1, vision_heads=2,
                       text_hidden_size=32, text_layers=1, text_heads=2, projection_dim=16)
    tokenizer = tiny_wordpiece_tokenizer()
    dual = new_clip(shape, tokenizer)
    model = GZClipForTraining(dual, HeadSchema.parse(head_questions), 1.0, 1.0)
    with torch.no_grad():  # larger head weights: teacher shares far from uniform
        model.head.proj.weight.mul_(20)
    save_tower(folder, model, make_processor(dual, image_processor_for(image_size, stored, mean, std), tokenizer))
    return str(folder)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("teachers")
    # the second teacher sees the galaxy differently: stored 24 px, centre 16 px, other mean/std
    return [make_teacher(root / "a", seed=1),
            make_teacher(root / "b", image_size=16, stored=24, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), seed=2)]


def test_teachers_predict_with_their_own_image_processing(teachers):
    schema = HeadSchema.parse("decals")
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    for folder in teachers:
        model, processor, head, _ = load_tower(folder)
        pixels = processor.image_processor(images=[Image.fromarray(a) for a in arrays], return_tensors="pt")
        with torch.no_grad():
            expected = schema.probabilities(head(model.vision_model(**pixels).pooler_output))
        got = predict_shares(folder, images, schema)
        assert torch.allclose(got, expected, atol=1e-5)
        for sl in schema.slices():
            assert torch.allclose(got[:, sl].sum(1), torch.ones(3))
    mean = teacher_shares(teachers, images, schema)
    assert torch.allclose(mean, (predict_shares(teachers[0], images, schema)
                                 + predict_shares(teachers[1], images, schema)) / 2)


def test_weight_zero_keeps_the_old_targets_one_gives_the_teachers_mean(tmp_path, tiny_args, teachers):
    plain = prepare_training(*parse_arguments(tiny_args(tmp_path / "plain")))
    spec = ",".join(teachers)
    zero = prepare_training(*parse_arguments(tiny_args(tmp_path / "zero", "--teacher_model_name_or_path", spec,
                                                       "--teacher_weight", "0")))
    assert torch.equal(zero.train_table.shares, plain.train_table.shares)
    assert torch.equal(zero.train_table.reached, plain.train_table.reached)
    assert torch.equal(zero.train_table.counts.isnan(), plain.train_table.counts.isnan())
    schema = plain.model.schema
    mean = teacher_shares(teachers, plain.train_table.images, schema)
    reached = torch.cat([plain.train_table.reached[:, q : q + 1].expand(-1, sl.stop - sl.start)
                         for q, sl in enumerate(schema.slices())], 1)
    assert reached.any() and not reached.all()  # some questions unreached: they must stay masked (shares 0)
    one = prepare_training(*parse_arguments(tiny_args(tmp_path / "one", "--teacher_model_name_or_path", spec,
                                                      "--teacher_weight", "1")))
    assert torch.allclose(one.train_table.shares, torch.where(reached, mean, torch.zeros_like(mean)), atol=1e-6)
    assert torch.equal(one.train_table.reached, plain.train_table.reached)
    assert not torch.allclose(one.train_table.shares, plain.train_table.shares, atol=1e-3)
    # the default weight, 0.5: the halfway mix; the evaluation split keeps the volunteers' shares; it trains
    half = prepare_training(*parse_arguments(tiny_args(tmp_path / "half", "--teacher_model_name_or_path", spec)))
    assert half.tower_args.teacher_weight == 0.5
    assert torch.allclose(half.train_table.shares, (plain.train_table.shares + one.train_table.shares) / 2, atol=1e-6)
    assert torch.equal(half.eval_table.shares, plain.eval_table.shares)
    train(half)
    assert np.isfinite(half.metrics["train_loss"])


def test_mirrored_views_get_mirrored_mixed_shares_and_counts_are_dropped():
    schema = HeadSchema.parse("smooth-or-featured,spiral-spin")  # a mirror swaps clockwise / anticlockwise
    n = 16
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=generator)
    shares = torch.tensor([[0.6, 0.3, 0.1, 0.9, 0.1]]).repeat(n, 1)
    reached = torch.ones(n, 2, dtype=torch.bool)
    reached[0, 1] = False  # galaxy 0 never reached spiral-spin
    shares[0, 3:] = 0
    counts = torch.full((n, 2), 40.0)
    table = GalaxyTable([str(i) for i in range(n)], images, None, shares, reached, counts)
    teacher = torch.tensor([[0.2, 0.7, 0.1, 0.3, 0.7]]).repeat(n, 1)
    mixed = mix_targets(table, teacher, 0.25, schema)
    expected = 0.75 * shares + 0.25 * teacher
    expected[0, 3:] = 0  # unreached: still masked, no teacher share
    assert torch.allclose(mixed.shares, expected)
    assert mixed.counts.isnan().all()  # w > 0: soft cross-entropy on the mix, no Dirichlet-multinomial
    kept = mix_targets(table, teacher, 0.0, schema)
    assert torch.equal(kept.shares, shares) and torch.equal(kept.counts, counts)
    collator = TowerCollator(mixed, schema, 12, [0.5] * 3, [0.5] * 3, augment=True, jitter=1, seed=7)
    batch = collator([{"index": i} for i in range(n)])
    _, mirrored = random_views(images, 12, 1, torch.Generator().manual_seed(7))  # the collator's own draws
    assert mirrored.any() and not mirrored.all()
    perm = torch.from_numpy(schema.mirror_permutation())
    assert torch.allclose(batch["shares"][mirrored], expected[mirrored][:, perm])
    assert torch.allclose(batch["shares"][~mirrored], expected[~mirrored])
    assert torch.isnan(batch["counts"]).all()


def test_bad_teachers_and_weights_fail_before_anything_loads(tmp_path, teachers):
    from gzllava.tiny import tiny_language_model, tiny_tokenizer

    base = ["--output_dir", str(tmp_path / "out"), "--morphology_weight", "1", "--head_questions", "decals"]
    with pytest.raises(ValueError, match=r"teacher_weight 1.5: expected a share in \[0, 1\]"):
        parse_arguments([*base, "--teacher_model_name_or_path", teachers[0], "--teacher_weight", "1.5"])
    with pytest.raises(ValueError, match="teacher_weight needs teacher_model_name_or_path"):
        parse_arguments([*base, "--teacher_weight", "0.5"])
    with pytest.raises(ValueError, match="teacher_model_name_or_path distils the head: set a morphology_weight"):
        parse_arguments([*base, "--morphology_weight", "0", "--teacher_model_name_or_path", teachers[0]])
    with pytest.raises(ValueError, match=r"'.*nowhere' is not a folder"):
        parse_arguments([*base, "--teacher_model_name_or_path", f"{teachers[0]},{tmp_path / 'nowhere'}"])
    llama = tmp_path / "llama"
    tiny_language_model(len(tiny_tokenizer()), hidden_size=32, layers=1).save_pretrained(llama)
    with pytest.raises(ValueError, match=r"is a 'llama' checkpoint, not a GZ-CLIP tower"):
        parse_arguments([*base, "--teacher_model_name_or_path", str(llama)])
    headless = tmp_path / "headless"
    make_teacher(headless)
    (headless / "morphology_head.json").unlink()
    with pytest.raises(ValueError, match="is a tower without a morphology head"):
        parse_arguments([*base, "--teacher_model_name_or_path", str(headless)])
    with pytest.raises(ValueError, match=r"has head questions \[smooth-or-featured: .*a teacher's head schema must be"):
        parse_arguments([*base, "--head_questions", "gz2", "--teacher_model_name_or_path", teachers[0]])
    tower, _ = parse_arguments([*base, "--teacher_model_name_or_path", ",".join(teachers), "--teacher_weight", "1"])
    assert tower.teacher_weight == 1.0


def test_cli_bad_teacher_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(REPO_ROOT / "train_clip.py"), "--config",
                             str(REPO_ROOT / "recipes" / "tiny_cpu_clip.yaml"), "--output_dir", str(tmp_path / "out"),
                             "--teacher_model_name_or_path", str(tmp_path)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("train_clip.py: error:")]
    assert len(errors) == 1 and "has no readable config.json" in errors[0], result.stderr
    assert not (tmp_path / "out").exists()
