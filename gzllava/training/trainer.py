"""TRL's SFTTrainer with the three things GZ-LLaVA training needs on top.

1. Checkpoints that resume: transformers' Trainer resumes with a plain `load_state_dict` of the
   checkpoint's model.safetensors, but `save_pretrained` writes llava's legacy key names
   (`language_model.model.*`, `multi_modal_projector.*`), which that load silently ignores (every key
   "missing", strict=False): a resumed run would continue from the base weights. Checkpoints are written
   with the model's own parameter names instead (`save_original_format=False`); they still load with
   `from_pretrained`.
2. Modules trained in full next to LoRA (peft `modules_to_save`) keep their precision: TRL casts every trainable
   parameter of a quantised model to bfloat16 (right for LoRA adapters, per QLoRA), which would also leave them,
   and their optimizer updates, in bfloat16. The projector stays float32; the others get their base dtype back.
3. Resumed QLoRA continues in the precision it was trained in: transformers resumes a PEFT model with
   `load_adapter`, which up-casts bfloat16 adapters to float32 (peft's `autocast_adapter_dtype=True`), so a
   resumed run would train its LoRA weights in float32 where the uninterrupted run trained them in bfloat16
   (the weights drifted apart from the first resumed step). Every parameter gets back the dtype it had
   before the checkpoint was loaded (exact: the checkpoint holds the bfloat16 values).
4. Resumable augmentation, and the end-of-training check that DDP ranks agree.
"""

from __future__ import annotations

import functools

from accelerate.utils import DistributedType
from transformers import PreTrainedModel
from trl import SFTTrainer

from .augmentation import AugmentingCollator, EpochCallback
from .callbacks import RankConsistencyCallback
from .stages import keep_projector_in_float32, restore_full_module_dtypes


def restore_parameter_dtypes(model, dtypes: dict) -> list[str]:
    """Cast every parameter of `model` whose dtype differs from `dtypes[name]` back to it; returns their names.

    The Parameter objects stay the same (`param.data` is replaced), so an optimizer built on them still holds them.
    """
    restored = []
    for name, param in model.named_parameters():
        dtype = dtypes.get(name)
        if dtype is not None and param.dtype != dtype:
            param.data = param.data.to(dtype)
            restored.append(name)
    return restored


class GZLlavaSFTTrainer(SFTTrainer):
    def __init__(self, *args, augment: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        restore_full_module_dtypes(self.model)
        keep_projector_in_float32(self.model)
        if augment:
            self.data_collator = AugmentingCollator(self.data_collator, seed=self.args.seed)
            self.add_callback(EpochCallback(self.data_collator))
        replicated = self.accelerator.distributed_type in (DistributedType.MULTI_GPU, DistributedType.MULTI_CPU)
        self.add_callback(RankConsistencyCallback(replicated))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        target = self.model if model is None else model
        dtypes = {name: param.dtype for name, param in target.named_parameters()}
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        restore_parameter_dtypes(target, dtypes)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if not isinstance(model, PreTrainedModel):  # a PeftModel saves its adapter under the module names already
            return super()._save(output_dir, state_dict)
        model.save_pretrained = functools.partial(type(model).save_pretrained, model, save_original_format=False)
        try:
            super()._save(output_dir, state_dict)
        finally:
            del model.save_pretrained
