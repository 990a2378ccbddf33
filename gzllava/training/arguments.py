"""Command-line and recipe arguments of `train_sft.py`: TRL's three dataclasses plus GZ-LLaVA's own.

`ScriptArguments` (dataset), `SFTConfig` (training) and `ModelConfig` (base model, LoRA, quantisation) are
TRL's, used as in TRL's example scripts; `GZLlavaArguments` holds what only GZ-LLaVA needs (the training
stage, how to compose a base model, the over-long sample policy, the export). A YAML recipe given with
`--config` sets defaults for all four; command-line flags override it; an unknown key is an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

from trl import ModelConfig, ScriptArguments, SFTConfig, TrlParser

from gzllava.compose import ComposeSettings


logger = logging.getLogger(__name__)

STAGES = ("align", "instruct", "full")
OVERLONG_POLICIES = ("drop", "error")
# `--model_name_or_path tiny`: the random tiny GZ-LLaVA of gzllava.tiny, built offline (CPU demo, tests).
TINY_MODEL = "tiny"
RESUME_LAST = ("last", "latest", "true")

# Defaults that differ from TRL's: GZ-LLaVA trains on the assistant's answers only.
GZLLAVA_SFT_DEFAULTS = {"assistant_only_loss": True}


def compose_field(name: str):
    """A `ComposeSettings` field as a flag for composing the base model, with that field's default and help."""
    setting = ComposeSettings.__dataclass_fields__[name]
    text = setting.metadata["help"]
    help_text = f"Composed base: {text[0].lower()}{text[1:]}"
    return field(default=setting.default, metadata={**setting.metadata, "help": help_text})


@dataclass
class GZLlavaArguments:
    """What a GZ-LLaVA training run needs beyond TRL's script, training and model arguments."""

    stage: str | None = field(
        default=None,
        metadata={
            "help": "align: projector only (vision tower and LM frozen); instruct: QLoRA on the language model's linear "
            "layers + the projector in full; full: projector and language model fully trained.",
            "choices": list(STAGES),
        },
    )
    vision_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Compose the base model: a CLIP/SigLIP checkpoint for the vision tower."}
    )
    text_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Compose the base model: a causal LM checkpoint (with its tokenizer)."}
    )
    projector_type: str = compose_field("projector_type")
    num_query_tokens: int = compose_field("num_query_tokens")
    use_image_delimiters: bool = compose_field("use_image_delimiters")
    vision_feature_layer: int = compose_field("vision_feature_layer")  # one layer here; ComposeSettings takes a list
    vision_feature_select_strategy: str | None = compose_field("vision_feature_select_strategy")
    vision_feature_views: int = compose_field("vision_feature_views")
    image_standardization: bool = compose_field("image_standardization")
    tiny_image_size: int = field(default=32, metadata={"help": "`--model_name_or_path tiny`: image size in pixels."})
    tiny_patch_size: int = field(default=8, metadata={"help": "`--model_name_or_path tiny`: vision patch size."})
    tiny_vision_hidden_size: int = field(default=32, metadata={"help": "`--model_name_or_path tiny`: vision width."})
    tiny_text_hidden_size: int = field(default=64, metadata={"help": "`--model_name_or_path tiny`: LM width."})
    tiny_layers: int = field(default=2, metadata={"help": "`--model_name_or_path tiny`: layers of tower and LM."})
    train_vision_tower: bool = field(
        default=False, metadata={"help": "Stage full: train the vision tower too (it needs a lower learning rate)."}
    )
    augment: bool = field(
        default=True,
        metadata={"help": "Random 90-degree rotations and flips of the training images (galaxies have no up), "
                  "deterministic per seed, epoch and image so that a resumed run sees the same images."},
    )
    overlong: str = field(
        default="drop",
        metadata={
            "help": "Samples longer than max_length (image tokens included): drop them before training and log "
            "the count, or stop with an error. They are never truncated (that would cut image tokens).",
            "choices": list(OVERLONG_POLICIES),
        },
    )
    save_adapter_only: bool = field(
        default=False, metadata={"help": "Stage instruct: export the LoRA adapter (+ projector) instead of merged weights."}
    )
    export_dir: str | None = field(
        default=None, metadata={"help": "The Hub-ready folder that is written (and pushed); default <output_dir>/final."}
    )
    dataset_hub_id: str | None = field(
        default=None, metadata={"help": "Dataset id for the model card when --dataset_name is a local folder."}
    )
    recipe: str | None = field(
        default=None, metadata={"help": "The YAML recipe's path (train_sft.py sets it from --config; quoted in the card)."}
    )

    def __post_init__(self):
        if self.stage is not None and self.stage not in STAGES:
            raise ValueError(f"GZLlavaArguments: unknown stage {self.stage!r}; expected one of {STAGES}.")
        if self.overlong not in OVERLONG_POLICIES:
            raise ValueError(f"GZLlavaArguments: unknown overlong={self.overlong!r}; expected one of {OVERLONG_POLICIES}.")

    def compose_settings(self) -> ComposeSettings:
        """How a base model (or `tiny`) is composed: the flags above, `ComposeSettings`' defaults for the rest."""
        names = {setting.name for setting in fields(ComposeSettings)}
        return ComposeSettings(**{arg.name: getattr(self, arg.name) for arg in fields(self) if arg.name in names})

    def export_path(self, output_dir: str) -> Path:
        return Path(self.export_dir) if self.export_dir else Path(output_dir) / "final"


def make_parser() -> TrlParser:
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig, GZLlavaArguments))
    parser.set_defaults(**GZLLAVA_SFT_DEFAULTS)
    return parser


def check_recipe_keys(recipe: str, parser: TrlParser, script: str = "train_sft.py") -> None:
    """Unknown keys fail first, naming the file (TRL would first build the arguments, then complain).

    Shared by train_sft.py and train_clip.py (`script` names the one whose --help lists the arguments)."""
    import yaml

    path = Path(recipe)
    if not path.is_file():
        raise FileNotFoundError(f"Recipe not found: {recipe}")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ValueError(f"Recipe {recipe} must be a YAML mapping of argument names to values.")
    known = {action.dest for action in parser._actions} | {"env"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"Recipe {recipe}: unknown key(s) {unknown}. Run `python {script} --help` for the arguments.")


def parse_with_recipe(parser: TrlParser, argv: list[str] | None, script: str) -> tuple:
    """The parser's dataclasses from a recipe (`--config FILE`) and flags, shared by train_sft.py and train_clip.py.

    Unknown recipe keys and unknown flags fail first, naming the file or the flags; the dataclass with a `recipe` field
    gets the recipe path there when it has none."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    recipe = argv[argv.index("--config") + 1] if "--config" in argv[:-1] else None
    if recipe is not None:
        check_recipe_keys(recipe, parser, script)
    flags = [arg for i, arg in enumerate(argv) if arg != "--config" and (i == 0 or argv[i - 1] != "--config")]
    _, unknown = parser.parse_known_args(flags)
    if unknown:
        raise ValueError(f"Unknown command-line argument(s) {unknown}. Run `python {script} --help` for the arguments.")
    parsed = tuple(parser.parse_args_and_config(argv))
    for arguments in parsed:
        if recipe is not None and getattr(arguments, "recipe", "") is None:
            arguments.recipe = recipe
    return parsed


def parse_arguments(argv: list[str] | None = None):
    """`(script_args, training_args, model_args, gz_args)` from a recipe (`--config`) and flags; unknown keys fail."""
    return parse_with_recipe(make_parser(), argv, "train_sft.py")


def validate_arguments(script_args: ScriptArguments, training_args: SFTConfig, model_args: ModelConfig,
                       gz_args: GZLlavaArguments) -> None:
    """Every inconsistency that can be seen before loading anything, as one clear error."""
    problems = []
    if gz_args.stage is None:
        problems.append(f"no stage: set `stage` to one of {STAGES}")
    if not script_args.dataset_name:
        problems.append("no dataset: set `dataset_name` (a Hub id or the dataset builder's output folder)")
    composing = bool(gz_args.vision_model_name_or_path or gz_args.text_model_name_or_path)
    if composing and model_args.model_name_or_path:
        problems.append("give either model_name_or_path (a GZ-LLaVA/llava-hf checkpoint, or `tiny`) or "
                        "vision_model_name_or_path + text_model_name_or_path (compose), not both")
    elif composing and not (gz_args.vision_model_name_or_path and gz_args.text_model_name_or_path):
        problems.append("composing a base model needs both vision_model_name_or_path and text_model_name_or_path")
    elif not composing and not model_args.model_name_or_path:
        problems.append("no base model: set model_name_or_path, or vision_model_name_or_path + text_model_name_or_path")
    compose_flags = [f.name for f in fields(ComposeSettings) if getattr(gz_args, f.name, f.default) != f.default]
    if model_args.model_name_or_path not in (None, TINY_MODEL) and not composing and compose_flags:
        # A warning, not an error: a composing recipe run with --model_name_or_path overridden is a fair use.
        logger.warning("%s only apply when a base model is composed (vision_model_name_or_path + "
                       "text_model_name_or_path, or `tiny`): ignored, %s keeps its own.",
                       ", ".join(compose_flags), model_args.model_name_or_path)
    quantized = model_args.load_in_4bit or model_args.load_in_8bit
    if gz_args.stage in ("align", "full") and (model_args.use_peft or quantized):
        problems.append(f"stage {gz_args.stage} trains full-precision weights: unset use_peft/load_in_4bit/load_in_8bit "
                        "(QLoRA is stage instruct)")
    if gz_args.stage == "instruct":
        if not model_args.use_peft:
            problems.append("stage instruct is LoRA training: set use_peft: true (and load_in_4bit: true for QLoRA)")
        if model_args.load_in_8bit:
            problems.append("stage instruct quantises the language model in 4-bit NF4 (load_in_4bit), not 8-bit")
        targets = model_args.lora_target_modules
        targets = [targets] if isinstance(targets, str) else list(targets or [])
        if "lm_head" in targets:
            problems.append("LoRA on lm_head is not supported (TRL computes the loss from lm_head.weight directly)")
    if gz_args.save_adapter_only and gz_args.stage != "instruct":
        problems.append("save_adapter_only is for stage instruct (the other stages have no adapter)")
    if gz_args.train_vision_tower and gz_args.stage != "full":
        problems.append("train_vision_tower is for stage full")
    if training_args.push_to_hub and not training_args.hub_model_id:
        problems.append("push_to_hub needs hub_model_id (e.g. org/gz-llava)")
    if training_args.packing or training_args.padding_free:
        problems.append("packing/padding_free are not supported for image-text data")
    if problems:
        raise ValueError("Invalid training arguments: " + "; ".join(problems))
    if not training_args.assistant_only_loss:
        logger.warning("assistant_only_loss is off: the loss also covers the prompts.")
