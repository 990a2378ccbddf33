"""A GZ-LLaVA training run, step by step: prepare (checks, base model, data, trainer), train, save, push.

`train_sft.py` calls these steps; `run_training` chains them for programs (the CPU demo runs it per stage).
Everything that can be wrong with the arguments, the dataset or the model fails in `prepare_training`,
before a single step is trained.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME
from trl import ModelConfig, ScriptArguments, SFTConfig

from gzllava.hub import push_folder
from gzllava.model_card import card_command, card_safe

from .arguments import RESUME_LAST, TINY_MODEL, GZLlavaArguments, validate_arguments
from .base_model import BaseModel, load_base_model
from .data import PreparedData, prepare_datasets
from .save_trained import save_trained_model
from .stages import describe_trainable, prepare_stage
from .trainer import GZLlavaSFTTrainer


logger = logging.getLogger(__name__)

# Training arguments worth quoting in the model card.
CARD_TRAINING_KEYS = (
    "learning_rate", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "max_length", "weight_decay", "seed", "bf16", "activation_checkpointing",
    "assistant_only_loss",
)
CARD_MODEL_KEYS = ("dtype", "use_peft", "lora_r", "lora_alpha", "lora_dropout", "load_in_4bit", "bnb_4bit_quant_type",
                   "use_bnb_nested_quant")
COMPOSE_KEYS = ("projector_type", "num_query_tokens", "use_image_delimiters", "image_standardization",
                "vision_feature_views")


@dataclass
class TrainingRun:
    script_args: ScriptArguments
    training_args: SFTConfig  # a copy with push_to_hub off: the final folder is pushed, not the checkpoints
    model_args: ModelConfig
    gz_args: GZLlavaArguments
    base: BaseModel
    data: PreparedData
    trainer: GZLlavaSFTTrainer
    push_to_hub: bool
    peft: bool
    metrics: dict = field(default_factory=dict)
    command: list[str] | None = None  # train_sft.py's arguments, quoted in the card (secrets redacted)

    @property
    def dataset_id(self) -> str | None:
        name = self.script_args.dataset_name
        return self.gz_args.dataset_hub_id or (None if os.path.isdir(name) else name)

    def _gzllava_arguments(self) -> dict:
        """Our arguments that mattered: the composing ones only for a composed base, the tiny sizes only for tiny."""
        tiny = self.model_args.model_name_or_path == TINY_MODEL
        composed = tiny or not self.model_args.model_name_or_path
        return {
            key: value for key, value in asdict(self.gz_args).items()
            if value is not None and (tiny or not key.startswith("tiny_")) and (composed or key not in COMPOSE_KEYS)
        }

    def _recipe(self) -> dict | None:
        """The recipe file as written (command-line overrides show in the effective arguments below it)."""
        if not self.gz_args.recipe or not os.path.isfile(self.gz_args.recipe):
            return None
        import yaml

        return {"path": self.gz_args.recipe, "settings": yaml.safe_load(Path(self.gz_args.recipe).read_text())}

    @property
    def card_training(self) -> dict:
        """What the model card says about how the model was trained: local paths relative to the project (or
        `<local>/<name>`), secrets redacted (`gzllava.model_card.card_safe`): the card is meant to be pushed."""
        training = {
            "stage": self.gz_args.stage,
            "recipe": self._recipe(),
            "base_model": self.model_args.model_name_or_path or self.base.base_models,
            "dataset": {"name": self.dataset_id or Path(self.script_args.dataset_name).name,
                        "config": self.script_args.dataset_config, "splits": self.data.as_dict()},
            "world_size": self.training_args.world_size,
            "training_arguments": {key: getattr(self.training_args, key) for key in CARD_TRAINING_KEYS},
            "model_arguments": {key: getattr(self.model_args, key) for key in CARD_MODEL_KEYS},
            "gzllava_arguments": self._gzllava_arguments(),
            "parameters": describe_trainable(self.trainer.model),
        }
        if self.command is not None:
            training["command"] = card_command(self.command)
        return card_safe(training)


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest `checkpoint-N` that was written to the end (a run killed while saving leaves a partial one).

    transformers writes a checkpoint's trainer_state.json after its weights, optimizer, scheduler and RNG states.
    """
    if not os.path.isdir(output_dir):
        return None
    found = sorted((int(match.group(1)), name) for name in os.listdir(output_dir)
                   if (match := re.fullmatch(r"checkpoint-(\d+)", name)))
    for _, name in reversed(found):
        path = os.path.join(output_dir, name)
        if os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            return path
        logger.warning("Skipping %s: it was not written to the end (no %s).", path, TRAINER_STATE_NAME)
    return None


def resolve_checkpoint(training_args: SFTConfig) -> str | None:
    """`resume_from_checkpoint`: a path, or `last` for the newest checkpoint in output_dir (none yet: start fresh)."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("false", "none", ""):
        return None
    if str(value).lower() in RESUME_LAST:
        last = last_complete_checkpoint(training_args.output_dir)
        if last is None:
            logger.info("No checkpoint in %s yet: starting from the beginning.", training_args.output_dir)
        return last
    if not os.path.isdir(value):
        raise FileNotFoundError(f"resume_from_checkpoint: no checkpoint folder {value}")
    return value


def prepare_training(script_args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig,
                     gz_args: GZLlavaArguments) -> TrainingRun:
    """Check everything, load the base model for the stage, check and filter the data, build the trainer."""
    validate_arguments(script_args, training_args, model_args, gz_args)
    resolve_checkpoint(training_args)  # a resume_from_checkpoint folder that does not exist fails now, not after loading
    trainer_args = copy.copy(training_args)
    trainer_args.push_to_hub = False
    base = load_base_model(model_args, gz_args, trainer_args)
    data = prepare_datasets(script_args, trainer_args, gz_args, base.processor, base.model.config)
    peft_config = prepare_stage(base.model, gz_args, model_args)
    trainer = GZLlavaSFTTrainer(
        model=base.model,
        args=trainer_args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=base.processor,
        peft_config=peft_config,
        augment=gz_args.augment,
    )
    run = TrainingRun(script_args, trainer_args, model_args, gz_args, base, data, trainer,
                      push_to_hub=training_args.push_to_hub, peft=peft_config is not None)
    logger.info("Stage %s: %s", gz_args.stage, describe_trainable(trainer.model))
    return run


def train(run: TrainingRun) -> dict:
    """Train (resuming when asked), then evaluate once on the eval split; returns the metrics."""
    checkpoint = resolve_checkpoint(run.training_args)
    if checkpoint is not None:
        logger.info("Resuming from %s", checkpoint)
    result = run.trainer.train(resume_from_checkpoint=checkpoint)
    run.metrics.update(result.metrics)
    if run.data.eval is not None:
        run.metrics.update(run.trainer.evaluate())
    for report in run.data.reports:
        run.metrics[f"dropped_overlong_{report.split}"] = report.dropped_overlong
    return run.metrics


def push_trained_model(run: TrainingRun, folder: Path) -> str | None:
    """Upload the Hub folder as `hub_model_id` (main process; the token comes from HF_TOKEN)."""
    url = None
    if run.trainer.accelerator.is_main_process:
        url = push_folder(folder, run.training_args.hub_model_id, private=bool(run.training_args.hub_private_repo))
    run.trainer.accelerator.wait_for_everyone()
    return url


def run_training(script_args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig,
                 gz_args: GZLlavaArguments) -> Path:
    """Prepare, train, save the Hub-ready folder, push it when `push_to_hub`; returns the folder."""
    run = prepare_training(script_args, training_args, model_args, gz_args)
    train(run)
    folder = save_trained_model(run)
    if run.push_to_hub:
        push_trained_model(run, folder)
    return folder
