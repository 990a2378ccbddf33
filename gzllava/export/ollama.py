"""`python -m gzllava.export ollama MODEL OUT`: the GGUF pair plus a `Modelfile` for `ollama create`.

The Modelfile has two `FROM` lines (the language model, then the mmproj: Ollama's way to attach a LLaVA projector),
GZ-LLaVA's prompt as a Go `TEMPLATE`, the stop strings, and greedy-friendly defaults.
"""

from __future__ import annotations

from pathlib import Path

from gzllava.export.chat_template import ollama_template
from gzllava.export.gguf_export import CONVERTER_TYPES, RUNTIME_QUANTS, export_gguf
from gzllava.export.errors import ExportError
from gzllava.export.readme import ollama_readme


def modelfile(manifest: dict, outtype: str) -> str:
    lm = manifest["language_models"][outtype]
    mmproj = manifest["mmproj"].get("f16") or next(iter(manifest["mmproj"].values()))
    eos = manifest["eos_token"]
    template = ollama_template(eos)
    return (
        f"FROM ./{lm}\n"
        f"FROM ./{mmproj}\n"
        f'TEMPLATE """{template}"""\n'
        f'PARAMETER stop "{eos}"\n'
        'PARAMETER stop "USER:"\n'
        "PARAMETER temperature 0\n"
        f"PARAMETER num_ctx {max(2048, manifest['image_tokens'] + 512)}\n"
    )


def export_ollama(model, processor, out, outtype: str = "q8_0", name: str = "gz-llava", ollama_name: str = "gz-llava",
                  overwrite: bool = False, converter_dir=None) -> Path:
    """Export one language-model type plus the mmproj, a Modelfile and a README with the ollama commands."""
    if outtype not in CONVERTER_TYPES + tuple(RUNTIME_QUANTS):
        raise ExportError(f"--type {outtype}: expected one of {', '.join(CONVERTER_TYPES + tuple(RUNTIME_QUANTS))}")

    def text_files(manifest: dict) -> dict[str, str]:
        return {"README.md": ollama_readme(manifest, ollama_name), "Modelfile": modelfile(manifest, outtype)}

    return export_gguf(model, processor, out, types=[outtype], name=name, overwrite=overwrite,
                       converter_dir=converter_dir, text_files=text_files)
