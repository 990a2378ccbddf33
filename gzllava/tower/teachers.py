"""Ensemble distillation of the morphology head: soft targets from the mean predicted vote shares of teacher towers.

`train_clip.py --teacher_model_name_or_path A,B,... --teacher_weight w`: before training, every teacher (a GZ-CLIP
folder with a morphology head whose questions and answers are exactly the student's) predicts the vote shares
(`HeadSchema.probabilities`, a softmax per question) of every training galaxy once, on the un-augmented image seen
through the teacher's own image processing (its resize, centre crop and normalisation; `teacher_shares`). The head's
target then becomes, per reached question,

    (1 - w) * volunteers' shares + w * mean of the teachers' shares

(`mix_targets`; w = 0: exactly the volunteers' shares, w = 1: the teachers' mean). Questions a galaxy does not reach
stay masked (their shares stay 0), so a teacher never adds a question the catalogue lacks. The mixed shares replace
the table's shares, so a mirrored training view gets its mixed shares mirrored exactly as the volunteers' shares are
(`TowerCollator`, `HeadSchema.mirror_permutation`). The evaluation split (train_holdout) keeps the volunteers' shares.

Dirichlet-multinomial rule: vote counts describe the volunteers' votes, not a mix, so with w > 0 the training
galaxies' counts are dropped and the head loss is the soft cross-entropy on the mixed shares for every question
(`use_vote_counts` has no effect on training then; a line says so when counts were known). With w = 0 the counts
are kept and the targets are exactly the old ones.

Teachers are checked before anything loads (`check_teachers`): a folder that is not a GZ-CLIP tower with a head, or
whose head schema differs from the student's, is one error naming it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import resize_image
from .metrics import image_features, pixel_batches
from .questions import HeadSchema

logger = logging.getLogger(__name__)

ARGUMENT = "teacher_model_name_or_path"


def teacher_paths(spec: str | None) -> list[str]:
    """The comma-separated teacher folders, stripped, empty items dropped."""
    return [p.strip() for p in (spec or "").split(",") if p.strip()]


def check_teachers(spec: str | None, schema: HeadSchema) -> list[str]:
    """The teacher folders, each a GZ-CLIP folder (a dual-encoder config.json) with a morphology head whose schema
    is `schema`'s; the first that is not fails with one error naming it and what is wrong. Reads only JSON."""
    from .model import DUAL_ENCODER_TYPES, HEAD_CONFIG, HEAD_WEIGHTS

    paths = teacher_paths(spec)
    if not paths:
        raise ValueError(f"{ARGUMENT} {spec!r}: no teacher folder given")
    want = schema.to_dict()["questions"]
    for path in paths:
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"{ARGUMENT}: {path!r} is not a folder (expected a GZ-CLIP tower folder, "
                             "e.g. outputs/exp/tower48/final)")
        try:
            model_type = json.loads((folder / "config.json").read_text()).get("model_type")
        except (OSError, ValueError) as error:
            raise ValueError(f"{ARGUMENT}: {path!r} has no readable config.json; not a GZ-CLIP tower "
                             f"({type(error).__name__})") from error
        if model_type not in DUAL_ENCODER_TYPES:
            raise ValueError(f"{ARGUMENT}: {path!r} is a {model_type!r} checkpoint, not a GZ-CLIP tower "
                             f"(model types {list(DUAL_ENCODER_TYPES)})")
        if not (folder / HEAD_CONFIG).is_file() or not (folder / HEAD_WEIGHTS).is_file():
            raise ValueError(f"{ARGUMENT}: {path!r} is a tower without a morphology head ({HEAD_CONFIG} + "
                             f"{HEAD_WEIGHTS}); a teacher must predict vote shares")
        try:
            got = HeadSchema.from_dict(json.loads((folder / HEAD_CONFIG).read_text())).to_dict()["questions"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{ARGUMENT}: {path!r}: unreadable {HEAD_CONFIG} ({error})") from error
        if got != want:
            raise ValueError(f"{ARGUMENT}: {path!r} has head questions {_describe(got)}, the student's head_questions "
                             f"give {_describe(want)}; a teacher's head schema must be the student's")
    return paths


def _describe(questions: list[dict]) -> str:
    return "[" + "; ".join(f"{q['key']}: {','.join(q['answers'])}" for q in questions) + "]"


def _resize_stored(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, R, R) uint8 -> (N, 3, size, size), resized as the builds store images (`data.resize_image`)."""
    out = [resize_image(Image.fromarray(image.permute(1, 2, 0).numpy()), size) for image in images]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def predict_shares(folder: str, images: torch.Tensor, schema: HeadSchema, batch_size: int = 256) -> torch.Tensor:
    """(N, A) predicted vote shares of one teacher tower for stored uint8 images (N, 3, R, R), each question's slice
    summing to 1. The teacher's own processing: stored images resized to its `shortest_edge` when R differs (a
    second bicubic resampling, logged), then its centre crop and mean/std (`metrics.pixel_batches`)."""
    from .model import load_tower

    model, processor, head, teacher_schema = load_tower(folder)
    if head is None or teacher_schema.to_dict() != schema.to_dict():
        raise ValueError(f"{ARGUMENT}: {folder!r}: its head schema is not the student's")
    ip = processor.image_processor
    stored, crop = int(ip.size["shortest_edge"]), int(ip.crop_size["height"])
    if len(images) and images.shape[-1] != stored:
        logger.info("teacher %s: stored images %d px resized to its %d px", folder, images.shape[-1], stored)
        images = _resize_stored(images, stored)
    if not len(images):
        return torch.zeros(0, schema.num_answers)
    pooled, _ = image_features(model, pixel_batches(images, crop, ip.image_mean, ip.image_std, batch_size))
    return schema.probabilities(head(pooled))


def teacher_shares(paths: list[str], images: torch.Tensor, schema: HeadSchema, batch_size: int = 256) -> torch.Tensor:
    """(N, A): the teachers' mean predicted vote shares (per question, each slice sums to 1)."""
    shares = [predict_shares(p, images, schema, batch_size) for p in paths]
    return torch.stack(shares).mean(0)


def mix_targets(table, teacher: torch.Tensor, weight: float, schema: HeadSchema):
    """A copy of `table` (GalaxyTable) whose shares are (1 - weight) * shares + weight * teacher on reached questions
    (unreached: 0, masked as before). weight 0: the same shares and counts; weight > 0: counts dropped (NaN), so the
    head loss is the soft cross-entropy on the mixed shares."""
    from .data import GalaxyTable

    if not 0 <= weight <= 1:
        raise ValueError(f"teacher_weight {weight}: expected a share in [0, 1]")
    if teacher.shape != table.shares.shape:
        raise ValueError(f"teacher shares {tuple(teacher.shape)} do not match the table's {tuple(table.shares.shape)}")
    if weight == 0:
        return GalaxyTable(table.ids, table.images, table.texts, table.shares.clone(), table.reached,
                           table.counts.clone())
    reached_answers = torch.zeros_like(table.shares, dtype=torch.bool)
    for q, sl in enumerate(schema.slices()):
        reached_answers[:, sl] = table.reached[:, q : q + 1]
    mixed = (1 - weight) * table.shares + weight * teacher.to(table.shares.dtype)
    shares = torch.where(reached_answers, mixed, torch.zeros_like(mixed))
    known = torch.isfinite(table.counts) & table.reached
    if bool(known.any()):
        logger.info("teacher targets: %d known vote counts dropped; the head loss is the soft cross-entropy on the "
                    "mixed shares", int(known.sum()))
    counts = torch.full_like(table.counts, float("nan"))
    return GalaxyTable(table.ids, table.images, table.texts, shares, table.reached, counts)


def distil_targets(table, spec: str, weight: float, schema: HeadSchema, batch_size: int = 256):
    """The training table with the teachers' mixed targets (`teacher_shares` then `mix_targets`), logged."""
    paths = check_teachers(spec, schema)
    teacher = teacher_shares(paths, table.images, schema, batch_size)
    reached_answers = torch.cat([table.reached[:, q : q + 1].expand(-1, sl.stop - sl.start)
                                 for q, sl in enumerate(schema.slices())], dim=1)
    if bool(reached_answers.any()):
        gap = (teacher - table.shares).abs()[reached_answers].mean().item()
        logger.info("teachers: %d towers, %d training galaxies; mean |teacher share - volunteers' share| %.3f on "
                    "reached answers; teacher_weight %.3g", len(paths), len(table), gap, weight)
    return mix_targets(table, teacher, weight, schema)
