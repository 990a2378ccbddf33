"""`python -m gzllava.export gguf MODEL OUT`: the language model as GGUF plus `mmproj-*.gguf`, for llama.cpp.

Every check runs before anything is written, and the files are built in a staging folder next to OUT that becomes OUT
only when all of them are written and read back: a refused or failed export leaves nothing behind.

- language model: llama.cpp's own `convert_hf_to_gguf.py` (`gzllava.export.converter`) on a temporary llava-hf export,
  as f32 / f16 / q8_0; q4 variants (`q4_0`, `q4_k_m`) are quantised from the f16 file by llama.cpp itself
  (`llama_model_quantize` through llama-cpp-python). The GGUF carries the chat template (`gguf_chat_template`) and the
  tokenizer's bos/eos/pad ids.
- `mmproj-<name>-f16.gguf` (and `-f32` with an f32 export): `gzllava.export.mmproj`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from gzllava.export.chat_template import gguf_chat_template
from gzllava.export.checks import check_llama_cpp_compatible
from gzllava.export.converter import convert_language_model, find_converter, llama_cpp_version
from gzllava.export.errors import ExportError
from gzllava.export.llava import save_as_llava
from gzllava.export.mmproj import write_mmproj
from gzllava.export.runtime import check_gguf

CONVERTER_TYPES = ("f32", "f16", "q8_0")
RUNTIME_QUANTS = {"q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
ALL_TYPES = CONVERTER_TYPES + tuple(RUNTIME_QUANTS)


def parse_types(types) -> list[str]:
    types = [types] if isinstance(types, str) else list(types)
    types = [t.strip().lower() for item in types for t in item.split(",") if t.strip()]
    bad = [t for t in types if t not in ALL_TYPES]
    if bad or not types:
        raise ExportError(f"--types {','.join(bad) or '(empty)'}: expected a comma-separated subset of {','.join(ALL_TYPES)}")
    return list(dict.fromkeys(types))


def prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists: pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if not out.parent.exists():
        raise ExportError(f"{out.parent}: the parent folder of the output does not exist")


def publish(staging: Path, out: Path) -> None:
    """Swap the finished staging folder in as `out` (replacing an old export only now)."""
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def quantize(source: Path, target: Path, quant: str) -> None:
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, RUNTIME_QUANTS[quant])
    params.nthread = 0
    with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params)
    if status != 0:
        raise ExportError(f"llama.cpp could not quantise {source.name} to {quant} (status {status})")


def write_gguf_files(model, processor, folder: Path, types: list[str], name: str, converter: Path) -> dict:
    """Write the GGUF files into `folder` (which exists and is empty); return the manifest."""
    with tempfile.TemporaryDirectory(prefix="llava-hf-", dir=folder.parent) as tmp:
        llava_dir = Path(tmp)
        save_as_llava(model, processor, llava_dir)
        # The converter takes the chat template from tokenizer_config.json first, then chat_template.jinja.
        config_path = llava_dir / "tokenizer_config.json"
        tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
        tokenizer_config.pop("chat_template", None)
        config_path.write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
        (llava_dir / "chat_template.json").unlink(missing_ok=True)
        (llava_dir / "chat_template.jinja").write_text(gguf_chat_template(processor.chat_template), encoding="utf-8")
        converted = [t for t in types if t in CONVERTER_TYPES]
        quants = [t for t in types if t in RUNTIME_QUANTS]
        if quants and "f16" not in converted:
            converted.append("f16")  # the source of the runtime's quantisation (removed below if not asked for)
        outputs = {t: folder / f"{name}-{t}.gguf" for t in converted}
        convert_language_model(converter, llava_dir, outputs)
    for quant in quants:
        quantize(outputs["f16"], folder / f"{name}-{quant}.gguf", quant)
    if "f16" not in types:
        outputs["f16"].unlink(missing_ok=True)
    mmproj_types = ["f32"] if "f32" in types else []
    if any(t != "f32" for t in types):
        mmproj_types.append("f16")
    for outtype in mmproj_types:
        write_mmproj(model, processor, folder / f"mmproj-{name}-{outtype}.gguf", outtype, name=name)
    files = {}
    for path in sorted(folder.glob("*.gguf")):
        files[path.name] = check_gguf(path)
    tokenizer = processor.tokenizer
    return {
        "format": "gguf",
        "name": name,
        "language_models": {t: f"{name}-{t}.gguf" for t in types},
        "mmproj": {t: f"mmproj-{name}-{t}.gguf" for t in mmproj_types},
        "files": files,
        "image_token": processor.image_token,
        "image_token_id": model.config.image_token_id,
        "suppress_token_ids": list(getattr(model.generation_config, "suppress_tokens", None) or [model.config.image_token_id]),
        "eos_token": tokenizer.eos_token,
        "image_size": model.config.vision_config.image_size,
        "image_tokens": model.config.num_image_tokens,
        "llama_cpp_python": llama_cpp_version(),
    }


def export_gguf(model, processor, out, types=("f16",), name: str = "gz-llava", overwrite: bool = False,
                converter_dir=None, text_files=None) -> Path:
    """Export `model`/`processor` to `out` as GGUF files (see the module docstring); return `out`.

    `text_files(manifest) -> {file name: text}` adds files (default: the README) to the folder before it is published.
    """
    out = Path(out)
    types = parse_types(types)
    check_llama_cpp_compatible(model, processor)
    gguf_chat_template(processor.chat_template)
    prepare_output(out, overwrite)
    converter = find_converter(converter_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        manifest = write_gguf_files(model, processor, staging, types, name, converter)
        (staging / "gguf_export.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        from gzllava.export.readme import gguf_readme

        for file_name, text in (text_files or (lambda m: {"README.md": gguf_readme(m)}))(manifest).items():
            (staging / file_name).write_text(text, encoding="utf-8")
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
