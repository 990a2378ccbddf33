"""Save a GZ-LLaVA as a complete Hub model repository, and push it.

The folder holds everything `from_pretrained(..., trust_remote_code=True)` and `pipeline(...)` need:
config.json with `auto_map` and `custom_pipelines`, the remote code (configuration/modeling/processing/
pipeline .py files), safetensors weights, generation_config.json, processor + tokenizer files with the
chat template, and a README.md model card.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from huggingface_hub import HfApi

from .model_card import build_model_card
from .registration import AUTO_MAP, register_gzllava


logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
REMOTE_CODE_FILES = ("configuration_gzllava.py", "modeling_gzllava.py", "processing_gzllava.py", "pipeline_gzllava.py")
CUSTOM_PIPELINES = {
    "image-to-text": {
        "impl": "pipeline_gzllava.GZLlavaImageToTextPipeline",
        "pt": ["AutoModelForImageTextToText"],
        "type": "multimodal",
    }
}


def save_for_hub(model, processor, save_directory: str | os.PathLike, card_kwargs: dict | None = None, **save_kwargs) -> Path:
    """Write `model` and `processor` as a Hub model repository folder and return its path."""
    register_gzllava()
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    model.config.auto_map = dict(AUTO_MAP)
    model.config.custom_pipelines = CUSTOM_PIPELINES
    model.save_pretrained(out, **save_kwargs)
    # A call with truncation/padding (TRL's collator, max_length checks) leaves that state in the fast tokenizer's
    # backend, and save_pretrained writes it into tokenizer.json: users would then get truncated prompts.
    backend = getattr(processor.tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    # Saved folders are for inference: batched generation (pipelines, generate) needs left padding, or the rows'
    # answers change with the batch. Training collators (TRL) pass padding_side="right" per call.
    tokenizer = processor.tokenizer
    saved_state = tokenizer.padding_side, dict(tokenizer.init_kwargs)
    tokenizer.padding_side = tokenizer.init_kwargs["padding_side"] = "left"  # init_kwargs are what gets written
    try:
        processor.save_pretrained(out)
    finally:
        tokenizer.padding_side, tokenizer.init_kwargs = saved_state
    for name in REMOTE_CODE_FILES:  # save_pretrained copies those it imports; the pipeline file is not among them
        shutil.copyfile(REPO_ROOT / name, out / name)
    card_kwargs = dict(card_kwargs or {})
    card_kwargs.setdefault("default_prompt", processor.default_prompt)
    build_model_card(model.config, **card_kwargs).save(out / "README.md")
    logger.info("Saved a GZ-LLaVA Hub repository to %s", out)
    return out


def push_folder(folder: str | os.PathLike, repo_id: str, private: bool = False, commit_message: str = "Upload GZ-LLaVA") -> str:
    """Create `repo_id` if needed and upload the folder; the token comes from the environment (HF_TOKEN) only."""
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True, private=private)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
    logger.info("Pushed %s to %s", folder, repo_id)
    return getattr(info, "commit_url", str(info))


def push_to_hub(model, processor, repo_id: str, private: bool = False, card_kwargs: dict | None = None) -> str:
    """`save_for_hub` into a temporary folder, then upload it as `repo_id`."""
    import tempfile

    card_kwargs = {"repo_id": repo_id, **(card_kwargs or {})}
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_for_hub(model, processor, tmp, card_kwargs=card_kwargs)
        return push_folder(folder, repo_id, private=private)
