"""`train_fraction`: a random share of the training galaxies, drawn after the validation side is set aside (learning
curves measured on one validation side)."""

from __future__ import annotations

import pytest

from gzllava.tower.arguments import parse_arguments
from gzllava.tower.questions import HeadSchema
from gzllava.tower.run import load_tables

SCHEMA = HeadSchema.parse("decals")


def _sides(tiny_args, tmp_path, *extra):
    tower, _ = parse_arguments(tiny_args(tmp_path, "--dataset_eval_split", "train_holdout",
                                         "--validation_percent", "25", *extra))
    return load_tables(tower, SCHEMA)


def test_a_fraction_trains_on_a_subset_and_keeps_the_validation_side(tiny_args, tmp_path):
    full_train, full_eval = _sides(tiny_args, tmp_path)
    half_train, half_eval = _sides(tiny_args, tmp_path, "--train_fraction", "0.5")
    assert half_eval.ids == full_eval.ids  # the same validation side
    assert len(half_train) == round(0.5 * len(full_train)) < len(full_train)
    assert set(half_train.ids) < set(full_train.ids)
    assert half_train.ids == [i for i in full_train.ids if i in set(half_train.ids)]  # in the table's order
    assert not set(half_train.ids) & set(half_eval.ids)


def test_the_draw_does_not_depend_on_the_training_seed(tiny_args, tmp_path):
    seed0, _ = _sides(tiny_args, tmp_path, "--train_fraction", "0.5", "--seed", "0")
    seed1, _ = _sides(tiny_args, tmp_path, "--train_fraction", "0.5", "--seed", "1")
    assert seed0.ids == seed1.ids
    smaller, _ = _sides(tiny_args, tmp_path, "--train_fraction", "0.25", "--seed", "0")
    assert len(smaller) < len(seed0)


@pytest.mark.parametrize("fraction", ["0", "1.5", "-0.1"])
def test_a_fraction_outside_0_1_is_refused(tiny_args, tmp_path, fraction):
    with pytest.raises(ValueError, match=rf"train_fraction {float(fraction)}: expected a share in \(0, 1\]"):
        parse_arguments(tiny_args(tmp_path, "--train_fraction", fraction))
