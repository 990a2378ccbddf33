"""`EvaluationConfig` parsed straight from the command line (HfArgumentParser): each field one flag, lists either
comma-separated or separate, every inconsistency one usage line and exit code 2."""

from __future__ import annotations

import pytest

from gzllava.evaluation.arguments import DEFAULT_TASKS, EvaluationConfig, parse_evaluation_args
from gzllava.metrics import METRIC_NAMES


def _parse(*flags: str) -> EvaluationConfig:
    return parse_evaluation_args(["--model_name_or_path", "m", "--image-folder", "f", *flags])[0]


def test_defaults_are_the_dataclass_defaults():
    config = _parse()
    assert config == EvaluationConfig(model_name_or_path="m", image_folder="f")
    assert config.tasks == list(DEFAULT_TASKS) and config.description_metrics == list(METRIC_NAMES)
    assert (config.batch_size, config.split, config.output_dir, config.dtype) == (8, "test", "eval_results", None)


def test_both_spellings_of_a_field_and_typed_values():
    config = _parse("--batch_size", "4", "--answer-max-new-tokens", "7", "--options-in-prompt", "--dtype", "bfloat16",
                    "--hallucination_threshold", "0.7", "--max-samples", "3")
    assert (config.batch_size, config.answer_max_new_tokens, config.options_in_prompt) == (4, 7, True)
    assert (config.dtype, config.hallucination_threshold, config.max_samples) == ("bfloat16", 0.7, 3)


@pytest.mark.parametrize("flags", [["--tasks", "morphology,hallucination"], ["--tasks", "morphology", "hallucination"]])
def test_tasks_comma_separated_or_separate(flags):
    assert _parse(*flags).tasks == ["morphology", "hallucination"]


def test_questions_comma_separated_or_separate_default_all():
    assert _parse("--questions", "bar,has-spiral-arms").questions == ["bar", "has-spiral-arms"]
    assert _parse("--questions", "bar", "how-rounded").questions == ["bar", "how-rounded"]
    assert _parse().questions == []


def test_metrics_flag_and_the_judge_task_added_by_its_url():
    config = _parse("--metrics", "bleu,cider", "--judge-url", "http://127.0.0.1:8000/v1", "--tasks", "descriptions")
    assert config.description_metrics == ["bleu", "cider"] and config.tasks == ["descriptions", "judge"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--tasks", "morphology,vibes"], "unknown task(s) ['vibes']"),
    (["--questions", "bar,barred"], "--questions: unknown question(s) ['barred']; the decision tree's are"),
    (["--dtype", "int3"], "invalid choice: 'int3'"),
    (["--batch-size", "many"], "invalid int value: 'many'"),
    (["--catalogue", "c.csv"], "argument --catalogue: not allowed with argument --image_folder"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_bad_values_are_one_usage_line_and_exit_2(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse(*flags)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], errors


def test_a_source_is_required(capsys):
    with pytest.raises(SystemExit):
        parse_evaluation_args(["--model_name_or_path", "m"])
    assert "one of the arguments --dataset_name --image_folder --catalogue is required" in capsys.readouterr().err


def test_help_lists_each_field_once_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_evaluation_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--retrieval_max RETRIEVAL_MAX, --retrieval-max RETRIEVAL_MAX" in text and "(default: 200)" in text
    assert "deprecated spelling of --output_dir" in text
