"""`EvaluationConfig`: the settings of one evaluation run, and the command line parsed straight into it.

`evaluate_gzllava.py` parses its flags with `HfArgumentParser` (`make_parser`): each field is one flag
(`--image_folder` or `--image-folder`), its default and help written once, here. The flag names are those
of train_sft.py, train_clip.py and the dataset builder (`--model_name_or_path`, `--dataset_name`,
`--dataset_config`, `--output_dir`); the old spellings (`OLD_SPELLINGS`) still parse for one release, each
with one deprecation line on stderr (`add_old_spellings`, also used by `python -m gzllava.tower.evaluate`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Literal

from transformers import HfArgumentParser

from dataset_builder.decision_tree import QUESTIONS
from dataset_builder.flags import DeprecatedFlag, not_a_recipe
from gzllava.metrics import METRIC_NAMES

from .hallucination import DEFAULT_THRESHOLD

TASKS = ("morphology", "descriptions", "retrieval", "hallucination", "judge")
DEFAULT_TASKS = ("morphology", "descriptions", "retrieval", "hallucination")
SOURCES = ("dataset_name", "image_folder", "catalogue")  # exactly one gives the evaluation set
CATALOGUE_ONLY = ("images", "catalogue_id_column", "twins")
# old spelling -> new flag (`--config` will be a YAML recipe from the next release, as in the training scripts)
OLD_SPELLINGS = {"--model": "--model_name_or_path", "--dataset": "--dataset_name", "--config": "--dataset_config",
                 "--out": "--output_dir"}


def _comma_list(values) -> list[str]:
    """["a,b", "c"] or "a,b c" -> ["a", "b", "c"]: a comma-separated value and separate values both work."""
    values = [values] if isinstance(values, str) else list(values)
    return [part.strip() for value in values for part in str(value).replace(",", " ").split() if part.strip()]


@dataclass
class EvaluationConfig:
    model_name_or_path: str = field(metadata={"help": "model folder or Hub id (GZ-LLaVA or any llava-interface model)"})
    dataset_name: str | None = field(default=None, metadata={"help": "gz-talk-instruct folder or Hub dataset id"})
    dataset_config: str | None = field(
        default=None, metadata={"help": "gz-talk-instruct config: description, conversation or decision_tree"})
    split: str = field(default="test", metadata={
        "help": "dataset split; for --catalogue: test, train, validation or all"})
    image_folder: str | None = field(default=None, metadata={"help": "folder of labelled images with labels.csv"})
    catalogue: str | None = field(default=None, metadata={
        "help": "real-galaxy catalogue: vote fractions (GZ2 Kaggle Class1.1..., GZ2, GZ DECaLS) or the GZ1 class table "
                "(class_name); split by galaxy id (gzllava/splits.py)"})
    catalogue_id_column: str | None = field(
        default=None, metadata={"help": "the catalogue's galaxy id column (GalaxyID, objid, ...)"})
    images: str | None = field(default=None, metadata={
        "help": "the catalogue's images, <id>.jpg/.jpeg/.png (default: the catalogue's `image` column, relative to "
                "its folder)"})
    twins: str | None = field(default=None, metadata={
        "help": "GZ1: GZ1 objid -> GZ2 GalaxyID pairs kept on one side of the split (default: "
                "same_galaxy_in_gz2_kaggle_5000.csv next to the catalogue)"})
    baseline_model: str | None = field(
        default=None, metadata={"help": "untuned base model (folder or Hub id) evaluated alongside"})
    output_dir: str = field(default="eval_results", metadata={"help": "output folder"})
    batch_size: int = 8
    max_samples: int | None = field(
        default=None, metadata={"help": "evaluate a seeded random subset of this many samples (catalogue: galaxies)"})
    questions: list[str] = field(default_factory=list, metadata={
        "help": "morphology: score only these decision-tree questions (keys such as bar,has-spiral-arms; "
                "comma-separated; default: every question reached). A decision_tree config's --max_samples draws "
                "from their rows only"})
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS), metadata={
        "help": f"subset of {','.join(TASKS)} (comma-separated or separate values)"})
    description_metrics: list[str] = field(default_factory=lambda: list(METRIC_NAMES), metadata={
        "aliases": ["--metrics"], "help": "description metrics to compute (comma-separated or separate values)"})
    answer_max_new_tokens: int = 32
    description_max_new_tokens: int = 128
    retrieval_max: int = field(default=200, metadata={
        "help": "galaxies in the retrieval matrix (n^2 candidate passes)"})
    options_in_prompt: bool = field(
        default=False, metadata={"help": "list the answer labels in each question (helps untuned models)"})
    hallucination_threshold: float = field(
        default=DEFAULT_THRESHOLD, metadata={"help": "vote fraction above which the labels contradict a feature"})
    train_split: str = field(default="train", metadata={
        "help": "split whose answer counts give the majority baseline (the evaluation set when absent)"})
    judge_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (off by default)"})
    judge_model: str = "gpt-4o-mini"
    judge_api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "environment variable holding the key"})
    update_model_card: bool = field(default=False, metadata={"help": "write the results into the model card"})
    device: str | None = field(default=None, metadata={"help": "cuda, cpu, ... (default: cuda when available)"})
    dtype: Literal["float32", "bfloat16", "float16"] | None = field(
        default=None, metadata={"help": "weights dtype (default: the checkpoint's)"})
    seed: int = 0

    def __post_init__(self):
        """Every inconsistency as one ValueError in the flags' words (the command line prints it as a usage error)."""
        if not self.model_name_or_path:
            raise ValueError("the following arguments are required: --model_name_or_path")
        given = [name for name in SOURCES if getattr(self, name) is not None]
        if not given:
            raise ValueError("one of the arguments --dataset_name --image_folder --catalogue is required")
        if len(given) > 1:
            raise ValueError(f"argument --{given[1]}: not allowed with argument --{given[0]}")
        if self.dataset_name and not self.dataset_config:
            raise ValueError("--dataset_name needs --dataset_config (description, conversation or decision_tree)")
        if not self.catalogue and any(getattr(self, name) for name in CATALOGUE_ONLY):
            raise ValueError("--images, --catalogue-id-column and --twins go with --catalogue")
        self.tasks = _comma_list(self.tasks)
        self.description_metrics = _comma_list(self.description_metrics)
        self.questions = _comma_list(self.questions)
        unknown = [q for q in self.questions if q not in QUESTIONS]
        if unknown:
            raise ValueError(f"--questions: unknown question(s) {unknown}; the decision tree's are "
                             f"{', '.join(QUESTIONS)}")
        unknown = set(self.tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from {', '.join(TASKS)}")
        if self.judge_url and "judge" not in self.tasks:
            self.tasks.append("judge")


def add_old_spellings(parser: argparse.ArgumentParser, old_to_new: dict[str, str], checks: dict | None = None) -> None:
    """Each old spelling as a `DeprecatedFlag` storing into its new flag's field, with one deprecation line.

    A required new flag stops being required for argparse (either spelling satisfies it): the dataclass checks it.
    `checks`: old spelling -> value check (an error message or None), as `dataset_builder.flags.not_a_recipe`."""
    actions = {option: action for action in parser._actions for option in action.option_strings}
    for old, new in old_to_new.items():
        action = actions[new]
        action.required = False
        parser.add_argument(old, dest=action.dest, action=DeprecatedFlag, new_flag=new, type=action.type,
                            check=(checks or {}).get(old), help=f"deprecated spelling of {new}",
                            default=argparse.SUPPRESS)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The tool's docstring as written, the flags with their defaults."""


def make_parser(prog: str = "evaluate_gzllava.py", description: str | None = None) -> HfArgumentParser:
    parser = HfArgumentParser(EvaluationConfig, prog=prog, description=description, formatter_class=HelpFormatter)
    add_old_spellings(parser, OLD_SPELLINGS, {"--config": not_a_recipe("--config", "--dataset_config")})
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    return parser


def parse_flags(parser: HfArgumentParser, argv: list[str] | None = None) -> tuple:
    """(dataclass, extra namespace) of a parser of one dataclass plus plain flags (`--debug`); a ValueError of the
    dataclass or an unknown flag is one usage line and exit code 2, as argparse's own errors."""
    try:
        parsed, extra, unknown = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True,
                                                                    look_for_args_file=False)
    except ValueError as err:
        parser.error(str(err))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return parsed, extra


def parse_evaluation_args(argv: list[str] | None = None, prog: str = "evaluate_gzllava.py",
                          description: str | None = None) -> tuple[EvaluationConfig, bool]:
    """(config, debug) from the command line; bad flags or values exit 2 with one usage line."""
    config, extra = parse_flags(make_parser(prog, description), argv)
    return config, extra.debug
