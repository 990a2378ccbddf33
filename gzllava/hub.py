"""Save a GZ-LLaVA (or a peft adapter on one) as a complete Hub model repository, and push it.

The remote-code repository itself (config.json with `auto_map` and `custom_pipelines`, the configuration/
modeling/image-processing/processing/pipeline .py files, safetensors weights, generation_config.json, processor +
tokenizer files with the chat template, left padding) is what transformers' own `model.save_pretrained` /
`processor.save_pretrained` (and their `push_to_hub`) write for a GZ-LLaVA. `save_for_hub` is that plus a
README.md model card, in one folder; `push_to_hub` uploads it. For a peft model, peft's `save_pretrained` writes the
adapter (no config.json: the folder must not look like a full model) and transformers' `custom_object_save` puts the
base's remote code beside it, so the processor (and the base, given its id) load with `trust_remote_code`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from huggingface_hub import HfApi
from transformers.dynamic_module_utils import custom_object_save

from modeling_gzllava import AUTO_MAP, CUSTOM_PIPELINES  # noqa: F401  (re-exported: what a saved repo holds)

from .model_card import build_model_card, portable_path
from .registration import register_gzllava


logger = logging.getLogger(__name__)

REMOTE_CODE_FILES = (
    "configuration_gzllava.py",
    "modeling_gzllava.py",
    "image_processing_gzllava.py",
    "processing_gzllava.py",
    "pipeline_gzllava.py",
)


def save_for_hub(model, processor, save_directory: str | os.PathLike, card_kwargs: dict | None = None, **save_kwargs) -> Path:
    """Write `model` (a GZ-LLaVA, or a peft model on one: its adapter) and `processor` as a Hub model repository folder
    with a model card, and return its path. `save_kwargs` go to `model.save_pretrained` (e.g. a gathered `state_dict`)."""
    register_gzllava()
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, **save_kwargs)  # weights, config (auto_map, custom_pipelines), generation config, .py files
    base = model.get_base_model() if hasattr(model, "get_base_model") else None  # a peft model: the adapter was saved
    if base is not None:
        custom_object_save(base, out)  # modeling_gzllava.py and its relative imports, as save_pretrained copies them
    processor.save_pretrained(out)  # processor + tokenizer (left padding), chat template, processing .py files
    missing = [name for name in REMOTE_CODE_FILES if not (out / name).is_file()]
    if missing:
        raise RuntimeError(f"{out}: save_pretrained wrote no {', '.join(missing)}; is {type(model).__name__} a GZ-LLaVA?")
    card_kwargs = dict(card_kwargs or {})
    card_kwargs.setdefault("default_prompt", processor.default_prompt)
    card = build_model_card((base or model).config, **card_kwargs)
    if base is not None:
        card.text += _portable_adapter_base(out)
    card.save(out / "README.md")
    logger.info("Saved a GZ-LLaVA Hub repository to %s", out)
    return out


def _portable_adapter_base(out: Path) -> str:
    """peft writes the base's local path into adapter_config.json: name it as the card does. Returns the card's line
    saying what the adapter is for."""
    path = out / "adapter_config.json"
    config = json.loads(path.read_text())
    base = portable_path(config.get("base_model_name_or_path") or "")
    if base != config.get("base_model_name_or_path"):
        config["base_model_name_or_path"] = base
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    projector = any("projector" in name for name in config.get("modules_to_save") or [])
    return (f"\nThis repository holds a LoRA adapter{' (and the trained projector)' if projector else ''} for "
            f"`{base or 'its base model'}`.\n")


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


__all__ = ["AUTO_MAP", "CUSTOM_PIPELINES", "REMOTE_CODE_FILES", "push_folder", "push_to_hub", "save_for_hub"]
