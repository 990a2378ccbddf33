"""A tower training run: prepare (every check, model, data, Trainer), train, save the Hub-ready folder.

`train_clip.py` calls `run_training`; everything that can be wrong (arguments, checkpoints, dataset) fails in
`prepare_training`, before the first step.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from gzllava.splits import read_twins

from .arguments import TowerArguments
from .card import write_model_card
from .data import (TRAIN_HOLDOUT, GalaxyTable, IndexDataset, TowerCollator, channel_stats, load_gz2_catalogue,
                   load_talk_instruct, split_holdout)
from .model import (GZClipForTraining, TowerShape, build_dual_encoder, image_processor_for, lock_text_tower,
                    make_processor, save_tower)
from .questions import HeadSchema
from .teachers import distil_targets

logger = logging.getLogger(__name__)

CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
TRAIN_SUBSET_SEED = 1234  # train_fraction's draw of galaxies (fixed: not the training seed)


@dataclass
class TowerRun:
    tower_args: TowerArguments
    training_args: TrainingArguments
    model: GZClipForTraining
    processor: object
    trainer: Trainer
    train_table: GalaxyTable
    eval_table: GalaxyTable | None
    base_models: list[str]
    image_mean: list[float]
    image_std: list[float]
    metrics: dict = field(default_factory=dict)


def load_tables(args: TowerArguments, schema: HeadSchema) -> tuple[GalaxyTable, GalaxyTable | None]:
    train, evaluation = _load_sides(args, schema)
    if args.train_fraction < 1:
        train = train_subset(train, args.train_fraction)
        logger.info("train_fraction %s: %d training galaxies", args.train_fraction, len(train))
    return train, evaluation


def train_subset(table: GalaxyTable, fraction: float) -> GalaxyTable:
    """A random `fraction` of the table's galaxies (at least one), in their order; the draw does not depend on the
    training seed, so towers of several seeds on one fraction see the same galaxies."""
    keep = torch.randperm(len(table), generator=torch.Generator().manual_seed(TRAIN_SUBSET_SEED))
    return table.subset(sorted(keep[:max(1, round(fraction * len(table)))].tolist()))


def _load_sides(args: TowerArguments, schema: HeadSchema) -> tuple[GalaxyTable, GalaxyTable | None]:
    if not args.dataset_name:
        raise ValueError("no dataset: set dataset_name (a gz-talk-instruct folder or Hub id, or the GZ2 folder)")
    evaluate = bool(args.dataset_eval_split) and args.dataset_eval_split.lower() != "none"
    if args.source == "gz2_catalogue":
        train = load_gz2_catalogue(args.dataset_name, "train", schema, args.stored_size, args.validation_percent,
                                   args.max_train_samples)
        evaluation = (load_gz2_catalogue(args.dataset_name, "validation", schema, args.stored_size,
                                         args.validation_percent, args.max_eval_samples)
                      if evaluate and args.validation_percent else None)
        return train, evaluation
    train = load_talk_instruct(args.dataset_name, args.dataset_config, args.dataset_train_split, schema,
                               args.stored_size, args.max_train_samples, args.head_only_config)
    if evaluate and args.dataset_eval_split == TRAIN_HOLDOUT:
        # builds without a validation split (catalogue-only: train/test): hold out part of train by gzllava.splits
        twins = read_twins(args.validation_twins) if args.validation_twins else {}
        return split_holdout(train, args.validation_percent, twins, f"dataset_eval_split {TRAIN_HOLDOUT}")
    evaluation = (load_talk_instruct(args.dataset_name, args.dataset_config, args.dataset_eval_split, schema,
                                     args.stored_size, args.max_eval_samples, args.head_only_config)
                  if evaluate else None)
    return train, evaluation


def warn_single_answer_questions(table: GalaxyTable, schema: HeadSchema) -> list[str]:
    """Head questions whose training galaxies all have the same majority answer (or none at all): the head learns a
    constant there. Logged as a warning each, named; returned for the caller."""
    constant = []
    for i, (question, part) in enumerate(zip(schema.questions, schema.slices())):
        reached = table.reached[:, i]
        answers = set(table.shares[reached][:, part].argmax(-1).tolist())
        if len(answers) <= 1:
            what = f"every one is {question.answers[answers.pop()]!r}" if answers else "no galaxy reaches it"
            logger.warning("head question %s: %d training galaxies, %s; the head can only learn a constant there",
                           question.key, int(reached.sum()), what)
            constant.append(question.key)
    return constant


def normalisation(args: TowerArguments, train: GalaxyTable) -> tuple[list[float], list[float]]:
    if args.image_mean == "dataset":
        return channel_stats(train.images)
    if args.image_mean == "clip":
        return CLIP_MEAN, CLIP_STD
    try:
        mean = [float(v) for v in args.image_mean.split(",")]
        std = [float(v) for v in (args.image_std or "").split(",")]
    except ValueError:
        mean = std = []
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"image_mean {args.image_mean!r} / image_std {args.image_std!r}: expected `dataset`, `clip`, "
                         "or three comma-separated means with three positive stds")
    return mean, std


def prepare_training(args: TowerArguments, training_args: TrainingArguments) -> TowerRun:
    shape = TowerShape(args.image_size, args.patch_size, args.vision_hidden_size, args.vision_layers,
                       args.vision_heads, args.text_hidden_size, args.text_layers, args.text_heads,
                       args.projection_dim, args.max_text_length)
    schema = HeadSchema.parse(args.head_questions) if args.morphology_weight > 0 else None
    question_weights = schema.loss_weights(args.head_question_weights) if schema is not None else None  # checked
    # Model first: a wrong checkpoint fails before the (slower) data loading.
    dual, tokenizer, base_models = build_dual_encoder(args.clip_model_name_or_path, args.vision_model_name_or_path,
                                                      args.text_model_name_or_path, args.tokenizer_name_or_path, shape)
    tower_size = dual.config.vision_config.image_size
    if tower_size != args.image_size:
        raise ValueError(f"image_size {args.image_size} does not match the vision tower's {tower_size}; "
                         f"set image_size: {tower_size}")
    if args.lock_text_tower:
        lock_text_tower(dual)
    model = GZClipForTraining(dual, schema, args.contrastive_weight, args.morphology_weight, args.use_vote_counts,
                              args.head_dropout, question_weights)
    train_table, eval_table = load_tables(args, schema or HeadSchema.parse("decals"))
    if schema is not None and not bool(train_table.reached.any()):
        raise ValueError(f"dataset {args.dataset_name!r}: no training galaxy has vote shares for the head questions "
                         f"{[q.key for q in schema.questions]}")
    if schema is not None:
        warn_single_answer_questions(train_table, schema)
    if schema is not None and args.teacher_model_name_or_path:
        # ensemble distillation: the head's training targets mix in the teachers' mean shares (teachers.py)
        train_table = distil_targets(train_table, args.teacher_model_name_or_path, args.teacher_weight, schema,
                                     training_args.per_device_eval_batch_size)
    mean, std = normalisation(args, train_table)
    processor = make_processor(dual, image_processor_for(args.image_size, args.stored_size, mean, std), tokenizer)
    texts = tokenizer if args.contrastive_weight > 0 else None
    max_length = min(args.max_text_length, dual.config.text_config.max_position_embeddings)
    train_collator = TowerCollator(train_table, schema, args.image_size, mean, std, texts, max_length,
                                   augment=args.augment, jitter=args.crop_jitter, seed=training_args.seed,
                                   any_angle=args.any_angle, zoom=args.zoom)
    eval_collator = TowerCollator(eval_table or train_table, schema, args.image_size, mean, std, texts, max_length)

    class _Trainer(Trainer):
        """Training batches are augmented; evaluation batches are the plain centre crops."""

        def get_eval_dataloader(self, eval_dataset=None):
            self.data_collator = eval_collator
            try:
                return super().get_eval_dataloader(eval_dataset)
            finally:
                self.data_collator = train_collator

    if eval_table is None and training_args.eval_strategy != "no":
        training_args.eval_strategy = "no"
    trainer = _Trainer(model=model, args=training_args, train_dataset=IndexDataset(train_table),
                       eval_dataset=IndexDataset(eval_table) if eval_table is not None else None,
                       data_collator=train_collator)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("GZ-CLIP: %s, %d trainable parameters, %d train / %s eval galaxies", type(dual).__name__, trainable,
                len(train_table), len(eval_table) if eval_table is not None else "no")
    return TowerRun(args, training_args, model, processor, trainer, train_table, eval_table, base_models, mean, std)


def train(run: TowerRun) -> None:
    result = run.trainer.train(resume_from_checkpoint=run.training_args.resume_from_checkpoint)
    run.metrics.update({k: v for k, v in result.metrics.items() if isinstance(v, (int, float))})
    if run.eval_table is not None:
        run.metrics.update(run.trainer.evaluate())


def save_trained_model(run: TowerRun) -> Path:
    folder = run.tower_args.export_path(run.training_args.output_dir)
    if run.trainer.is_world_process_zero():
        save_tower(folder, run.model, run.processor)
        settings = {"tower_arguments": {k: v for k, v in asdict(run.tower_args).items() if v is not None},
                    "training_arguments": {k: getattr(run.training_args, k) for k in (
                        "learning_rate", "weight_decay", "per_device_train_batch_size", "num_train_epochs",
                        "max_steps", "lr_scheduler_type", "warmup_steps", "seed")},
                    "image_mean": run.image_mean, "image_std": run.image_std,
                    "train_galaxies": len(run.train_table), "metrics": run.metrics}
        (folder / "training_summary.json").write_text(json.dumps(settings, indent=2, default=str) + "\n")
        write_model_card(folder, run.model, run.tower_args, settings, run.base_models,
                         run.trainer.state.log_history)
    return folder


def run_training(tower_args: TowerArguments, training_args: TrainingArguments) -> Path:
    run = prepare_training(tower_args, training_args)
    train(run)
    return save_trained_model(run)
