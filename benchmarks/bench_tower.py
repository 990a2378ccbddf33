"""GZ-CLIP tower training throughput and peak memory against a plain CLIPModel contrastive step.

Cases, each in a fresh process (so peak memory is its own), same shape, batch and steps:

    gzclip      our training step: TowerCollator (uint8 images -> rot90/flip/jittered crop, mirrored labels and texts,
                tokenisation) + GZClipForTraining (duplicate-aware InfoNCE + morphology head loss) + AdamW
    reference   CLIPModel(..., return_loss=True) on ready-made pixel_values and input_ids + AdamW: no head, no
                augmentation, no collation

Shapes: `tiny` (the recipes/gz2_real_clip.yaml tower: 32 px, patch 8, 4 x 128; text 1 x 64) and `b16` (CLIP
ViT-B/16: 224 px, 12 x 768; text 12 x 512), random weights. Figures: images/s, the median over timed steps after
warm-up, per second of the process's own CPU time on the CPU (one thread: robust to other processes on a shared
machine; wall-clock rates are in the JSON) or of wall-clock time on a GPU; peak memory (Linux VmHWM reset before
training; CUDA: max allocated).

    OMP_NUM_THREADS=1 python benchmarks/bench_tower.py [--shapes tiny,b16] [--batch 16] [--steps 6] [--warmup 2]
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

from rss import peak_rss_mib, reset_peak_rss

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SHAPES = {
    "tiny": dict(image_size=32, patch_size=8, vision_hidden_size=128, vision_layers=4, vision_heads=4,
                 text_hidden_size=64, text_layers=1, text_heads=2, projection_dim=64),
    "b16": dict(image_size=224, patch_size=16, vision_hidden_size=768, vision_layers=12, vision_heads=12,
                text_hidden_size=512, text_layers=12, text_heads=8, projection_dim=512),
}
TEXTS = ["This is probably a smooth, rounded galaxy. It seems to have a completely round shape.",
         "It appears to be a disk galaxy with visible features.", "A disk viewed edge-on, with a clockwise spiral.",
         "This looks like a smooth galaxy, in between round and cigar-shaped."]


def measure(case: str, shape_name: str, batch: int, steps: int, warmup: int, device: str) -> dict:
    import numpy as np
    import torch

    from gzllava.tower.data import GalaxyTable, TowerCollator
    from gzllava.tower.model import GZClipForTraining, TowerShape, new_clip, tiny_wordpiece_tokenizer
    from gzllava.tower.questions import HeadSchema

    torch.manual_seed(0)
    shape = TowerShape(**SHAPES[shape_name])
    tokenizer = tiny_wordpiece_tokenizer()
    clip = new_clip(shape, tokenizer)
    schema = HeadSchema.parse("gz2,spiral-spin")
    stored = int(shape.image_size / 0.875)
    n = batch * 4
    rng = np.random.default_rng(0)
    votes = [{f"{q.key}_{a}_fraction": float(v) for q in schema.questions
              for a, v in zip(q.answers, rng.dirichlet(np.ones(len(q.answers))))} for _ in range(n)]
    shares, reached, counts = (torch.from_numpy(np.stack(t)) for t in zip(*(schema.targets(v) for v in votes)))
    table = GalaxyTable([str(i) for i in range(n)], torch.from_numpy(rng.integers(0, 255, (n, 3, stored, stored),
                                                                                  dtype=np.uint8)),
                        [TEXTS[i % len(TEXTS)] for i in range(n)], shares.float(), reached, counts.float())
    collator = TowerCollator(table, schema, shape.image_size, [0.1] * 3, [0.2] * 3, tokenizer, augment=True, jitter=4)
    if case == "gzclip":
        model = GZClipForTraining(clip, schema, contrastive_weight=1.0, morphology_weight=1.0)
    else:
        model = clip
        fixed = collator([{"index": i} for i in range(batch)])
        fixed = {k: fixed[k] for k in ("pixel_values", "input_ids", "attention_mask")}
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    wall, cpu = [], []
    for step in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize()
        w0, c0 = time.perf_counter(), time.process_time()
        if case == "gzclip":
            inputs = collator([{"index": (step * batch + i) % n} for i in range(batch)])
            inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
            loss = model(**inputs)["loss"]
        else:
            loss = model(**{k: v.to(device) for k, v in fixed.items()}, return_loss=True).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
    return {"case": case, "shape": shape_name, "batch": batch, "steps": steps, "device": device,
            "images_per_s_wall": batch / statistics.median(wall), "images_per_s_cpu": batch / statistics.median(cpu),
            "peak_mib": (torch.cuda.max_memory_allocated() / 2**20) if cuda else peak_rss_mib(),
            "peak_kind": "cuda max allocated" if cuda else "VmHWM (process RSS)",
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="tiny,b16")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--b16-batch", type=int, default=4, help="batch of the b16 shape (CPU time)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "SHAPE"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        import torch

        torch.set_num_threads(1)
        batch = options.b16_batch if options.child[1] == "b16" else options.batch
        print(json.dumps(measure(*options.child, batch, options.steps, options.warmup, options.device)))
        return
    results = []
    for shape in options.shapes.split(","):
        for case in ("gzclip", "reference"):
            out = subprocess.run([sys.executable, __file__, "--child", case, shape, "--batch", str(options.batch),
                                  "--b16-batch", str(options.b16_batch), "--steps", str(options.steps), "--warmup",
                                  str(options.warmup), "--device", options.device],
                                 capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if out.returncode:
                sys.exit(f"bench_tower: case {case}/{shape} failed:\n{out.stderr[-2000:]}")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"{shape:5s} {case:9s} batch {r['batch']:3d}: {r['images_per_s_cpu']:8.1f} img/s per CPU-second "
                  f"({r['images_per_s_wall']:.1f} wall), peak {r['peak_mib']:7.0f} MiB", flush=True)
        ours, ref = results[-2], results[-1]
        key = "images_per_s_wall" if options.device.startswith("cuda") else "images_per_s_cpu"
        print(f"{shape:5s} gzclip / reference: throughput x{ours[key] / ref[key]:.2f}, "
              f"peak memory x{ours['peak_mib'] / ref['peak_mib']:.2f}", flush=True)
    if options.out:
        options.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
