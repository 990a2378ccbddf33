"""Export a GZ-LLaVA as a plain llava-hf checkpoint (`LlavaForConditionalGeneration` + `LlavaProcessor`).

This is the way to vLLM, llama.cpp and Ollama, which know llava but not our remote code. The weights
already use llava-hf's names; what changes is the config (model_type "llava") and, for a `linear`
projector, an identity second layer so llava's fixed linear_1 -> act -> linear_2 computes the same map.
The resampler has no llava equivalent and is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

from configuration_gzllava import GZLlavaConfig


def to_llava_config(config: GZLlavaConfig) -> LlavaConfig:
    """The LlavaConfig computing what this GZ-LLaVA config computes (linear/mlp projectors only)."""
    if config.projector_type == "resampler":
        raise ValueError(
            "A GZ-LLaVA with projector_type='resampler' has no llava-hf equivalent; only 'linear' and 'mlp2x_gelu' "
            "projectors export to LlavaForConditionalGeneration."
        )
    if config.vision_feature_views != 1:
        raise ValueError(
            f"A GZ-LLaVA with vision_feature_views={config.vision_feature_views} has no llava-hf equivalent: "
            "LlavaForConditionalGeneration (and so vLLM) encodes each image once, as given, not the mean over its "
            "8 dihedral views. Retrain (align, then instruct) with vision_feature_views: 1 to run it in vLLM."
        )
    text_config = config.text_config.to_dict()
    # A language model read from a GGUF file (`gguf_file=`) is dequantised on load but keeps
    # quantization_config {"quant_method": "gguf"}: the saved float weights are not quantised.
    text_config.pop("quantization_config", None)
    return LlavaConfig(
        vision_config=config.vision_config.to_dict(),
        text_config=text_config,
        image_token_index=config.image_token_id,
        image_seq_length=config.image_seq_length,
        projector_hidden_act="linear" if config.projector_type == "linear" else config.projector_hidden_act,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        vision_feature_layer=config.vision_feature_layer,
        multimodal_projector_bias=config.multimodal_projector_bias,
        tie_word_embeddings=config.tie_word_embeddings,
    )


def to_llava_model(model) -> LlavaForConditionalGeneration:
    """A stock LlavaForConditionalGeneration holding this GZ-LLaVA's weights (shared, not copied)."""
    config = to_llava_config(model.config)
    with torch.device("meta"):
        llava = LlavaForConditionalGeneration(config)
    state = dict(model.state_dict())
    if model.config.projector_type == "linear":
        # llava always applies linear_2 after the activation ("linear" = identity): make it the identity map.
        weight = state["model.multi_modal_projector.linear_1.weight"]
        hidden = weight.shape[0]
        state["model.multi_modal_projector.linear_2.weight"] = torch.eye(hidden, dtype=weight.dtype, device=weight.device)
        if config.multimodal_projector_bias:
            state["model.multi_modal_projector.linear_2.bias"] = torch.zeros(hidden, dtype=weight.dtype, device=weight.device)
    llava.load_state_dict(state, strict=True, assign=True)
    # Non-persistent buffers (rotary inv_freq, CLIP position_ids) are not in the state dict and would stay on meta.
    our_buffers = dict(model.named_buffers())
    for name, buffer in list(llava.named_buffers()):
        if buffer.is_meta:
            module_name, _, buffer_name = name.rpartition(".")
            llava.get_submodule(module_name)._buffers[buffer_name] = our_buffers[name]
    llava.tie_weights()
    llava.generation_config = model.generation_config
    return llava.eval()


def to_llava_processor(processor) -> LlavaProcessor:
    """A LlavaProcessor expanding `<image>` like ours; delimiters, if any, are written by the chat template."""
    if processor.num_query_tokens is not None:
        raise ValueError("A resampler processor has no LlavaProcessor equivalent.")
    chat_template = processor.chat_template
    if processor.boi_token:
        # LlavaProcessor only expands `<image>`: put `<boi>`/`<eoi>` around it in the template instead.
        chat_template = chat_template.replace("'<image>\n'", f"'{processor.boi_token}<image>{processor.eoi_token}\n'")
    return LlavaProcessor(
        image_processor=processor.image_processor,
        tokenizer=processor.tokenizer,
        patch_size=processor.patch_size,
        vision_feature_select_strategy=processor.vision_feature_select_strategy,
        chat_template=chat_template,
        image_token=processor.image_token,
        num_additional_image_tokens=processor.num_additional_image_tokens,
    )


def save_as_llava(model, processor, save_directory: str | os.PathLike) -> Path:
    """Write a plain llava-hf repository (no remote code) that `LlavaForConditionalGeneration` loads."""
    out = Path(save_directory)
    to_llava_model(model).save_pretrained(out)
    to_llava_processor(processor).save_pretrained(out)
    return out


def export_llava(model, processor, out: str | os.PathLike, overwrite: bool = False, name: str = "gz-llava") -> Path:
    """`python -m gzllava.export llava`: `save_as_llava` plus a README with the transformers and vLLM commands.

    Built in a staging folder next to `out` and renamed only when complete; an existing `out` needs `overwrite`.
    """
    import shutil
    import tempfile

    from gzllava.export.errors import ExportError
    from gzllava.export.gguf_export import prepare_output, publish
    from gzllava.export.readme import llava_readme

    out = Path(out)
    try:
        to_llava_config(model.config)
        if processor.num_query_tokens is not None:
            to_llava_processor(processor)
    except ValueError as error:
        retrain = "" if "Retrain" in str(error) else " Retrain with projector_type: mlp2x_gelu to run it in vLLM."
        raise ExportError(f"{error}{retrain}") from error
    if not getattr(processor, "chat_template", None):
        raise ExportError("the processor has no chat_template: vLLM and transformers need it in the llava export.")
    prepare_output(out, overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    staging.chmod(0o755)
    try:
        save_as_llava(model, processor, staging)
        (staging / "README.md").write_text(llava_readme(name, model.config.image_token_id), encoding="utf-8")
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
