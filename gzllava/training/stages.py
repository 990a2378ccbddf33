"""What each training stage trains, as in LLaVA-1.5 (stage 1: projector; stage 2: projector + LM).

- `align`: vision tower and language model frozen, the projector trained;
- `instruct` (QLoRA): LoRA on the language model's linear layers only (a plain `target_modules=["q_proj", ...]`
  would also match CLIP's attention layers), the projector trained in full (peft `modules_to_save`);
- `full`: projector and language model (and LM head) trained, the vision tower frozen unless asked.

The projector is always trained in float32 (its weights are few; a 16-bit base keeps its 16-bit compute).
"""

from __future__ import annotations

import logging
import os
import re

import torch
from peft import LoraConfig
from torch import nn
from trl import ModelConfig

from .arguments import GZLlavaArguments


logger = logging.getLogger(__name__)

PROJECTOR = "multi_modal_projector"
LANGUAGE_MODEL_PREFIX = "model.language_model."


def language_model_linear_names(model: nn.Module) -> list[str]:
    """Leaf names of the language model's linear layers (q_proj, ..., down_proj for Llama), 4-bit ones included."""
    names = set()
    for name, module in model.named_modules():
        if name.startswith(LANGUAGE_MODEL_PREFIX) and isinstance(module, nn.Linear):  # bnb's Linear4bit is an nn.Linear
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def lora_target_regex(model: nn.Module, requested: str | list[str] | None) -> str:
    """A regex over FULL module names that only matches linear layers inside the language model.

    `requested` are leaf names (`["q_proj", "v_proj"]`) or None/"all-linear" for every linear layer of the LM.
    """
    available = language_model_linear_names(model)
    if requested in (None, "all-linear", ["all-linear"]):
        leaves = available
    else:
        leaves = [requested] if isinstance(requested, str) else list(requested)
        unknown = sorted(set(leaves) - set(available))
        if unknown:
            raise ValueError(f"lora_target_modules {unknown} are not linear layers of the language model; "
                             f"it has {available}.")
    return re.escape(LANGUAGE_MODEL_PREFIX) + r"(.*\.)?(" + "|".join(map(re.escape, leaves)) + ")"


def prepare_stage(model: nn.Module, gz_args: GZLlavaArguments, model_args: ModelConfig) -> LoraConfig | None:
    """Freeze and unfreeze `model` for the stage; return the LoRA config for stage instruct (else None)."""
    model.requires_grad_(False)
    inner = model.model
    if gz_args.stage == "align":
        getattr(inner, PROJECTOR).requires_grad_(True)
        keep_projector_in_float32(model)
        return None
    if gz_args.stage == "full":
        getattr(inner, PROJECTOR).requires_grad_(True)
        inner.language_model.requires_grad_(True)
        model.lm_head.requires_grad_(True)
        if gz_args.train_vision_tower:
            inner.vision_tower.requires_grad_(True)
        keep_projector_in_float32(model)
        return None
    # instruct: peft wraps the model later (in the trainer); the projector becomes a trainable copy there.
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=lora_target_regex(model, model_args.lora_target_modules),
        modules_to_save=[PROJECTOR, *(model_args.lora_modules_to_save or [])],
        use_rslora=model_args.use_rslora,
        use_dora=model_args.use_dora,
        bias="none",
    )


def _cast_inputs_to_weight_dtype(module, args, kwargs):
    # The weights' dtype at call time: DeepSpeed may have cast the projector to bf16 after us.
    dtype = next(module.parameters()).dtype
    cast = lambda value: value.to(dtype) if torch.is_tensor(value) and value.is_floating_point() else value  # noqa: E731
    return tuple(cast(arg) for arg in args), {key: cast(value) for key, value in kwargs.items()}


def keep_projector_in_float32(model: nn.Module) -> None:
    """Trainable projector weights in float32, fed float32 features; its output is cast back by LLaVA's forward.

    Also undoes TRL's cast of every trainable parameter of a quantised model to bfloat16, which would leave the
    projector's weights in bfloat16 while the (float32) vision tower feeds it float32.
    """
    for name, module in model.named_modules():
        if name.endswith(PROJECTOR):
            module.float()
            if not getattr(module, "_gzllava_float32", False):
                module.register_forward_pre_hook(_cast_inputs_to_weight_dtype, with_kwargs=True)
                module._gzllava_float32 = True


def restore_full_module_dtypes(model: nn.Module) -> None:
    """Trainable copies of peft `modules_to_save` (lm_head, embed_tokens, ...) back in their frozen original's dtype."""
    from peft.utils import ModulesToSaveWrapper

    for module in model.modules():
        if isinstance(module, ModulesToSaveWrapper):
            original = next(module.original_module.parameters(), None)
            if original is not None and original.is_floating_point():
                module.modules_to_save.to(original.dtype)


def describe_trainable(model: nn.Module) -> dict[str, int]:
    """Trainable / total parameters per top-level part (for the log and the model card)."""
    parts: dict[str, list[int]] = {}
    for name, param in model.named_parameters():
        part = next((p for p in ("lora", "vision_tower", PROJECTOR, "language_model", "lm_head") if p in name), "other")
        counts = parts.setdefault(part, [0, 0])
        counts[0] += param.numel() if param.requires_grad else 0
        counts[1] += param.numel()
    summary = {f"{part}_trainable": counts[0] for part, counts in parts.items()}
    summary["trainable"] = sum(counts[0] for counts in parts.values())
    summary["total"] = sum(counts[1] for counts in parts.values())
    return summary
