"""One flag vocabulary across the command lines (issue 12 item 2): `--model_name_or_path`, `--dataset_name`,
`--dataset_config`, `--output_dir`; the old spellings still parse, each with ONE deprecation line naming the new flag.

Parsing only: nothing is loaded or built (the builder's `_build` is replaced by a recorder).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dataset_builder.cli as builder_cli
import evaluate_gzllava

REPO_ROOT = Path(__file__).resolve().parents[1]


def _deprecations(err: str) -> list[str]:
    return [line for line in err.splitlines() if "is deprecated, use" in line]


# ------------------------------------------------------------------------------------------ evaluate_gzllava.py
def test_evaluate_takes_the_shared_flag_names(capsys):
    config = evaluate_gzllava.parse_args(["--model_name_or_path", "m", "--dataset_name", "d", "--dataset_config",
                                          "decision_tree", "--output_dir", "o"])
    assert (config.model_name_or_path, config.dataset_name, config.dataset_config, config.output_dir) == (
        "m", "d", "decision_tree", "o")
    assert _deprecations(capsys.readouterr().err) == []


def test_evaluate_old_spellings_work_with_one_deprecation_line_each(capsys):
    config = evaluate_gzllava.parse_args(["--model", "m", "--dataset", "d", "--config", "description", "--out", "o"])
    assert (config.model_name_or_path, config.dataset_name, config.dataset_config, config.output_dir) == (
        "m", "d", "description", "o")
    lines = _deprecations(capsys.readouterr().err)
    assert len(lines) == 4, lines
    for old, new in (("--model", "--model_name_or_path"), ("--dataset", "--dataset_name"),
                     ("--config", "--dataset_config"), ("--out", "--output_dir")):
        assert sum(line.startswith(f"evaluate_gzllava.py: warning: {old} is deprecated, use {new} ")
                   for line in lines) == 1, (old, lines)


def test_evaluate_one_old_spelling_gives_exactly_one_line(capsys):
    config = evaluate_gzllava.parse_args(["--model_name_or_path", "m", "--image-folder", "f", "--out", "o"])
    assert config.output_dir == "o" and config.image_folder == "f"
    assert _deprecations(capsys.readouterr().err) == [
        "evaluate_gzllava.py: warning: --out is deprecated, use --output_dir (the old spelling is removed in the next "
        "release)"]


def test_evaluate_output_dir_default_is_kept(capsys):
    config = evaluate_gzllava.parse_args(["--model_name_or_path", "m", "--image-folder", "f"])
    assert config.output_dir == "eval_results"


@pytest.mark.parametrize("recipe", ["recipes/eval.yaml", "EVAL.YML"])
def test_evaluate_refuses_a_yaml_config_which_means_a_recipe_from_the_next_release(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_gzllava.parse_args(["--model_name_or_path", "m", "--dataset_name", "d", "--config", recipe])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    error = [line for line in err.splitlines() if line.startswith("evaluate_gzllava.py: error:")]
    assert len(error) == 1 and f"--config {recipe}" in error[0] and "YAML recipe" in error[0]
    assert "--dataset_config" in error[0] and _deprecations(err) == []


def test_evaluate_needs_a_model_under_either_spelling(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_gzllava.parse_args(["--image-folder", "f"])
    assert exit_info.value.code == 2
    assert "required: --model_name_or_path" in capsys.readouterr().err


def test_evaluate_dataset_and_image_folder_still_exclude_each_other_under_the_old_spelling(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_gzllava.parse_args(["--model_name_or_path", "m", "--dataset", "d", "--image-folder", "f"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ python -m dataset_builder
@pytest.fixture
def recorded_build(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr(builder_cli, "_build", lambda args: calls.append(args) or 0)
    return calls


def test_builder_takes_output_dir(recorded_build, capsys):
    assert builder_cli.main(["-q", "build", "--synthetic", "3", "--output_dir", "x"]) == 0
    assert recorded_build[0].output_dir == Path("x")
    assert _deprecations(capsys.readouterr().err) == []


def test_builder_old_out_works_with_one_deprecation_line(recorded_build, capsys):
    assert builder_cli.main(["-q", "build", "--synthetic", "3", "--out", "x"]) == 0
    assert recorded_build[0].output_dir == Path("x")
    err = capsys.readouterr().err
    assert _deprecations(err) == err.strip().splitlines() == [
        "python -m dataset_builder build: warning: --out is deprecated, use --output_dir (the old spelling is removed "
        "in the next release)"]


def test_builder_without_an_output_folder_is_one_line_and_exit_2(recorded_build, capsys):
    with pytest.raises(SystemExit) as exit_info:
        builder_cli.main(["-q", "build", "--synthetic", "3"])
    assert exit_info.value.code == 2 and recorded_build == []
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "required: --output_dir" in err, err


# --------------------------------------------------------------------------------- train_sft.py / train_clip.py
def test_train_sft_takes_the_shared_flag_names():
    from gzllava.training.arguments import parse_arguments

    script_args, training_args, model_args, _ = parse_arguments([
        "--config", str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml"), "--model_name_or_path", "m",
        "--dataset_name", "d", "--dataset_config", "decision_tree", "--output_dir", "o"])
    assert model_args.model_name_or_path == "m" and training_args.output_dir == "o"
    assert (script_args.dataset_name, script_args.dataset_config) == ("d", "decision_tree")


def test_train_clip_takes_the_shared_flag_names():
    from gzllava.tower.arguments import parse_arguments

    recipe = str(REPO_ROOT / "recipes" / "tiny_cpu_clip.yaml")
    tower_args, training_args = parse_arguments([
        "--config", recipe, "--model_name_or_path", "m", "--dataset_name", "d", "--dataset_config", "description",
        "--output_dir", "o"])
    assert tower_args.clip_model_name_or_path == "m" and training_args.output_dir == "o"
    assert (tower_args.dataset_name, tower_args.dataset_config) == ("d", "description")
    # the tower's own name (and recipe key) is unchanged
    tower_args, _ = parse_arguments(["--config", recipe, "--clip_model_name_or_path", "c"])
    assert tower_args.clip_model_name_or_path == "c"


# -------------------------------------------------------------------------------- python -m gzllava.tower.evaluate
def test_tower_evaluate_takes_the_shared_flag_names(capsys):
    from gzllava.evaluation.arguments import parse_flags
    from gzllava.tower.evaluate import TowerEvaluationArguments, make_parser

    args, extra = parse_flags(make_parser(), ["--model_name_or_path", "m", "--dataset_name", "d", "--dataset_config",
                                              "decision_tree", "--output_dir", "o"])
    assert args == TowerEvaluationArguments(model_name_or_path="m", dataset_name="d", dataset_config="decision_tree",
                                            output_dir="o")
    assert not extra.debug and _deprecations(capsys.readouterr().err) == []
