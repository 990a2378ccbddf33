"""Compose a new, untrained GZ-LLaVA from any vision tower and any causal LM (the start of stage-1 training).

The language model is reused as it is: its weights, its tokenizer plus the `<image>` token (and
`<boi>`/`<eoi>` when asked) and a pad token if it has none. Embedding rows are added for the new
tokens only, so on text alone the composed model's logits over the LM's vocabulary are the LM's own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    CLIPImageProcessorPil,
    CLIPVisionModel,
    PreTrainedModel,
    SiglipImageProcessorPil,
    SiglipVisionModel,
)

from configuration_gzllava import PROJECTOR_TYPES, VISION_TOWERS_WITH_CLS, GZLlavaConfig
from modeling_gzllava import PROJECTORS, GZLlavaForConditionalGeneration
from processing_gzllava import CHAT_TEMPLATE, DEFAULT_PROMPT, GZLlavaProcessor


logger = logging.getLogger(__name__)

IMAGE_TOKEN, BOI_TOKEN, EOI_TOKEN, PAD_TOKEN = "<image>", "<boi>", "<eoi>", "<pad>"

# (PIL image processors: they need no torchvision.)
# CLIP/SigLIP checkpoints (full dual-encoder or vision-only) -> the vision-only model class to load.
VISION_CLASSES = {
    "clip": CLIPVisionModel,
    "clip_vision_model": CLIPVisionModel,
    "siglip": SiglipVisionModel,
    "siglip_vision_model": SiglipVisionModel,
}


@dataclass(frozen=True)
class ComposeSettings:
    """How `compose_gzllava` joins a tower and an LM: the projector, the image delimiters, which vision features
    are read and how images are preprocessed. Each default and help is written here once; `train_sft.py`'s flags of
    the same names take theirs from these fields (`GZLlavaArguments`)."""

    projector_type: str = field(
        default="mlp2x_gelu",
        metadata={"help": "The projector from vision features to LM embeddings.", "choices": list(PROJECTOR_TYPES)},
    )
    num_query_tokens: int = field(
        default=64, metadata={"help": "Resampler queries: image tokens per image (the other projectors ignore it)."}
    )
    use_image_delimiters: bool = field(default=False, metadata={"help": "Wrap each image's tokens in <boi>/<eoi>."})
    vision_feature_layer: int | list[int] = field(
        default=-2, metadata={"help": "The tower's hidden layer (or layers, concatenated) that the projector reads."}
    )
    vision_feature_select_strategy: str | None = field(
        default=None,
        metadata={"help": "'default' drops the tower's CLS token, 'full' keeps every token; unset: 'default' for CLIP, "
                  "'full' for SigLIP.", "choices": ["default", "full"]},
    )
    vision_feature_views: int = field(
        default=1,
        metadata={"help": "1: the tower sees the image as given; 8: the projector reads the mean of the tower's features "
                  "over the image's 8 dihedral views (quarter turns, mirrored), at 8x the tower's cost.",
                  "choices": [1, 8]},
    )
    image_standardization: bool = field(
        default=False, metadata={"help": "Standardise each image's pixels (dark-sky cutouts)."}
    )
    default_prompt: str = field(
        default=DEFAULT_PROMPT, metadata={"help": "The question asked when a pipeline gets an image and no text."}
    )

    def override(self, kwargs: dict) -> tuple[ComposeSettings, dict]:
        """These settings with the keywords that name a field replaced, and the remaining keywords."""
        names = {setting.name for setting in fields(self)}
        ours = {name: value for name, value in kwargs.items() if name in names}
        return replace(self, **ours), {name: value for name, value in kwargs.items() if name not in names}


def load_vision_tower(name_or_path: str, **kwargs) -> PreTrainedModel:
    """A CLIP or SigLIP vision tower from a full CLIP/SigLIP checkpoint, a vision-only one, or a dual encoder
    (`VisionTextDualEncoderModel`, e.g. a GZ-CLIP folder from train_clip.py) with a CLIP/SigLIP vision side."""
    config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    model_type = config.model_type
    if model_type == "vision-text-dual-encoder" and config.vision_config.model_type in VISION_CLASSES:
        from transformers import VisionTextDualEncoderModel

        tower = VisionTextDualEncoderModel.from_pretrained(name_or_path, **kwargs).vision_model
        tower.config._name_or_path = str(name_or_path)  # where its saved image processor is (compose_gzllava)
        return tower
    if model_type not in VISION_CLASSES:
        raise ValueError(
            f"{name_or_path} is a {model_type!r} checkpoint; GZ-LLaVA needs a CLIP or SigLIP vision tower "
            f"(model types {sorted(VISION_CLASSES)})."
        )
    return VISION_CLASSES[model_type].from_pretrained(name_or_path, **kwargs)


def saved_image_processor(vision_model):
    """The image processor saved next to a local tower checkpoint (e.g. GZ-CLIP's resize, crop, galaxy mean/std)."""
    import os

    folder = getattr(vision_model, "name_or_path", "") or ""
    if not any(os.path.isfile(os.path.join(folder, f)) for f in ("preprocessor_config.json", "processor_config.json")):
        return None
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(folder)


def default_image_processor(vision_config):
    """The image processor a CLIP/SigLIP tower of this config was trained with (resize + centre crop + normalise)."""
    size = vision_config.image_size
    if vision_config.model_type == "siglip_vision_model":
        return SiglipImageProcessorPil(size={"height": size, "width": size})
    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def add_gzllava_tokens(tokenizer, use_image_delimiters: bool) -> dict[str, int]:
    """Add `<image>` (and `<boi>`, `<eoi>`) as special tokens, plus a pad token if missing; return their ids."""
    new_tokens = [IMAGE_TOKEN] + ([BOI_TOKEN, EOI_TOKEN] if use_image_delimiters else [])
    tokenizer.add_tokens(new_tokens, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return {token: tokenizer.convert_tokens_to_ids(token) for token in new_tokens}


def compose_gzllava(
    vision_model: PreTrainedModel | str,
    language_model: PreTrainedModel | str,
    tokenizer=None,
    image_processor=None,
    settings: ComposeSettings | None = None,
    seed: int = 0,
    **kwargs,
) -> tuple[GZLlavaForConditionalGeneration, GZLlavaProcessor]:
    """Build `(model, processor)`: the given vision tower and LM, a freshly initialised projector.

    `vision_model`/`language_model` are models or names/paths (a full CLIP/SigLIP checkpoint is fine: its vision
    tower is taken). `tokenizer` defaults to the LM's. `settings` defaults to `ComposeSettings()`; keyword arguments
    naming one of its fields (`projector_type="resampler"`) override it, the others go to `GZLlavaConfig`.
    """
    if settings is not None and not isinstance(settings, ComposeSettings):
        raise TypeError(f"compose_gzllava: settings must be a ComposeSettings, not {type(settings).__name__}.")
    settings, config_kwargs = (settings or ComposeSettings()).override(kwargs)
    if isinstance(vision_model, str):
        vision_model = load_vision_tower(vision_model)
    if isinstance(language_model, str):
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(language_model)
        language_model = AutoModelForCausalLM.from_pretrained(language_model)
    if tokenizer is None:
        raise ValueError("compose_gzllava needs the language model's tokenizer when the language model is passed as a module.")
    if hasattr(vision_model, "vision_model") and not isinstance(vision_model, (CLIPVisionModel, SiglipVisionModel)):
        raise ValueError(f"Pass the vision tower, not the dual encoder {type(vision_model).__name__}: use load_vision_tower().")

    token_ids = add_gzllava_tokens(tokenizer, settings.use_image_delimiters)
    # Generation continues from the right end of every row, so batched inference pads on the left (as llava-hf's
    # processors do); TRL's training collator asks for right padding in each call.
    tokenizer.padding_side = tokenizer.init_kwargs["padding_side"] = "left"  # init_kwargs: what save_pretrained writes
    if len(tokenizer) > language_model.get_input_embeddings().num_embeddings:
        # New rows for the new tokens only; the LM's existing rows, and so its text-only logits, are untouched.
        language_model.resize_token_embeddings(len(tokenizer), mean_resizing=True)

    vision_config = vision_model.config
    strategy = settings.vision_feature_select_strategy or (
        "default" if vision_config.model_type in VISION_TOWERS_WITH_CLS else "full"
    )
    config = GZLlavaConfig(
        vision_config=vision_config.to_dict(),
        text_config=language_model.config.to_dict(),
        image_token_id=token_ids[IMAGE_TOKEN],
        boi_token_id=token_ids.get(BOI_TOKEN),
        eoi_token_id=token_ids.get(EOI_TOKEN),
        use_image_delimiters=settings.use_image_delimiters,
        projector_type=settings.projector_type,
        num_query_tokens=settings.num_query_tokens,
        vision_feature_layer=settings.vision_feature_layer,
        vision_feature_select_strategy=strategy,
        vision_feature_views=settings.vision_feature_views,
        **config_kwargs,
    )
    config.text_config._attn_implementation = language_model.config._attn_implementation
    config.vision_config._attn_implementation = vision_model.config._attn_implementation

    # Build the empty shell on the meta device (no memory for a second copy of a 7B model), then put the real
    # tower and LM in place and give only the projector fresh weights.
    with torch.device("meta"):
        model = GZLlavaForConditionalGeneration(config)
    model.model.vision_tower = vision_model
    model.model.language_model = language_model.base_model
    model.lm_head = language_model.get_output_embeddings()
    torch.manual_seed(seed)
    projector = PROJECTORS[settings.projector_type](config).to(dtype=language_model.dtype)
    projector.apply(model._init_weights)
    model.model.multi_modal_projector = projector
    model.generation_config = language_model.generation_config
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    # The model must never write an image placeholder (or a delimiter) itself.
    model.generation_config.suppress_tokens = sorted(token_ids.values())
    model.config.text_config.vocab_size = model.lm_head.out_features

    processor = GZLlavaProcessor(
        image_processor=image_processor or saved_image_processor(vision_model) or default_image_processor(vision_config),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=1 if vision_config.model_type in VISION_TOWERS_WITH_CLS else 0,
        num_query_tokens=settings.num_query_tokens if settings.projector_type == "resampler" else None,
        image_token=IMAGE_TOKEN,
        boi_token=BOI_TOKEN if settings.use_image_delimiters else None,
        eoi_token=EOI_TOKEN if settings.use_image_delimiters else None,
        image_standardization=settings.image_standardization,
        default_prompt=settings.default_prompt,
    )
    logger.info(
        "Composed GZ-LLaVA: %s + %s projector + %s (%d image tokens per image)",
        vision_config.model_type, settings.projector_type, config.text_config.model_type, config.num_image_tokens,
    )
    return model, processor
