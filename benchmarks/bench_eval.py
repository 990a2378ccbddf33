"""Throughput of the evaluation harness: batched vs unbatched, on a small random GZ-LLaVA on CPU.

Measures images (items) per second of the two model-bound parts of `evaluate_gzllava.py`:
  - candidate likelihood scoring (decision-tree answers, K candidates per image):
      reference: one image at a time, prompt re-run for every candidate (the naive loop);
      ours:      `LlavaEvaluator` batches images and runs each prompt once, reusing its KV cache
                 for all candidates (also shown: batched without the cache);
  - greedy generation (`max_new_tokens` each): batch 1 vs `--batch-size`.
and checks that the batched scores equal the reference ones.

    OMP_NUM_THREADS=1 python benchmarks/bench_eval.py
    OMP_NUM_THREADS=1 python benchmarks/bench_eval.py --items 64 --candidates 5 --batch-size 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from gzllava.evaluation.answers import candidate_texts
from gzllava.evaluation.inference import LlavaEvaluator
from gzllava.tiny import tiny_model_and_processor

QUESTION = "How many spiral arms are there?"


def images(n: int, size: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8")) for _ in range(n)]


def timed(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=5, help="answers per question (spiral-arm-count has 5)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=96, help="px; patch 8 -> (size/8)^2 image tokens")
    parser.add_argument("--text-hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, processor = tiny_model_and_processor(
        image_size=args.image_size, patch_size=8, vision_hidden_size=64, text_hidden_size=args.text_hidden,
        layers=args.layers)
    image_tokens = (args.image_size // 8) ** 2
    candidates = candidate_texts("spiral-arm-count")[: args.candidates]
    pictures = images(args.items, args.image_size)
    questions = [QUESTION] * args.items
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: {params:.1f}M parameters, {image_tokens} image tokens per prompt; {args.items} images, "
          f"{len(candidates)} candidates; batch {args.batch_size}; {args.threads} thread(s); best of {args.repeats}")

    naive = LlavaEvaluator(model, processor, batch_size=1, use_prompt_cache=False)
    batched_full = LlavaEvaluator(model, processor, batch_size=args.batch_size, use_prompt_cache=False)
    batched_cache = LlavaEvaluator(model, processor, batch_size=args.batch_size)
    naive.score_candidates(pictures[:2], questions[:2], candidates)  # warm-up
    rows = []
    t_ref, s_ref = timed(lambda: naive.score_candidates(pictures, questions, candidates), args.repeats)
    t_full, s_full = timed(lambda: batched_full.score_candidates(pictures, questions, candidates), args.repeats)
    t_cache, s_cache = timed(lambda: batched_cache.score_candidates(pictures, questions, candidates), args.repeats)
    error = max(np.abs(s_full - s_ref).max(), np.abs(s_cache - s_ref).max())
    rows += [("likelihood: batch 1, prompt per candidate (reference)", t_ref, 1.0),
             (f"likelihood: batch {args.batch_size}, prompt per candidate", t_full, t_ref / t_full),
             (f"likelihood: batch {args.batch_size}, prompt KV cache reused (ours)", t_cache, t_ref / t_cache)]

    single = LlavaEvaluator(model, processor, batch_size=1)
    t_gen1, texts1 = timed(lambda: single.generate(pictures, questions, max_new_tokens=args.max_new_tokens), args.repeats)
    t_genb, textsb = timed(lambda: batched_cache.generate(pictures, questions, max_new_tokens=args.max_new_tokens),
                           args.repeats)
    rows += [(f"generation ({args.max_new_tokens} tokens): batch 1 (reference)", t_gen1, 1.0),
             (f"generation ({args.max_new_tokens} tokens): batch {args.batch_size} (ours)", t_genb, t_gen1 / t_genb)]

    print("\n| step | seconds | images/s | speed-up vs reference |\n|---|---:|---:|---:|")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.2f} | {args.items / seconds:.1f} | {ratio:.2f}x |")
    same = sum(a == b for a, b in zip(texts1, textsb))
    print(f"\nmax |score difference| batched vs reference: {error:.2e}; "
          f"identical greedy texts batch 1 vs batched: {same}/{args.items}")


if __name__ == "__main__":
    main()
