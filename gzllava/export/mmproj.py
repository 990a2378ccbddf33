"""`mmproj-*.gguf`: the CLIP tower and the mlp projector in the layout llama.cpp's mtmd reads for LLaVA-1.5.

Written with llama.cpp's `gguf` library (`GGUFWriter`, its tensor-name table), with the keys and tensor names of
llama.cpp's `tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py` (projector type `mlp`) as read by
`tools/mtmd/clip.cpp`:

- `clip.vision.feature_layer` = the non-negative hidden-state index (HF's -2 -> num_layers - 1) and
  `clip.vision.block_count` = the deepest one: only the layers up to it are written, and `v.post_ln` never
  (llava uses hidden states, which the CLIP post-layernorm does not touch);
- CLIP's `mlp.fc1`/`mlp.fc2` are stored as `ffn_down`/`ffn_up`, the legacy naming every LLaVA-1.5 mmproj has; clip.cpp
  recognises it by shape and swaps them back (for an mlp projector it always can, even when n_ff == n_embd);
- `multi_modal_projector.linear_1` / `linear_2` -> `mm.0` / `mm.2`;
- `v.class_embd` and `v.position_embd` as CLIP has them (CLS at position 0). The llava graph of llama-cpp-python
  0.3.36 appends CLS after the patches and keeps rows 1..n, which no position-table order can undo (patch 0 is never
  kept): the files stay standard, and a llama.cpp with the CLS fix runs them as transformers does
  (`gzllava.export.agreement`, docs/run_with_llamacpp.md).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch

# HF CLIP layer module -> gguf tensor of the same role (fc1/fc2 in legacy naming, see the module docstring).
LAYER_TENSORS = {
    "self_attn.q_proj": gguf.MODEL_TENSOR.V_ENC_ATTN_Q,
    "self_attn.k_proj": gguf.MODEL_TENSOR.V_ENC_ATTN_K,
    "self_attn.v_proj": gguf.MODEL_TENSOR.V_ENC_ATTN_V,
    "self_attn.out_proj": gguf.MODEL_TENSOR.V_ENC_ATTN_O,
    "layer_norm1": gguf.MODEL_TENSOR.V_ENC_INPUT_NORM,
    "layer_norm2": gguf.MODEL_TENSOR.V_ENC_POST_ATTN_NORM,
    "mlp.fc1": gguf.MODEL_TENSOR.V_ENC_FFN_DOWN,
    "mlp.fc2": gguf.MODEL_TENSOR.V_ENC_FFN_UP,
}
OUTTYPES = ("f32", "f16")


def feature_layers(config) -> list[int]:
    """GZ-LLaVA's vision_feature_layer(s) as llama.cpp's non-negative hidden-state indices (0 = embeddings)."""
    n_layers = config.vision_config.num_hidden_layers
    layers = config.vision_feature_layer if isinstance(config.vision_feature_layer, list) else [config.vision_feature_layer]
    return [layer if layer >= 0 else n_layers + layer + 1 for layer in layers]


def _name(tensor: gguf.MODEL_TENSOR, suffix: str, bid: int | None = None) -> str:
    return gguf.TENSOR_NAMES[tensor].format(bid=bid) + suffix


def mmproj_tensors(model) -> dict[str, torch.Tensor]:
    """gguf name -> tensor for the vision tower (up to the deepest feature layer) and the projector."""
    state = model.state_dict()
    # transformers 5 keeps CLIPVisionModel's weights directly under the tower; older layouts nest `vision_model.`
    tower = "model.vision_tower.vision_model." if "model.vision_tower.vision_model.pre_layrnorm.weight" in state \
        else "model.vision_tower."
    tensors = {
        _name(gguf.MODEL_TENSOR.V_ENC_EMBD_CLS, ""): state[tower + "embeddings.class_embedding"],  # [D]
        _name(gguf.MODEL_TENSOR.V_ENC_EMBD_PATCH, ".weight"): state[tower + "embeddings.patch_embedding.weight"],  # [D,3,P,P]
        _name(gguf.MODEL_TENSOR.V_ENC_EMBD_POS, ".weight"): state[tower + "embeddings.position_embedding.weight"],  # [N+1,D]
        _name(gguf.MODEL_TENSOR.V_PRE_NORM, ".weight"): state[tower + "pre_layrnorm.weight"],
        _name(gguf.MODEL_TENSOR.V_PRE_NORM, ".bias"): state[tower + "pre_layrnorm.bias"],
    }
    for bid in range(max(feature_layers(model.config))):
        for module, tensor in LAYER_TENSORS.items():
            for suffix in ("weight", "bias"):
                tensors[_name(tensor, "." + suffix, bid)] = state[f"{tower}encoder.layers.{bid}.{module}.{suffix}"]
    projector = "model.multi_modal_projector."
    for index, layer in ((0, "linear_1"), (2, "linear_2")):
        tensors[_name(gguf.MODEL_TENSOR.V_MMPROJ, ".weight", index)] = state[f"{projector}{layer}.weight"]  # [out,in]
        if f"{projector}{layer}.bias" in state:
            tensors[_name(gguf.MODEL_TENSOR.V_MMPROJ, ".bias", index)] = state[f"{projector}{layer}.bias"]
    return tensors


def write_mmproj(model, processor, path: str | Path, outtype: str = "f16", name: str = "gz-llava") -> Path:
    """Write `path` (an mmproj GGUF, f32 or f16 weights; norms, biases and the class embedding stay f32)."""
    if outtype not in OUTTYPES:
        raise ValueError(f"mmproj outtype {outtype!r}: expected one of {OUTTYPES}")
    config, vision = model.config, model.config.vision_config
    image_processor = processor.image_processor
    path = Path(path)
    writer = gguf.GGUFWriter(path, arch="clip")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_description("GZ-LLaVA image encoder for llama.cpp (CLIP + LLaVA mlp projector)")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if outtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_clip_has_vision_encoder(True)
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_bool("clip.has_llava_projector", True)  # read by older llama.cpp builds
    writer.add_clip_projector_type("mlp")
    writer.add_vision_image_size(vision.image_size)
    writer.add_vision_patch_size(vision.patch_size)
    writer.add_vision_embedding_length(vision.hidden_size)
    writer.add_vision_feed_forward_length(vision.intermediate_size)
    writer.add_vision_projection_dim(config.text_config.hidden_size)
    writer.add_vision_head_count(vision.num_attention_heads)
    writer.add_vision_attention_layernorm_eps(vision.layer_norm_eps)
    layers = feature_layers(config)
    writer.add_vision_block_count(max(layers))
    writer.add_array("clip.vision.feature_layer", layers)  # clip.cpp's KEY_FEATURE_LAYERS (int32 array)
    writer.add_vision_image_mean([float(v) for v in image_processor.image_mean])
    writer.add_vision_image_std([float(v) for v in image_processor.image_std])
    writer.add_vision_use_gelu(vision.hidden_act == "gelu")  # else quick-GELU, clip.cpp's default
    for tensor_name, tensor in mmproj_tensors(model).items():
        data = tensor.detach().to(torch.float32).cpu().numpy()
        if outtype == "f16" and data.ndim >= 2:
            data = data.astype(np.float16)
        writer.add_tensor(tensor_name, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
