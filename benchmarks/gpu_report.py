"""The GPU suite's table: the figures of benchmarks/gpu_suite.sh's JSON files against issue 13's goals.

Reads what the suite wrote into OUT_DIR (a part that failed or ran out of time is reported as missing, never
guessed), writes OUT_DIR/gpu_suite.json (every part's report together) and OUT_DIR/gpu_suite.md, and prints the table.

    python benchmarks/gpu_report.py benchmarks/gpu-results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PARTS = {
    "model": "bench_model_7b.json",
    "decode": "bench_decode_7b.json",
    "train": "bench_train_7b.json",
    "static": "bench_decode_static_7b.json",
}
GB = 1e9
MISSING = "not measured (part failed or ran out of time: see its log)"


def load_parts(folder: Path) -> dict:
    parts = {}
    for name, file in PARTS.items():
        path = folder / file
        try:
            parts[name] = json.loads(path.read_text())
        except (OSError, ValueError):
            parts[name] = None
    return parts


def row(check: str, goal: str, value, met: bool | None, note: str = "") -> dict:
    return {"check": check, "goal": goal, "measured": value if value is not None else MISSING,
            "met": None if value is None else met, "note": note}


def model_rows(report: dict | None) -> list[dict]:
    if report is None:
        return [row("GZ-LLaVA vs stock Llava, bf16, batch 8: forward and generate speed", ">= 1.0", None, None),
                row("identical logits and greedy tokens", "max abs diff 0", None, None)]
    ours_vs_stock = report["comparisons"]["gz_vs_stock_llava"]
    settings = report["settings"]
    ours = report["models"]["gz/mlp2x_gelu"]
    memory = ours_vs_stock["peak_memory_forward"], ours_vs_stock["peak_memory_generate"]
    shape = f"{report['environment']['dtype']}, batch {settings['batch_size']}, {ours['prompt_tokens']} prompt tokens"
    return [
        row(f"forward speed, stock / ours ({shape})", ">= 1.0", f"{ours_vs_stock['forward']:.3f}x",
            ours_vs_stock["forward"] >= 0.99, f"ours {ours['forward']['tokens_per_s']:,.0f} tokens/s; within 1% counts as equal"),
        row(f"generate speed, stock / ours ({settings['new_tokens']} new tokens)", ">= 1.0",
            f"{ours_vs_stock['generate']:.3f}x", ours_vs_stock["generate"] >= 0.99,
            f"ours {ours['generate']['tokens_per_s']:,.0f} new tokens/s"),
        row("peak memory, stock / ours (forward, generate)", ">= 1.0", f"{memory[0]:.3f}x, {memory[1]:.3f}x",
            min(memory) >= 0.99, f"ours {ours['peak_memory_mib']['forward'] / 1024:.2f} / "
                                 f"{ours['peak_memory_mib']['generate'] / 1024:.2f} GiB above the weights"),
        row("identical logits and greedy tokens", "max abs diff 0",
            f"{ours_vs_stock['max_abs_logit_diff']:.1e}, same tokens {ours_vs_stock['same_greedy_tokens']}",
            ours_vs_stock["max_abs_logit_diff"] == 0 and ours_vs_stock["same_greedy_tokens"]),
        row(f"resampler ({settings['queries']} queries) vs mlp, forward / generate speed-up", "(reported)",
            f"{report['comparisons']['resampler_vs_mlp']['forward']:.2f}x / "
            f"{report['comparisons']['resampler_vs_mlp']['generate']:.2f}x", None),
    ]


def decode_rows(decode: dict | None, static: dict | None) -> list[dict]:
    rows = []
    if decode is None:
        rows.append(row("batch-1 decode, fraction of the bandwidth limit", ">= 0.50", None, None))
    else:
        limit = decode["limit"]
        for name, result in decode["decode"].items():
            rows.append(row(f"batch-1 decode, {name} cache: fraction of the limit", ">= 0.50",
                            f"{result['fraction_of_limit']:.2f} ({result['tokens_per_s']:,.1f} of {limit['tokens_per_s']:,.1f} tokens/s)",
                            result["fraction_of_limit"] >= 0.5,
                            f"limit = {limit['bytes_read_per_token'] / GB:.2f} GB per token at "
                            f"{limit['copy_bandwidth_bytes_per_s'] / GB:,.0f} GB/s (copy, same run)"))
    if static is None or not static.get("decode"):
        rows.append(row("batch-1 decode, static cache compiled: fraction of the limit", ">= 0.50", None, None))
    else:
        limit = static["limit"]
        for name, result in static["decode"].items():
            rows.append(row(f"batch-1 decode, {name} cache (compiled: {result['compiled']}): fraction of the limit",
                            ">= 0.50", f"{result['fraction_of_limit']:.2f} ({result['tokens_per_s']:,.1f} of "
                            f"{limit['tokens_per_s']:,.1f} tokens/s)", result["fraction_of_limit"] >= 0.5))
    nf4 = (decode or {}).get("nf4")
    if nf4 is None:
        rows.append(row("4-bit NF4 load: weights memory and batch-1 decode", "(reported)", None, None))
    else:
        unquantized = sum(count for part, count in nf4["4bit_layers"].items() if part != "language_model")
        rows.append(row("4-bit NF4: vision tower, projector, lm_head unquantised", "0 4-bit layers there",
                        f"{unquantized} (LM: {nf4['4bit_layers']['language_model']})", unquantized == 0))
        rows.append(row("4-bit NF4: weights memory", "(reported)",
                        f"{nf4['footprint_bytes'] / GB:.2f} GB (unquantised {nf4['unquantized_footprint_bytes'] / GB:.2f} GB)", None,
                        f"load {nf4['load_seconds']:.0f} s"))
        rows.append(row("4-bit NF4: batch-1 decode", "(reported)",
                        f"{nf4['decode']['tokens_per_s']:,.1f} tokens/s ({nf4['decode']['fraction_of_limit']:.2f} of its limit)",
                        None))
    return rows


def peak_gb(result: dict) -> tuple[float, str]:
    """A case's peak memory in GB and what it is: CUDA max allocated on a GPU, the process's peak RSS on a CPU."""
    if result.get("peak_cuda_mib") is not None:
        return result["peak_cuda_mib"] * 2**20 / GB, "max allocated"
    return result["peak_rss_mib"] * 2**20 / GB, "peak RSS, CPU"


def train_rows(report: dict | None) -> list[dict]:
    results = (report or {}).get("results", {})
    gz, stock, resampler = (results.get(case) for case in ("instruct-gz", "instruct-stock", "instruct-resampler"))
    rows = []
    if gz is None:
        rows.append(row("QLoRA instruct, batch 4, 576 image tokens: peak memory", "< 16 GB", None, None))
    else:
        peak, what = peak_gb(gz)
        batch = report.get("options", {}).get("batch", "?")
        rows.append(row(f"QLoRA instruct, batch {batch}, {gz['image_tokens']} image tokens: peak memory ({what})", "< 16 GB",
                        f"{peak:.2f} GB", peak < 16, f"{gz['samples_per_s']:.2f} samples/s"))
    if gz is None or stock is None:
        rows.append(row("QLoRA instruct: samples/s ours / stock Llava on TRL", ">= 1.0", None, None))
    else:
        rows.append(row("QLoRA instruct: samples/s ours / stock Llava on TRL", ">= 1.0",
                        f"{gz['samples_per_s'] / stock['samples_per_s']:.3f}x",
                        gz["samples_per_s"] / stock["samples_per_s"] >= 0.99,
                        f"stock {stock['samples_per_s']:.2f} samples/s, peak {peak_gb(stock)[0]:.2f} GB"))
    if gz is None or resampler is None:
        rows.append(row("QLoRA instruct: resampler (64 queries) step speed-up over mlp", ">= 3x", None, None))
    else:
        speedup = gz["step_s"] / resampler["step_s"]  # median step times: "faster per step"
        rows.append(row(f"QLoRA instruct: resampler ({resampler['image_tokens']} queries) step speed-up over mlp", ">= 3x",
                        f"{speedup:.2f}x",
                        speedup >= 3, f"resampler peak {peak_gb(resampler)[0]:.2f} GB"))
    return rows


def table(rows: list[dict], environment: dict | None, shape: str | None) -> str:
    mark = {True: "yes", False: "**no**", None: ""}
    head = []
    if environment:
        head = [f"{environment.get('date')}, {environment.get('device')}, torch {environment.get('torch')}, "
                f"transformers {environment.get('transformers')}; shape {shape}, random weights", ""]
    lines = head + ["| check | goal | measured | met | note |", "|---|---|---|---|---|"]
    lines += [f"| {r['check']} | {r['goal']} | {r['measured']} | {mark[r['met']]} | {r['note']} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python benchmarks/gpu_report.py OUT_DIR (the folder gpu_suite.sh wrote)", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    parts = load_parts(folder)
    rows = model_rows(parts["model"]) + decode_rows(parts["decode"], parts["static"]) + train_rows(parts["train"])
    environment = next((p["environment"] for p in (parts["model"], parts["decode"]) if p), None)
    shape = next((p["shape"]["name"] if isinstance(p["shape"], dict) else p["shape"]
                  for p in (parts["model"], parts["decode"]) if p), None)
    markdown = table(rows, environment, shape)
    (folder / "gpu_suite.md").write_text(markdown + "\n")
    (folder / "gpu_suite.json").write_text(json.dumps({"rows": rows, "parts": parts}, indent=2))
    print(markdown)
    return 0 if all(parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
