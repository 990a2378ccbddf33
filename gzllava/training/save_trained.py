"""The end of a run: the trained model saved as a Hub-ready folder (merged weights, or the adapter alone), with its
model card and training curve; every folder is written by `gzllava.hub.save_for_hub`.

LoRA is merged into a separately loaded full-precision base, never into the 4-bit weights it was trained
against (merging into NF4 weights would re-quantise the sum and lose most of the update).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from peft import PeftModel

from gzllava.hub import save_for_hub
from gzllava.model_card import card_safe

from .base_model import load_full_precision_base


logger = logging.getLogger(__name__)

TRAINING_CURVE = "training_curve.png"
ADAPTER_DIR = "adapter"
CARD_METRICS = ("eval_loss", "eval_mean_token_accuracy", "train_loss", "train_samples_per_second", "total_flos")


def plot_training_curve(log_history: list[dict], path: Path) -> bool:
    """Training (and evaluation) loss against the step, as a PNG; False when nothing was logged."""
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    evaluation = [(entry["step"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    if not train and not evaluation:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5), dpi=120)
    if train:
        axis.plot(*zip(*train), label="train loss")
    if evaluation:
        axis.plot(*zip(*evaluation), "o-", label="eval loss")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss (assistant tokens)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def metrics_table(metrics: dict) -> str | None:
    rows = [(key, metrics[key]) for key in CARD_METRICS if key in metrics]
    rows += [(key, value) for key, value in metrics.items() if key.startswith("dropped_overlong")]
    if not rows:
        return None
    fmt = lambda value: f"{value:.4g}" if isinstance(value, float) else str(value)  # noqa: E731
    return "| metric | value |\n|---|---|\n" + "\n".join(f"| {key} | {fmt(value)} |" for key, value in rows)


def _cast_floating(state_dict: dict, dtype: torch.dtype) -> dict:
    """One dtype for every floating weight (the projector was trained in float32 inside a 16-bit model)."""
    return {key: value.to(dtype) if value.is_floating_point() else value for key, value in state_dict.items()}


def merge_adapter(run, adapter_dir: Path):
    """The full-precision base with the trained LoRA merged in and the trained projector in place."""
    base = load_full_precision_base(run.base, run.model_args)
    dtype = base.dtype
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    return merged.to(dtype)


def card_kwargs(run, export_dir: Path) -> dict:
    training = dict(run.card_training)
    curve = TRAINING_CURVE if plot_training_curve(run.trainer.state.log_history, export_dir / TRAINING_CURVE) else None
    return {
        "repo_id": run.training_args.hub_model_id or Path(run.training_args.output_dir).name,
        # Hub metadata lists Hub ids only: a local folder (a composed tower/LM on disk) is no base_model there
        "base_models": [name for name in run.base.base_models
                        if not (os.path.isabs(name) or os.path.exists(os.path.expanduser(name)))] or None,
        "datasets": [run.dataset_id] if run.dataset_id else None,
        "training": training,
        "metrics_table": metrics_table(run.metrics),
        "training_curve": curve,
    }


def _fresh(export_dir: Path) -> None:
    if export_dir.exists():
        shutil.rmtree(export_dir)
    export_dir.mkdir(parents=True)


def save_trained_model(run) -> Path:
    """Write the run's Hub folder (every rank must call this: gathering sharded weights is collective)."""
    trainer = run.trainer
    export_dir = run.gz_args.export_path(run.training_args.output_dir)
    is_main = trainer.accelerator.is_main_process
    if run.peft and run.gz_args.save_adapter_only:
        state_dict = trainer.accelerator.get_state_dict(trainer.model)  # collective under FSDP / ZeRO-3
        if is_main:
            _fresh(export_dir)
            save_for_hub(trainer.accelerator.unwrap_model(trainer.model), trainer.processing_class, export_dir,
                         card_kwargs=card_kwargs(run, export_dir), state_dict=state_dict)  # peft keeps the adapter only
    elif run.peft:
        adapter_dir = Path(run.training_args.output_dir) / ADAPTER_DIR
        trainer.save_model(str(adapter_dir))  # adapter + projector (modules_to_save) + processor, gathered if sharded
        if is_main:
            merged = merge_adapter(run, adapter_dir)
            _fresh(export_dir)
            save_for_hub(merged, trainer.processing_class, export_dir, card_kwargs=card_kwargs(run, export_dir))
    else:
        state_dict = trainer.accelerator.get_state_dict(trainer.model)  # collective under FSDP / ZeRO-3
        if is_main:
            model = trainer.accelerator.unwrap_model(trainer.model)
            _fresh(export_dir)
            dtype = model.model.language_model.dtype
            save_for_hub(model, trainer.processing_class, export_dir, card_kwargs=card_kwargs(run, export_dir),
                         state_dict=_cast_floating(state_dict, dtype))
    if is_main:
        (export_dir / "training_summary.json").write_text(json.dumps(
            {"training": run.card_training, "metrics": card_safe(run.metrics)}, indent=2, default=str))
        logger.info("Hub-ready model folder: %s", export_dir)
    trainer.accelerator.wait_for_everyone()
    return export_dir
