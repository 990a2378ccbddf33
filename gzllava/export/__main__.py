"""python -m gzllava.export {llava,gguf,ollama,verify} MODEL OUT [...]

  llava   MODEL OUT   a plain llava-hf folder (vLLM, transformers without remote code) with its README
  gguf    MODEL OUT   language model GGUF(s) (--types f32,f16,q8_0,q4_0,q4_k_m) + mmproj GGUF for llama.cpp
  ollama  MODEL OUT   one GGUF type (--type) + mmproj + Modelfile for `ollama create`
  verify  MODEL DIR   greedy tokens of the GGUF export in llama.cpp against transformers, on galaxy images, and
                      which CLIP token order llama.cpp's image embeddings follow (docs/run_with_llamacpp.md)

MODEL is a GZ-LLaVA folder (save_for_hub output). Bad input exits 2 with one line; --debug shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gzllava.export.errors import ExportError
from gzllava.export.runtime import GGUFFileError


def load_gzllava(path: str):
    """(model, processor) of a saved GZ-LLaVA folder, float32, eval mode; ExportError naming what is missing."""
    folder = Path(path)
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such model folder (expected a saved GZ-LLaVA: config.json, weights, processor)")
    if not (folder / "config.json").is_file():
        raise ExportError(f"{folder}/config.json: missing; expected a saved GZ-LLaVA model folder")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise ExportError(f"{folder}: no tokenizer (tokenizer.json); the export needs the model's tokenizer")
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import gzllava  # noqa: F401  (registers GZ-LLaVA with the Auto classes)

    model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    if model_type != "gzllava":
        raise ExportError(f"{folder}/config.json: model_type {model_type!r}; expected 'gzllava'")
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
    return model.eval(), processor


def _images(args) -> list:
    from PIL import Image

    from gzllava.tiny import toy_galaxy

    if args.images:
        folder = Path(args.images)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}) if folder.is_dir() else []
        if not files:
            raise ExportError(f"--images {folder}: expected a folder with .jpg/.png galaxy images")
        return [Image.open(p).convert("RGB") for p in files[: args.limit]]
    return [toy_galaxy(seed) for seed in range(args.limit)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gzllava.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("llava", "gguf", "ollama"):
        command = sub.add_parser(name)
        command.add_argument("model")
        command.add_argument("out")
        command.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
        command.add_argument("--name", default="gz-llava", help="file name stem / model name")
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
        if name != "llava":
            command.add_argument("--converter", help="a llama.cpp tree with convert_hf_to_gguf.py (default: fetched)")
    sub.choices["gguf"].add_argument("--types", default="f16,q8_0", help="comma list of f32,f16,q8_0,q4_0,q4_k_m")
    sub.choices["ollama"].add_argument("--type", default="q8_0", help="language model type: f32,f16,q8_0,q4_0,q4_k_m")
    sub.choices["ollama"].add_argument("--ollama-name", default="gz-llava", help="the name in `ollama create NAME`")
    verify = sub.add_parser("verify")
    verify.add_argument("model")
    verify.add_argument("export_dir")
    verify.add_argument("--images", help="folder of galaxy images (default: synthetic toy galaxies)")
    verify.add_argument("--limit", type=int, default=10)
    verify.add_argument("--types", default=None, help="comma list (default: every type in the export)")
    verify.add_argument("--question", default="Describe this galaxy's morphology.")
    verify.add_argument("--max-new-tokens", type=int, default=20)
    verify.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser


def run(args) -> int:
    if args.command == "verify":
        from gzllava.export.agreement import agreement, computed_reference

        export_dir = Path(args.export_dir)
        manifest_path = export_dir / "gguf_export.json"
        if not manifest_path.is_file():
            raise ExportError(f"{manifest_path}: missing; expected a folder written by `python -m gzllava.export gguf`")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        types = args.types.split(",") if args.types else list(manifest["language_models"])
        unknown = [t for t in types if t not in manifest["language_models"]]
        if unknown:
            raise ExportError(f"--types {','.join(unknown)}: not in {manifest_path} ({', '.join(manifest['language_models'])})")
        model, processor = load_gzllava(args.model)
        result = agreement(model, processor, export_dir, _images(args), args.question, types, args.max_new_tokens)
        print(json.dumps(result, indent=2))
        if any(computed_reference(r["image_embeddings_max_abs_diff"]) == "transformers_llama_cpp_order"
               for r in result.values()):
            print("note: this llama.cpp puts CLIP's class embedding after the patches (llama.cpp #25814), so its answers "
                  "follow transformers_llama_cpp_order; docs/run_with_llamacpp.md has a libmtmd with the fix",
                  file=sys.stderr)
        return 0
    from gzllava.export.gguf_export import prepare_output

    prepare_output(Path(args.out), args.overwrite)  # before the (slow) model load
    model, processor = load_gzllava(args.model)
    if args.command == "llava":
        from gzllava.export.llava import export_llava

        out = export_llava(model, processor, args.out, overwrite=args.overwrite, name=args.name)
    elif args.command == "gguf":
        from gzllava.export.gguf_export import export_gguf

        out = export_gguf(model, processor, args.out, types=args.types, name=args.name, overwrite=args.overwrite,
                          converter_dir=args.converter)
    else:
        from gzllava.export.ollama import export_ollama

        out = export_ollama(model, processor, args.out, outtype=args.type, name=args.name,
                            ollama_name=args.ollama_name, overwrite=args.overwrite, converter_dir=args.converter)
    print(f"wrote {out} ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ExportError, GGUFFileError, FileNotFoundError, OSError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
