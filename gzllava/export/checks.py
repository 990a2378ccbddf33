"""What llama.cpp / Ollama can run, checked before anything is written.

llama.cpp runs a LLaVA-1.5 model as two files: the language model GGUF (its converter reads a llava-hf checkpoint's
language model as a Llama) and an `mmproj` GGUF run by mtmd's `clip_graph_llava`: a CLIP ViT (class embedding,
pre-layernorm, quick-GELU or GELU MLPs), hidden states of one layer with the CLS position dropped, then the `mlp`
projector `mm.0 -> GELU -> mm.2`. Anything else is refused here with the reason and the way out.
"""

from __future__ import annotations

import json
from pathlib import Path

from gzllava.export.errors import ExportError

RETRAIN = (
    "retrain with projector_type: mlp2x_gelu and without image delimiters (align recipe, e.g. "
    "`python train_sft.py --config recipes/real_cpu_align.yaml --projector_type mlp2x_gelu --use_image_delimiters false`)"
)
# llama.cpp's converter maps LlavaForConditionalGeneration's language model to its Llama writer.
LLAMA_LIKE = {"llama", "mistral"}
# HF CLIP activations -> what mtmd's clip reads (`clip.use_gelu`); quick_gelu is clip's default.
CLIP_ACTIVATIONS = {"quick_gelu": False, "gelu": True}


def gpt2_style_pre_tokenizer(tokenizer_json: Path) -> bool:
    """True when tokenizer.json splits text exactly as GPT-2 does (byte-level, GPT-2 regex, no prefix space, no normaliser)."""
    try:
        data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
        pre = pre["pretokenizers"][0]
    return (
        data.get("normalizer") is None
        and (data.get("model") or {}).get("type") == "BPE"
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True)
        and not pre.get("add_prefix_space", False)
    )


def check_llama_cpp_compatible(model, processor) -> None:
    """Raise ExportError naming the first thing llama.cpp (and so Ollama) cannot run; return None when all is runnable."""
    config = model.config
    if config.projector_type == "resampler":
        raise ExportError(
            "projector_type 'resampler' cannot be exported to GGUF: llama.cpp, llama-cpp-python and Ollama have no "
            f"Perceiver-resampler LLaVA projector, and vLLM's llava has none either; {RETRAIN}."
        )
    if getattr(config, "use_image_delimiters", False) or getattr(processor, "boi_token", None):
        raise ExportError(
            "image delimiters <boi>/<eoi> cannot be exported to GGUF: llama.cpp's and Ollama's LLaVA-1.5 path feeds the "
            f"image embeddings without them (the llava-hf export keeps them for vLLM/transformers); {RETRAIN}."
        )
    if getattr(config, "vision_feature_views", 1) != 1:
        raise ExportError(
            f"vision_feature_views {config.vision_feature_views}: llama.cpp's and Ollama's LLaVA-1.5 clip graph encodes "
            "each image once, as given, with no mean over its turned and mirrored views; retrain (align, then "
            "instruct) with vision_feature_views: 1."
        )
    if config.projector_type == "linear":
        raise ExportError(
            "projector_type 'linear' cannot be exported to GGUF: llama.cpp's LLaVA 'mlp' projector always applies GELU "
            f"after mm.0, so a linear map has no equivalent (the llava-hf export runs it in vLLM); {RETRAIN}."
        )
    vision = config.vision_config
    if vision.model_type != "clip_vision_model":
        raise ExportError(
            f"vision tower {vision.model_type!r} is not supported by llama.cpp's LLaVA-1.5 clip graph in this exporter: "
            "expected a CLIP ViT (clip_vision_model); compose the model with a CLIP tower to run it in llama.cpp/Ollama."
        )
    if vision.hidden_act not in CLIP_ACTIVATIONS:
        raise ExportError(
            f"vision_config.hidden_act {vision.hidden_act!r} is not run by llama.cpp's clip: expected one of {sorted(CLIP_ACTIVATIONS)}."
        )
    if config.projector_hidden_act != "gelu":
        raise ExportError(
            f"projector_hidden_act {config.projector_hidden_act!r}: llama.cpp's 'mlp' projector applies GELU; expected 'gelu'."
        )
    if config.vision_feature_select_strategy != "default":
        raise ExportError(
            f"vision_feature_select_strategy {config.vision_feature_select_strategy!r}: llama.cpp's LLaVA graph always drops "
            "the CLS position; expected 'default'."
        )
    layers = config.vision_feature_layer if isinstance(config.vision_feature_layer, list) else [config.vision_feature_layer]
    for layer in layers:
        if not -vision.num_hidden_layers - 1 <= layer <= vision.num_hidden_layers:
            raise ExportError(f"vision_feature_layer {layer} is outside the tower's {vision.num_hidden_layers} layers.")
    if vision.image_size % vision.patch_size:
        raise ExportError(f"vision image_size {vision.image_size} is not a multiple of patch_size {vision.patch_size}.")
    text = config.text_config
    if text.model_type not in LLAMA_LIKE:
        raise ExportError(
            f"language model {text.model_type!r} is not convertible from a llava checkpoint by llama.cpp's converter: "
            f"it reads the language model of LlavaForConditionalGeneration as Llama (model types {sorted(LLAMA_LIKE)})."
        )
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ExportError("the processor has no fast tokenizer (tokenizer.json): llama.cpp's converter needs one.")
    if not getattr(processor, "chat_template", None):
        raise ExportError("the processor has no chat_template: the GGUF must carry the prompt format; expected GZ-LLaVA's template.")
    if tokenizer.eos_token is None:
        raise ExportError("the tokenizer has no eos_token: the GGUF and Modelfile need a stop token.")
