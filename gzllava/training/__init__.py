"""GZ-LLaVA supervised fine-tuning with TRL: stages align / instruct (QLoRA) / full, as used by `train_sft.py`.

    from gzllava.training import parse_arguments, run_training
    folder = run_training(*parse_arguments(["--config", "recipes/tiny_cpu_align.yaml"]))
"""

from .arguments import STAGES, TINY_MODEL, GZLlavaArguments, make_parser, parse_arguments, validate_arguments
from .save_trained import save_trained_model
from .run import TrainingRun, prepare_training, push_trained_model, resolve_checkpoint, run_training, train

__all__ = [
    "STAGES",
    "TINY_MODEL",
    "GZLlavaArguments",
    "TrainingRun",
    "make_parser",
    "parse_arguments",
    "prepare_training",
    "push_trained_model",
    "resolve_checkpoint",
    "run_training",
    "save_trained_model",
    "train",
    "validate_arguments",
]
