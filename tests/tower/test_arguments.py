"""train_clip.py arguments: recipe keys, command-line overrides, clear errors before training."""

import subprocess
import sys

import pytest
import yaml

from gzllava.tower.arguments import parse_arguments
from gzllava.tower.run import prepare_training

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_RECIPE = str(REPO_ROOT / "recipes" / "tiny_cpu_clip.yaml")


def test_recipe_values_and_overrides(tmp_path):
    tower, training = parse_arguments(["--config", TINY_RECIPE, "--output_dir", str(tmp_path), "--learning_rate", "3e-4",
                                       "--morphology_weight", "0.5"])
    assert training.learning_rate == 3e-4 and tower.morphology_weight == 0.5
    assert tower.vision_layers == yaml.safe_load(open(TINY_RECIPE))["vision_layers"]
    assert tower.recipe == TINY_RECIPE


def test_paperclip_defaults_without_recipe(tmp_path):
    _, training = parse_arguments(["--output_dir", str(tmp_path)])
    assert (training.learning_rate, training.weight_decay, training.per_device_train_batch_size) == (1e-5, 1e-3, 32)


def test_unknown_recipe_key_names_it(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({**yaml.safe_load(open(TINY_RECIPE)), "vision_layerz": 3}))
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key\(s\) \['vision_layerz'\]"):
        parse_arguments(["--config", str(recipe)])


def test_cli_unknown_flag_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "train_clip.py"), "--config", TINY_RECIPE,
                             "--output_dir", str(tmp_path), "--no_such_flag", "1"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("train_clip.py: error:")]
    assert len(errors) == 1 and "--no_such_flag" in errors[0]
    assert "Traceback" not in result.stderr


def test_text_free_source_with_contrastive_loss_is_refused(tmp_path):
    with pytest.raises(ValueError, match="gz2_catalogue has no texts"):
        parse_arguments(["--output_dir", str(tmp_path), "--source", "gz2_catalogue", "--contrastive_weight", "1"])


def test_a_turn_whose_corners_would_enter_the_crop_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"any_angle / zoom 0.0 with crop_fraction 1.0 .* past the turned image's edge"):
        parse_arguments(["--output_dir", str(tmp_path), "--any_angle", "true", "--crop_fraction", "1.0"])
    with pytest.raises(ValueError, match=r"zoom 0.6: expected a factor range in \[0, 0.5\)"):
        parse_arguments(["--output_dir", str(tmp_path), "--zoom", "0.6"])
    tower, _ = parse_arguments(["--config", str(REPO_ROOT / "recipes" / "real_cpu_tower.yaml"), "--output_dir",
                                str(tmp_path), "--any_angle", "true", "--zoom", "0.1"])  # 48 of 96 px, jitter 2: fits
    assert tower.any_angle and tower.zoom == 0.1


def test_head_question_weights_are_checked_with_the_other_arguments(tmp_path):
    # refused while parsing, before any model or data loads: without a head, or naming a question the head lacks
    with pytest.raises(ValueError, match="head_question_weights needs the head: set a morphology_weight above 0"):
        parse_arguments(["--output_dir", str(tmp_path), "--morphology_weight", "0", "--head_question_weights", "bar=2"])
    with pytest.raises(ValueError, match="head_question_weights: unknown question 'bar'; questions: smooth-or-featured,"):
        parse_arguments(["--output_dir", str(tmp_path), "--morphology_weight", "1", "--head_questions", "gz2",
                         "--head_question_weights", "bar=2"])
    with pytest.raises(ValueError, match="head_questions: unknown question 'spirals'"):
        parse_arguments(["--output_dir", str(tmp_path), "--morphology_weight", "1", "--head_questions", "spirals"])
    tower, _ = parse_arguments(["--output_dir", str(tmp_path), "--morphology_weight", "1", "--head_questions", "gz2",
                                "--head_question_weights", "disk-edge-on=2"])
    assert tower.head_question_weights == "disk-edge-on=2"


def test_not_a_vision_tower_fails_before_training(tmp_path, tiny_args):
    from gzllava.tiny import tiny_language_model, tiny_tokenizer

    llama = tmp_path / "llama"
    tiny_language_model(len(tiny_tokenizer()), hidden_size=32, layers=1).save_pretrained(llama)
    args = parse_arguments(tiny_args(tmp_path / "out", "--vision_model_name_or_path", str(llama),
                                     "--text_model_name_or_path", str(llama)))
    with pytest.raises(ValueError, match=r"vision_model_name_or_path .*llama.* is a 'llama' checkpoint, not a vision tower"):
        prepare_training(*args)
    assert not (tmp_path / "out").exists()


def test_missing_dataset_config_is_named(tmp_path, tiny_args):
    args = parse_arguments(tiny_args(tmp_path / "out", "--dataset_config", "conversation"))
    with pytest.raises(ValueError, match=r"no config 'conversation'"):
        prepare_training(*args)


def test_train_holdout_validation_comes_from_train_by_the_fixed_split(tmp_path, tiny_args):
    from gzllava.splits import split_of

    run = prepare_training(*parse_arguments(tiny_args(tmp_path / "out", "--dataset_eval_split", "train_holdout",
                                                      "--validation_percent", "40")))
    assert run.eval_table is not None and len(run.eval_table) > 0
    assert not set(run.eval_table.ids) & set(run.train_table.ids)
    assert all(split_of(i, validation_percent=40) == "validation" for i in run.eval_table.ids)
    assert all(split_of(i, validation_percent=40) != "validation" for i in run.train_table.ids)


def test_train_holdout_puts_a_gz1_image_on_its_gz2_twins_side(tmp_path, tiny_args):
    from gzllava.splits import split_of

    plain = prepare_training(*parse_arguments(tiny_args(tmp_path / "plain", "--dataset_eval_split", "train_holdout",
                                                        "--validation_percent", "40")))
    image = plain.train_table.ids[0]  # a training galaxy, standing in for a GZ1 cutout
    gz2 = next(str(k) for k in range(100000, 101000) if split_of(k, validation_percent=40) == "validation")
    twins = tmp_path / "same_galaxy_in_gz2_kaggle_5000.csv"
    twins.write_text(f"gz1_objid,kaggle_galaxyid\n{image},{gz2}\n")
    run = prepare_training(*parse_arguments(tiny_args(tmp_path / "out", "--dataset_eval_split", "train_holdout",
                                                      "--validation_percent", "40", "--validation_twins", str(twins))))
    assert image in run.eval_table.ids and image not in run.train_table.ids
    assert set(run.eval_table.ids) == set(plain.eval_table.ids) | {image}


def test_head_question_weights_reach_the_training_model(tmp_path, tiny_args):
    run = prepare_training(*parse_arguments(tiny_args(tmp_path / "out", "--head_questions", "gz2",
                                                      "--head_question_weights", "disk-edge-on=3,how-rounded=0")))
    assert run.model.question_weights.tolist() == [1.0, 3.0, 0.0]  # smooth-or-featured, disk-edge-on, how-rounded
    plain = prepare_training(*parse_arguments(tiny_args(tmp_path / "plain", "--head_questions", "gz2")))
    assert plain.model.question_weights.tolist() == [1.0, 1.0, 1.0]
