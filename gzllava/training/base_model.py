"""The model a training run starts from: a GZ-LLaVA or llava-hf checkpoint, a freshly composed one, or `tiny`.

For QLoRA the language model is quantised to 4-bit NF4 on load (bitsandbytes quantises while loading), so a
composed base is first written to `<output_dir>/composed-base` and loaded back; that folder is also the
full-precision base the LoRA is merged into at the end, and what a resumed run starts from again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoProcessor, BitsAndBytesConfig
from trl import ModelConfig, SFTConfig

import gzllava  # noqa: F401  (registers GZ-LLaVA with the Auto classes)
from configuration_gzllava import GZLlavaConfig
from modeling_gzllava import GZLlavaForConditionalGeneration
from processing_gzllava import CHAT_TEMPLATE, GZLlavaProcessor

from .arguments import TINY_MODEL, GZLlavaArguments


logger = logging.getLogger(__name__)

COMPOSED_BASE_DIR = "composed-base"
# Never quantised: the frozen vision tower (small, and precision-sensitive), the trained projector and the LM head.
QUANTIZATION_SKIP_MODULES = ["model.vision_tower", "model.multi_modal_projector", "lm_head"]


@dataclass
class BaseModel:
    model: GZLlavaForConditionalGeneration
    processor: GZLlavaProcessor
    # Where the unquantised base can be loaded again (the LoRA merge); None for a base composed in memory.
    path: str | None
    # For the model card's `base_model` metadata.
    base_models: list[str] = field(default_factory=list)


def torch_dtype(name: str | None):
    if name in (None, "auto"):
        return name
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"Unknown dtype {name!r}: expected float32, bfloat16, float16 or auto.")
    return dtype


def quantization_config(model_args: ModelConfig) -> BitsAndBytesConfig | None:
    """4-bit NF4 (double quantisation when `use_bnb_nested_quant`) for the language model only."""
    if not model_args.load_in_4bit:
        return None
    compute_dtype = torch_dtype(model_args.dtype)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=model_args.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=model_args.use_bnb_nested_quant,
        bnb_4bit_compute_dtype=torch.float32 if compute_dtype in (None, "auto") else compute_dtype,
        bnb_4bit_quant_storage=model_args.bnb_4bit_quant_storage,
        # Skip patterns match full module names from the start; "vision_tower" alone would match nothing.
        llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES,
    )


def processor_from_llava(llava_processor) -> GZLlavaProcessor:
    """A GZ-LLaVA processor with a llava-hf processor's image processor, tokenizer and image-token expansion."""
    return GZLlavaProcessor(
        image_processor=llava_processor.image_processor,
        tokenizer=llava_processor.tokenizer,
        chat_template=CHAT_TEMPLATE,  # same llava-1.5 turns, plus the {% generation %} markers the loss mask needs
        patch_size=llava_processor.patch_size,
        vision_feature_select_strategy=llava_processor.vision_feature_select_strategy,
        num_additional_image_tokens=llava_processor.num_additional_image_tokens,
        image_token=llava_processor.image_token,
    )


def compose_base(model_args: ModelConfig, gz_args: GZLlavaArguments, seed: int):
    """(model, processor, base_models) composed from a tower and an LM, or the tiny test model."""
    settings = gz_args.compose_settings()
    if model_args.model_name_or_path == TINY_MODEL:
        from gzllava.tiny import tiny_model_and_processor

        model, processor = tiny_model_and_processor(
            image_size=gz_args.tiny_image_size,
            patch_size=gz_args.tiny_patch_size,
            vision_hidden_size=gz_args.tiny_vision_hidden_size,
            text_hidden_size=gz_args.tiny_text_hidden_size,
            layers=gz_args.tiny_layers,
            settings=settings,
            seed=seed,
        )
        return model, processor, []
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gzllava.compose import compose_gzllava, load_vision_tower

    # Loaded here in the run's dtype: a 7B LM loaded in float32 first would need twice the memory.
    load_kwargs = {"dtype": torch_dtype(model_args.dtype), "attn_implementation": model_args.attn_implementation}
    vision_name, text_name = gz_args.vision_model_name_or_path, gz_args.text_model_name_or_path
    try:
        vision_model = load_vision_tower(vision_name, **load_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(text_name)
        language_model = AutoModelForCausalLM.from_pretrained(text_name, **load_kwargs)
    except OSError as error:
        raise ValueError(f"Cannot compose the base model from {vision_name!r} and {text_name!r}: {error}") from error
    try:  # a tower saved with its image processor (GZ-CLIP: centre crop, dataset mean/std) is fed as it was trained
        from transformers import AutoImageProcessor

        image_processor = AutoImageProcessor.from_pretrained(vision_name)
    except (OSError, ValueError):
        image_processor = None  # compose_gzllava's default for the tower's image size
    model, processor = compose_gzllava(vision_model, language_model, tokenizer=tokenizer, image_processor=image_processor,
                                       settings=settings, seed=seed)
    return model, processor, [vision_name, text_name]


def load_checkpoint(path: str, model_args: ModelConfig, quantization: BitsAndBytesConfig | None):
    """(model, processor) from a GZ-LLaVA or llava-hf checkpoint (local folder or Hub id)."""
    revision = model_args.model_revision
    try:
        model_type = AutoConfig.from_pretrained(path, revision=revision).model_type
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot load the base model {path!r}: {error}") from error
    if model_type not in ("gzllava", "llava"):
        raise ValueError(
            f"Base model {path!r} is a {model_type!r} checkpoint, not GZ-LLaVA or llava-hf. To start from a vision "
            "tower and a text LM, pass vision_model_name_or_path and text_model_name_or_path instead."
        )
    model, info = GZLlavaForConditionalGeneration.from_pretrained(
        path,
        revision=revision,
        dtype=torch_dtype(model_args.dtype),
        attn_implementation=model_args.attn_implementation,
        quantization_config=quantization,
        output_loading_info=True,
    )
    missing = sorted(info["missing_keys"])
    if missing:
        raise ValueError(f"Base model {path!r} lacks weights for {len(missing)} parameters, e.g. {missing[:3]}.")
    try:
        if model_type == "gzllava":
            processor = GZLlavaProcessor.from_pretrained(path, revision=revision)
        else:
            processor = processor_from_llava(AutoProcessor.from_pretrained(path, revision=revision))
    except ValueError as error:  # e.g. a tokenizer without the <image> token
        raise ValueError(f"Base model {path!r}: {error}") from error
    return model, processor


def check_image_token(model, processor, name: str) -> None:
    """The processor's `<image>` id must be the model's image_token_id, inside the embedding matrix."""
    token_id = model.config.image_token_id
    if token_id is None:
        raise ValueError(f"Base model {name}: config.image_token_id is not set; the model has no image token.")
    if processor.image_token_id != token_id:
        raise ValueError(
            f"Base model {name}: the tokenizer's {processor.image_token!r} is id {processor.image_token_id} but "
            f"config.image_token_id is {token_id}; the processor does not belong to this model."
        )
    vocab = model.get_input_embeddings().num_embeddings
    if token_id >= vocab:
        raise ValueError(f"Base model {name}: image_token_id {token_id} is outside its {vocab}-row embedding matrix.")


def load_base_model(model_args: ModelConfig, gz_args: GZLlavaArguments, training_args: SFTConfig) -> BaseModel:
    """The base model for `gz_args.stage`, quantised for QLoRA, and its processor."""
    quantization = quantization_config(model_args)
    name = model_args.model_name_or_path
    composing = name == TINY_MODEL or name is None
    if composing and quantization is None:
        model, processor, base_models = compose_base(model_args, gz_args, training_args.seed)
        dtype = torch_dtype(model_args.dtype)
        if isinstance(dtype, torch.dtype):
            model = model.to(dtype)
        base = BaseModel(model, processor, None, base_models)
    elif composing:
        # bitsandbytes quantises while loading: write the composed base once (rank 0), load it back 4-bit.
        folder = Path(training_args.output_dir) / COMPOSED_BASE_DIR
        with training_args.main_process_first(desc="composing the base model"):
            if not (folder / "config.json").is_file():
                model, processor, _ = compose_base(model_args, gz_args, training_args.seed)
                model.save_pretrained(folder)
                processor.save_pretrained(folder)
                logger.info("Composed base model written to %s", folder)
        base_models = [] if name == TINY_MODEL else [gz_args.vision_model_name_or_path, gz_args.text_model_name_or_path]
        model, processor = load_checkpoint(os.fspath(folder), model_args, quantization)
        base = BaseModel(model, processor, os.fspath(folder), base_models)
    else:
        model, processor = load_checkpoint(name, model_args, quantization)
        base = BaseModel(model, processor, name, [] if os.path.isdir(name) else [name])
    check_image_token(base.model, base.processor, name or "(composed)")
    return base


def load_full_precision_base(base: BaseModel, model_args: ModelConfig):
    """The unquantised base again (for merging LoRA into real weights, never into 4-bit ones)."""
    if base.path is None:
        raise ValueError("The base model was composed in memory and cannot be loaded again for merging.")
    model, _ = load_checkpoint(base.path, model_args, quantization=None)
    return model
