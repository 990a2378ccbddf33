"""The model card (README.md) of a GZ-CLIP folder: metadata, usage, how it was trained, head, curve, metrics."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData


def _curve(log_history: list[dict]) -> list[str]:
    rows = [e for e in log_history if "loss" in e or "eval_loss" in e]
    if not rows:
        return ["_No logged steps._"]
    lines = ["| step | epoch | train loss | eval loss |", "|---:|---:|---:|---:|"]
    for e in rows[-20:]:
        fmt = lambda k: f"{e[k]:.4f}" if k in e else ""  # noqa: E731
        lines.append(f"| {e.get('step', '')} | {e.get('epoch', 0):.2f} | {fmt('loss')} | {fmt('eval_loss')} |")
    return lines


def write_model_card(folder: Path, model, args, settings: dict, base_models: list[str], log_history: list[dict]) -> Path:
    dual = model.dual_encoder
    vision = dual.config.vision_config
    data = ModelCardData(
        library_name="transformers", pipeline_tag="zero-shot-image-classification", license="apache-2.0",
        tags=["galaxy-zoo", "astronomy", "clip", "gz-llava", "vision-tower"],
        base_model=base_models or None,
        datasets=[args.dataset_hub_id] if args.dataset_hub_id else None,
    )
    objectives = []
    if args.contrastive_weight > 0:
        objectives.append(f"image-text InfoNCE (weight {args.contrastive_weight:g}; identical texts in a batch count "
                          "as positives)")
    if model.head is not None:
        objectives.append(f"morphology head on vote shares (weight {args.morphology_weight:g}): per-question soft "
                          "cross-entropy, Dirichlet-multinomial where vote counts are known, unreached questions masked")
    head_lines = ([f"- `{q.key}`: {', '.join(q.answers)}" for q in model.schema.questions]
                  if model.head is not None else ["_No head._"])
    text = "\n".join([
        "---", data.to_yaml(), "---", "",
        "# GZ-CLIP vision tower", "",
        f"A {type(dual).__name__} trained on Galaxy Zoo galaxies by `train_clip.py` (gz-llava). Vision tower: "
        f"{vision.model_type}, {vision.num_hidden_layers} layers, width {vision.hidden_size}, "
        f"{vision.image_size} px input, patch {vision.patch_size}.", "",
        "## Use", "",
        "```python",
        "from transformers import pipeline",
        "import gzllava.tower  # only needed for a VisionTextDualEncoderModel folder (registers it for the pipeline)",
        "clf = pipeline(\"zero-shot-image-classification\", model=\"THIS_FOLDER\")",
        "clf(\"galaxy.jpg\", candidate_labels=[\"a smooth galaxy\", \"a disk galaxy\", \"an edge-on disk\"])",
        "",
        "from gzllava.tower.model import load_tower",
        "model, processor, head, schema = load_tower(\"THIS_FOLDER\")  # head: vote-share logits from the tower",
        "```", "",
        "As the vision tower of a GZ-LLaVA: `compose_gzllava(\"THIS_FOLDER\", lm, tokenizer)` or "
        "`train_sft.py --vision_model_name_or_path THIS_FOLDER --text_model_name_or_path LM ...`.", "",
        "## Training", "",
        f"- data: `{args.dataset_name}` ({args.source}, config `{args.dataset_config}`), "
        f"{settings['train_galaxies']} training galaxies",
        f"- objectives: {'; '.join(objectives)}",
        f"- images: resized to {args.stored_size} px, {args.image_size} px crops (jitter {args.crop_jitter} px), "
        f"augmentation {'rot90 + mirror flips (flips swap clockwise/anticlockwise)' if args.augment else 'off'}, "
        f"normalisation mean {[round(v, 4) for v in settings['image_mean']]}, std "
        f"{[round(v, 4) for v in settings['image_std']]}",
        f"- recipe: `{args.recipe}`" if args.recipe else "- recipe: command line",
        "", "```json", json.dumps(settings["training_arguments"], indent=2, default=str), "```", "",
        "## Morphology head", "", *head_lines, "",
        "## Training curve", "", *_curve(log_history), "",
        "## Final metrics", "", "```json", json.dumps(settings["metrics"], indent=2, default=str), "```", "",
    ])
    ModelCard(text).save(folder / "README.md")
    return folder / "README.md"
