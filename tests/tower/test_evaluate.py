"""`python -m gzllava.tower.evaluate`'s command line: the old spellings with one deprecation line each, and bad input
as one line with exit code 2 (the shared flag names: tests/test_cli_vocabulary.py)."""

from __future__ import annotations

import pytest

from gzllava.evaluation.arguments import parse_flags
from gzllava.tower.evaluate import main, make_parser

PROG = "python -m gzllava.tower.evaluate"


def _deprecations(err: str) -> list[str]:
    return [line for line in err.splitlines() if "is deprecated, use" in line]


def test_old_spellings_work_with_one_deprecation_line_each(capsys):
    args, _ = parse_flags(make_parser(), ["--model", "m", "--dataset", "d", "--config", "description", "--out", "o"])
    assert (args.model_name_or_path, args.dataset_name, args.dataset_config, args.output_dir) == ("m", "d",
                                                                                                "description", "o")
    lines = _deprecations(capsys.readouterr().err)
    assert sorted(lines) == sorted(f"{PROG}: warning: {old} is deprecated, use {new} (the old spelling is removed in "
                                   "the next release)" for old, new in (("--model", "--model_name_or_path"),
                                                                        ("--dataset", "--dataset_name"),
                                                                        ("--config", "--dataset_config"),
                                                                        ("--out", "--output_dir")))


@pytest.mark.parametrize(("argv", "message"), [
    (["--gz2", "g"], "required: --model_name_or_path"),
    (["--model_name_or_path", "m"], "give one of --gz2"),
    (["--model_name_or_path", "m", "--gz2", "g", "--dataset_name", "d"], "give one of --gz2"),
    (["--model_name_or_path", "m", "--dataset_name", "d", "--config", "eval.yaml"], "YAML recipe"),
    (["--model_name_or_path", "m", "--gz2", "g", "--views", "4"], "--views"),
    (["--model_name_or_path", "m", "--dataset_name", "d", "--items", "majority_path"],
     "--items majority_path follows the GZ2 catalogue's votes: give --gz2"),
    (["--model_name_or_path", "m", "--gz2", "g", "--split", "train_holdout"], "with --gz2 use --gz2_side validation"),
    (["--model_name_or_path", "m", "--dataset_name", "d", "--split", "train_holdout", "--validation_percent", "100"],
     "--validation_percent 100: expected 1..99 with --split train_holdout"),
])
def test_bad_flags_are_one_usage_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"{PROG}: error:")]
    assert len(errors) == 1 and message in errors[0], errors


def test_bad_model_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    assert main(["--model_name_or_path", str(tmp_path), "--gz2", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a GZ-CLIP dual encoder" in err[0] and str(tmp_path) in err[0]
