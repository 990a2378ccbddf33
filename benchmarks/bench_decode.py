"""Batch-1 decoding of GZ-LLaVA against the memory-bandwidth limit, and the 4-bit NF4 load, in one run.

Decoding one token at batch 1 reads every weight the language model uses once: its decoder layers, final norm and
LM head (the embedding table only by one row). So tokens/s can be at most bandwidth / those bytes: the limit.
Measured in the same run, on the same random weights (a shape of bench_model.py):
  - bandwidth: a device-to-device copy of a large buffer, bytes read + written per second: what this machine's
    memory actually moves (on an H200 below the datasheet's 4.8 TB/s, which is also printed as a second limit);
  - decode: greedy `generate` at batch 1 after a llava-1.5 prompt with one image; every step is timed (a stopping
    criterion that synchronises and reads the clock, and stops nothing), and decode tokens/s is the steps after the
    first (the prefill) over their time. For GZ-LLaVA and stock `LlavaForConditionalGeneration` holding the same
    tensors (the reference), with generate's default dynamic cache, and with `--modes ...,static` the static cache,
    which transformers compiles on CUDA (torch.compile, CUDA graphs): the way to approach the limit;
  - nf4: the model saved and loaded again with `BitsAndBytesConfig(load_in_4bit=True, nf4)`. GZ-LLaVA keeps its
    vision tower, projector and LM head unquantised; the report counts the 4-bit layers of each part, the weights'
    memory against bf16, and the 4-bit model's batch-1 decode tokens/s (bitsandbytes does not compile).

    python benchmarks/bench_decode.py --shape llava-1.5-7b --device cuda --modes dynamic,static,nf4 --json decode_7b.json
    OMP_NUM_THREADS=2 python benchmarks/bench_decode.py --shape tiny --threads 2 --modes dynamic,static,nf4
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import BitsAndBytesConfig, StoppingCriteria, StoppingCriteriaList

from bench_model import (OURS, REFERENCE, SHAPES, add_model_arguments, build_models, check_model_arguments, environment,
                         generation_config, make_inputs, synchronize)
from modeling_gzllava import GZLlavaForConditionalGeneration


logger = logging.getLogger("bench_decode")

GB = 1e9
DATASHEET_BANDWIDTH = {"NVIDIA H200": 4.8e12, "NVIDIA H100 80GB HBM3": 3.35e12}  # bytes/s, vendor datasheets


class StepClock(StoppingCriteria):
    """Reads the clock after every generated token (after a device sync); never stops generation."""

    def __init__(self, device: str):
        self.device, self.times = device, []

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        synchronize(self.device)
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # (B,) nobody is done


def copy_bandwidth(device: str, megabytes: int, repeats: int = 10) -> float:
    """Bytes per second moved by copying one buffer into another (each copy reads and writes `megabytes`)."""
    source = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device).random_()
    target = torch.empty_like(source)
    target.copy_(source)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        target.copy_(source)
    synchronize(device)
    seconds = time.perf_counter() - start
    del source, target
    return 2 * megabytes * 2**20 * repeats / seconds


def bytes_read_per_token(model) -> int:
    """Bytes of the weights one batch-1 decode step reads: the language model without its input embedding, plus the
    LM head (counted once when it is tied to the embedding). 4-bit layers count their packed bytes and quant state."""
    language_model, lm_head = model.model.language_model, model.get_output_embeddings()
    embedding = language_model.get_input_embeddings().weight
    tensors = {id(t): t for t in [*language_model.parameters(), *language_model.buffers()] if t is not embedding}
    tensors.update({id(t): t for t in lm_head.parameters()})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    for module in language_model.modules():  # bitsandbytes keeps 4-bit absmax/code outside the parameters
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            total += state.absmax.numel() * state.absmax.element_size()
    return total


def decode_rate(model, inputs: dict, new_tokens: int, device: str, cache: str, repeats: int, warmup: int) -> dict:
    """Batch-1 decode tokens/s of greedy generate (prefill excluded): the median over `repeats` calls."""
    config = generation_config(new_tokens, model.config)
    if cache == "static":
        config.cache_implementation = "static"
    rates, tokens = [], []
    for index in range(warmup + repeats):
        clock = StepClock(device)
        with torch.inference_mode():
            output = model.generate(**inputs, generation_config=config, stopping_criteria=StoppingCriteriaList([clock]))
        if output.shape[1] != inputs["input_ids"].shape[1] + new_tokens:
            raise RuntimeError(f"generate returned {output.shape[1] - inputs['input_ids'].shape[1]} tokens, not {new_tokens}")
        if index >= warmup:
            steps = clock.times  # one per new token; the first ends the prefill
            rates.append((len(steps) - 1) / (steps[-1] - steps[0]))
        tokens.append(output[0, -new_tokens:].tolist())
    # Greedy decoding of random weights meets near-ties, where the last bit of a logit picks the token: whether
    # repeated calls of one model agree tells run-to-run kernel differences from differences between two models.
    return {"cache": cache, "compiled": hasattr(model, "_compiled_call"), "new_tokens": new_tokens,
            "tokens_per_s": statistics.median(rates), "runs": rates, "last_tokens": tokens[-1],
            "same_tokens_every_call": all(t == tokens[0] for t in tokens)}


def count_4bit(model) -> dict:
    """4-bit linear layers in each part of the model."""
    import bitsandbytes as bnb

    parts = {"vision_tower": model.model.vision_tower, "projector": model.model.multi_modal_projector,
             "language_model": model.model.language_model, "lm_head": model.lm_head}
    return {name: sum(isinstance(m, bnb.nn.Linear4bit) for m in part.modules()) for name, part in parts.items()}


def allocated(device: str) -> int | None:
    return torch.cuda.memory_allocated() if device.startswith("cuda") else None


def measure_nf4(model, inputs: dict, args, workdir: Path, dtype: torch.dtype) -> dict:
    """Save `model`, free it, load it back in 4-bit NF4, and measure its memory and batch-1 decode."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix="bench-decode-") as folder:
        start = time.perf_counter()
        model.save_pretrained(folder, max_shard_size="20GB")
        saved_s = time.perf_counter() - start
        bf16_bytes = model.get_memory_footprint()
        del model
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        before = allocated(args.device)
        start = time.perf_counter()
        quantized = GZLlavaForConditionalGeneration.from_pretrained(
            folder, dtype=dtype, device_map=args.device, quantization_config=BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)).eval()
        loaded_s = time.perf_counter() - start
    report = {
        "save_seconds": saved_s, "load_seconds": loaded_s, "4bit_layers": count_4bit(quantized),
        "footprint_bytes": quantized.get_memory_footprint(), "unquantized_footprint_bytes": bf16_bytes,
        "allocated_after_load_bytes": None if before is None else allocated(args.device) - before,
        "peak_during_load_bytes": torch.cuda.max_memory_allocated() - before if before is not None else None,
        "bytes_read_per_token": bytes_read_per_token(quantized),
    }
    report["decode"] = decode_rate(quantized, inputs, args.new_tokens, args.device, "dynamic",
                                   args.repeats, args.warmup)
    return report


def run(args, save) -> dict:
    """Measure `args.modes` in order; `save(report)` after each, so a run stopped by a time limit keeps what it has."""
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    shape = SHAPES[args.shape]
    models = build_models(shape, shape.num_query_tokens, args.device, dtype, args.seed)
    models = {name: models[name] for name in (OURS, REFERENCE)}
    inputs = make_inputs(models[OURS].config, 1, args.text_tokens, args.device, dtype, args.seed)  # batch 1
    report = {"environment": environment(argparse.Namespace(device=args.device, clock="wall", dtype=args.dtype), models),
              "shape": args.shape, "settings": {k: str(v) for k, v in vars(args).items() if k != "json"},
              "prompt_tokens": inputs["input_ids"].shape[1], "decode": {}, "same_tokens_as_stock": {}}
    bandwidth = copy_bandwidth(args.device, args.copy_megabytes)
    weights = bytes_read_per_token(models[OURS])
    datasheet = DATASHEET_BANDWIDTH.get(report["environment"]["device"])
    report["limit"] = {"copy_bandwidth_bytes_per_s": bandwidth, "bytes_read_per_token": weights,
                       "tokens_per_s": bandwidth / weights, "datasheet_bandwidth_bytes_per_s": datasheet,
                       "datasheet_tokens_per_s": datasheet / weights if datasheet else None}
    decode = report["decode"]
    for mode in args.modes:
        start = time.perf_counter()
        if mode == "dynamic":
            for name in tqdm(list(models), desc="batch-1 decode, dynamic cache"):
                decode[f"{name} dynamic"] = decode_rate(models[name], inputs, args.new_tokens, args.device, "dynamic",
                                                        args.repeats, args.warmup)
        elif mode == "static":  # each model's first calls compile (CUDA): extra warm-up
            for name in tqdm(list(models), desc="batch-1 decode, static cache"):
                decode[f"{name} static"] = decode_rate(models[name], inputs, args.new_tokens, args.device, "static",
                                                       args.repeats, args.warmup + args.static_warmup)
        else:  # nf4: the bf16 models are freed first, so it comes last
            ours = models.pop(OURS)
            models.clear()  # the reference shares ours' tensors: drop it so that freeing ours releases them
            report["nf4"] = measure_nf4(ours, inputs, args, args.workdir, dtype)
            del ours
            report["nf4"]["decode"]["fraction_of_limit"] = report["nf4"]["decode"]["tokens_per_s"] / (
                bandwidth / report["nf4"]["bytes_read_per_token"])
        report.setdefault("seconds", {})[mode] = time.perf_counter() - start
        for name, row in decode.items():
            row["fraction_of_limit"] = row["tokens_per_s"] / report["limit"]["tokens_per_s"]
            # Same weights and cache, so ours must give the stock reference's greedy tokens.
            stock = decode.get(f"{REFERENCE} {row['cache']}")
            report["same_tokens_as_stock"][name] = None if stock is None else row["last_tokens"] == stock["last_tokens"]
        save(report)
    return report


def format_report(report: dict) -> str:
    env, limit = report["environment"], report["limit"]
    lines = [
        f"{env['device']}; torch {env['torch']}, transformers {env['transformers']}; {report['shape']}, "
        f"{env['dtype']}, batch 1, {report['prompt_tokens']} prompt tokens, {report['settings']['new_tokens']} new tokens, "
        f"median of {report['settings']['repeats']} after {report['settings']['warmup']} warm-up",
        f"limit: {limit['bytes_read_per_token'] / GB:.2f} GB read per token at {limit['copy_bandwidth_bytes_per_s'] / GB:,.0f} GB/s "
        f"(device-to-device copy, this run) = {limit['tokens_per_s']:,.1f} tokens/s"
        + (f"; at the datasheet's {limit['datasheet_bandwidth_bytes_per_s'] / GB:,.0f} GB/s: "
           f"{limit['datasheet_tokens_per_s']:,.1f} tokens/s" if limit["datasheet_tokens_per_s"] else ""),
        "",
        "| model, cache | compiled | decode tokens/s | fraction of the limit | same tokens as stock | same tokens every call |",
        "|---|---|---:|---:|---|---|",
    ]
    for name, row in report["decode"].items():
        lines.append(f"| {name} | {row['compiled']} | {row['tokens_per_s']:,.1f} | {row['fraction_of_limit']:.2f} "
                     f"| {report['same_tokens_as_stock'][name]} | {row['same_tokens_every_call']} |")
    if "nf4" in report:
        nf4 = report["nf4"]
        lines += [
            "",
            f"nf4: weights {nf4['footprint_bytes'] / GB:.2f} GB (unquantised {nf4['unquantized_footprint_bytes'] / GB:.2f} GB, "
            f"x{nf4['unquantized_footprint_bytes'] / nf4['footprint_bytes']:.2f}); 4-bit layers {nf4['4bit_layers']}; "
            f"load {nf4['load_seconds']:.1f} s"
            + (f", peak during load {nf4['peak_during_load_bytes'] / GB:.2f} GB" if nf4["peak_during_load_bytes"] else ""),
            f"nf4 batch-1 decode: {nf4['decode']['tokens_per_s']:,.1f} tokens/s, {nf4['bytes_read_per_token'] / GB:.2f} GB "
            f"read per token, fraction of its limit {nf4['decode']['fraction_of_limit']:.2f}",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--text-tokens", type=int, default=24, help="text tokens after the image")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--modes", default="dynamic,nf4",
                        help="in order, comma-separated: dynamic (ours and stock, generate's default cache), static "
                             "(ours and stock, the static cache, compiled by transformers on CUDA), nf4 (4-bit load; frees the "
                             "bf16 model, so it must be last)")
    parser.add_argument("--static-warmup", type=int, default=2, help="extra warm-up calls for the static cache's compile")
    parser.add_argument("--copy-megabytes", type=int, default=None, help="bandwidth buffer (default 4096 cuda, 256 cpu)")
    parser.add_argument("--workdir", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                        help="where the nf4 round trip saves the model (default /dev/shm)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    check_model_arguments(parser, args)
    if min(args.new_tokens - 1, args.repeats) < 1 or min(args.warmup, args.static_warmup, args.text_tokens) < 0:
        parser.error("--new-tokens must be >= 2, --repeats >= 1; --warmup, --static-warmup, --text-tokens >= 0")
    args.modes = args.modes.split(",")
    unknown = sorted(set(args.modes) - {"dynamic", "static", "nf4"})
    if unknown or len(set(args.modes)) != len(args.modes) or ("nf4" in args.modes and args.modes[-1] != "nf4"):
        parser.error(f"--modes {','.join(args.modes)}: give dynamic, static, nf4 at most once each, nf4 last")
    if args.copy_megabytes is None:
        args.copy_megabytes = 4096 if args.device.startswith("cuda") else 256
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    def save(report: dict) -> None:
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))

    report = run(args, save)
    print(format_report(report))
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(0 if main() else 1)
