"""Speed and memory of GZ-LLaVA against stock `LlavaForConditionalGeneration` with identical weights, in one run.

Three models share one vision tower and one language model (random weights, built from configs):
  - `gz/mlp2x_gelu`:    GZLlavaForConditionalGeneration with the llava-1.5 projector (ours);
  - `llava/mlp2x_gelu`: transformers' own LlavaForConditionalGeneration holding the SAME tensors
                        (`gzllava.llava_export.to_llava_model`): the reference;
  - `gz/resampler`:     GZ-LLaVA with a `--queries`-query resampler (fewer image tokens); stock llava has
                        no resampler, so it is compared with its own mlp counterpart.
Each is measured on the same batch of images and text (`--batch-size` prompts of 4 text tokens, the image
tokens, then `--text-tokens` text tokens):
  (a) forward: one full forward pass, logits for every position; tokens/s counts image + text tokens;
  (b) generate: greedy `generate` of exactly `--new-tokens` tokens (prefill included); tokens/s counts new tokens;
  (c) peak memory of one forward / one generate above the memory held before it (weights, inputs), `--memory`:
      `tensors` (default): the peak of the bytes torch's allocator holds for tensors created by the call, exact
        and deterministic: CUDA `torch.cuda.max_memory_allocated`; CPU the running total that torch's CPU
        allocator reports to the profiler (`profile_memory=True`) on every allocation and free;
      `rss` (CPU): the process's RSS high-water mark (VmHWM, reset through /proc/self/clear_refs) above its RSS
        before the call, in a fresh process per measurement (memory that malloc kept from an earlier call would
        hide a later one). It includes what malloc and oneDNN add beyond the tensors, and is noisy (+-25% here).
Runs are interleaved (every repeat runs all models, in alternating order) to cancel drift on a shared
machine; figures are medians over `--repeats`. On CPU a run's time is the process's CPU time (`--clock cpu`,
the default there), which other processes' load inflates far less than wall time; `--clock wall` for elapsed time. Time ratios are reference time / our time (>= 1.0: no overhead),
taken per round (the two runs compared are adjacent in time) and then the median over rounds; memory ratios are
reference memory / our memory; the mlp logits of ours and of stock llava must be identical (max |diff| 0.0).

    OMP_NUM_THREADS=1 python benchmarks/bench_model.py --shape tiny --threads 1 --repeats 30
    OMP_NUM_THREADS=2 python benchmarks/bench_model.py --shape small --threads 2 --repeats 7
    python benchmarks/bench_model.py --shape llava-1.5-7b --device cuda --batch-size 8 --new-tokens 64 --json 7b.json
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from tqdm.auto import tqdm
from transformers import CLIPVisionConfig, GenerationConfig, LlamaConfig

from configuration_gzllava import GZLlavaConfig
from gzllava.llava_export import to_llava_model
from modeling_gzllava import PROJECTORS, GZLlavaForConditionalGeneration


logger = logging.getLogger("bench_model")

OURS, REFERENCE, RESAMPLER = "gz/mlp2x_gelu", "llava/mlp2x_gelu", "gz/resampler"
MODEL_NAMES = (OURS, REFERENCE, RESAMPLER)
MODES = ("forward", "generate")
PROMPT_PREFIX_TOKENS = 4  # "<s> USER :" before the image, as in a llava-1.5 prompt
MIB = 2**20


@dataclass(frozen=True)
class Shape:
    """A vision tower + language model shape; the projector and the image-token id are added by `gzllava_config`."""

    vision: dict
    text: dict
    num_query_tokens: int
    resampler_num_heads: int = 8
    notes: str = ""


SHAPES = {
    # The tests' tiny model (gzllava.tiny defaults): 32 px CLIP, patch 8 -> 16 image tokens.
    "tiny": Shape(
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                    image_size=32, patch_size=8),
        text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=640),
        num_query_tokens=4, resampler_num_heads=4, notes="the test sizes; 16 image tokens (mlp) vs 4 (resampler)"),
    # Still CPU-friendly, with llava's proportions: 224 px, patch 14 -> 256 image tokens, a Llama vocabulary.
    "small": Shape(
        vision=dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=4,
                    image_size=224, patch_size=14),
        text=dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=8, vocab_size=32064),
        num_query_tokens=64, notes="256 image tokens (mlp) vs 64 (resampler)"),
    # llava-1.5-7b: CLIP ViT-L/14-336 + Llama-2-7B (vicuna-7b-v1.5 shapes; 32064 = llava-hf's padded vocabulary).
    "llava-1.5-7b": Shape(
        vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=336, patch_size=14, projection_dim=768),
        text=dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, vocab_size=32064, max_position_embeddings=4096, rms_norm_eps=1e-5),
        num_query_tokens=64, notes="GPU only: 7.1B parameters; 576 image tokens (mlp) vs 64 (resampler)"),
}


def gzllava_config(shape: Shape, projector_type: str, num_query_tokens: int) -> GZLlavaConfig:
    """The GZ-LLaVA config of a shape; the last vocabulary id is the `<image>` token, as compose puts it after the LM's."""
    return GZLlavaConfig(
        vision_config=CLIPVisionConfig(**shape.vision).to_dict(),
        text_config=LlamaConfig(**shape.text, bos_token_id=1, eos_token_id=2, pad_token_id=0).to_dict(),
        image_token_id=shape.text["vocab_size"] - 1,
        projector_type=projector_type,
        num_query_tokens=num_query_tokens,
        resampler_num_heads=shape.resampler_num_heads,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )


def build_models(shape: Shape, num_query_tokens: int, device: str, dtype: torch.dtype, seed: int = 0) -> dict:
    """The three benchmarked models, sharing one vision tower and one language model (no copies: a 7B fits once)."""
    torch.manual_seed(seed)
    with torch.device(device):  # weights are created where they are used: no 7B detour through CPU memory
        ours = GZLlavaForConditionalGeneration._from_config(
            gzllava_config(shape, "mlp2x_gelu", num_query_tokens), dtype=dtype, attn_implementation="sdpa")
    reference = to_llava_model(ours)  # stock transformers class, the same tensors
    # Same trick as gzllava.compose: a meta shell, then the shared parts and a fresh projector put in place.
    resampler_config = gzllava_config(shape, "resampler", num_query_tokens)
    with torch.device("meta"):
        resampler = GZLlavaForConditionalGeneration._from_config(resampler_config, dtype=dtype, attn_implementation="sdpa")
    resampler.model.vision_tower = ours.model.vision_tower
    resampler.model.language_model = ours.model.language_model
    resampler.lm_head = ours.lm_head
    with torch.device(device):
        projector = PROJECTORS["resampler"](resampler.config).to(dtype)
    projector.apply(resampler._init_weights)
    resampler.model.multi_modal_projector = projector
    return {OURS: ours.eval(), REFERENCE: reference.eval(), RESAMPLER: resampler.eval()}


def make_inputs(config, batch_size: int, text_tokens: int, device: str, dtype: torch.dtype, seed: int = 0) -> dict:
    """`batch_size` llava-1.5-style prompts: 4 text tokens, the image's tokens, `text_tokens` text tokens; random images.

    The text and pixels depend only on the seed, so the mlp and resampler prompts differ only in their image tokens.
    """
    generator = torch.Generator().manual_seed(seed)
    vocab, image_token = config.text_config.vocab_size, config.image_token_id
    text = torch.randint(3, vocab - 1, (batch_size, PROMPT_PREFIX_TOKENS + text_tokens), generator=generator)
    text[:, 0] = config.text_config.bos_token_id
    image = torch.full((batch_size, config.num_image_tokens), image_token)
    input_ids = torch.cat([text[:, :PROMPT_PREFIX_TOKENS], image, text[:, PROMPT_PREFIX_TOKENS:]], dim=1)
    size = config.vision_config.image_size
    pixel_values = torch.randn(batch_size, 3, size, size, generator=generator)
    return {
        "input_ids": input_ids.to(device),  # (B, 4 + image tokens + text_tokens)
        "attention_mask": torch.ones_like(input_ids).to(device),
        "pixel_values": pixel_values.to(device=device, dtype=dtype),  # (B, 3, H, W)
    }


def generation_config(new_tokens: int, config) -> GenerationConfig:
    """Greedy, exactly `new_tokens` tokens (no eos to stop early), never the `<image>` token."""
    return GenerationConfig(
        do_sample=False, max_new_tokens=new_tokens, eos_token_id=None, pad_token_id=config.text_config.pad_token_id,
        suppress_tokens=[config.image_token_id])


def synchronize(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_once(model, mode: str, inputs: dict, gen_config: GenerationConfig):
    """One forward (-> logits (B, S, V)) or one greedy generate (-> token ids (B, S + new_tokens))."""
    with torch.inference_mode():
        if mode == "forward":
            return model(**inputs).logits
        return model.generate(**inputs, generation_config=gen_config)


# ---------------------------------------------------------------- memory

def _cpu_tensor_peak_bytes(model, mode: str, inputs: dict, gen_config: GenerationConfig) -> int:
    """Peak bytes of CPU tensors allocated by one call, from the allocator's running total seen by the profiler."""
    # Private but stable API: torch.profiler._memory_profiler reads these same Allocation events.
    from torch._C._profiler import _EventType

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
        output = run_once(model, mode, inputs, gen_config)
    del output
    pending, allocations = list(profiler.profiler.kineto_results.experimental_event_tree()), []
    while pending:
        event = pending.pop()
        pending.extend(event.children)
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            allocations.append(event)
    if not allocations:
        return 0
    allocations.sort(key=lambda event: event.start_time_ns)
    # `total_allocated` counts from whenever profiling first ran in this process: subtract the total before the call.
    first = allocations[0].extra_fields
    before = first.total_allocated - first.alloc_size
    return max(event.extra_fields.total_allocated for event in allocations) - before


def _rss_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name} line: --memory rss needs Linux.")


def peak_memory_mib(model, mode: str, inputs: dict, gen_config: GenerationConfig, device: str, method: str) -> float:
    """Peak memory of one call above the memory held before it, in MiB (the module docstring says what is counted)."""
    if device.startswith("cuda"):
        gc.collect()  # tensors kept alive only by reference cycles would count in `before`
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        output = run_once(model, mode, inputs, gen_config)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        del output
        return peak / MIB
    if method == "tensors":
        return _cpu_tensor_peak_bytes(model, mode, inputs, gen_config) / MIB
    gc.collect()
    before = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: reset VmHWM to the current RSS
    output = run_once(model, mode, inputs, gen_config)
    peak = _rss_kib("VmHWM") - before
    del output
    return peak * 1024 / MIB


def rss_in_fresh_process(args, name: str, mode: str) -> float:
    """`peak_memory_mib(..., "rss")` for one (model, mode) in a new Python process built from the same arguments."""
    command = [sys.executable, str(Path(__file__).resolve()), "--probe-rss", name, mode,
               "--shape", args.shape, "--dtype", args.dtype, "--batch-size", str(args.batch_size),
               "--text-tokens", str(args.text_tokens), "--new-tokens", str(args.new_tokens), "--queries", str(args.queries),
               "--threads", str(args.threads), "--seed", str(args.seed)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"RSS probe {name} {mode} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def measure_memory(models: dict, inputs: dict, gen_configs: dict, args) -> dict:
    """{model: {mode: peak MiB}} by the `--memory` method; {} for `off`."""
    if args.memory == "off":
        return {}
    memory = {name: {} for name in models}
    for name in tqdm(models, desc=f"peak memory ({args.memory})"):
        for mode in MODES:
            if args.memory == "rss" and not args.device.startswith("cuda"):
                memory[name][mode] = rss_in_fresh_process(args, name, mode)
            else:
                memory[name][mode] = peak_memory_mib(
                    models[name], mode, inputs[name], gen_configs[name], args.device, args.memory)
    return memory


# ---------------------------------------------------------------- timing

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(model, mode: str, inputs: dict, gen_config: GenerationConfig, device: str, clock: str = "wall") -> tuple[float, torch.Tensor]:
    """Seconds of one call by `clock`: wall time, or this process's CPU time (all its threads), which other
    processes' load on a shared machine inflates far less (it still pays for their cache and memory traffic)."""
    now = CLOCKS[clock]
    synchronize(device)
    start = now()
    output = run_once(model, mode, inputs, gen_config)
    synchronize(device)
    return now() - start, output


def measure_times(models: dict, inputs: dict, gen_configs: dict, args) -> tuple[dict, dict]:
    """Seconds per call for every (model, mode), interleaved; also the last outputs of ours and the reference."""
    times = {name: {mode: [] for mode in MODES} for name in models}
    last_outputs = {}
    rounds = args.warmup + args.repeats
    for round_index in tqdm(range(rounds), desc=f"{args.shape}: {args.warmup} warm-up + {args.repeats} timed rounds"):
        order = list(models) if round_index % 2 == 0 else list(models)[::-1]  # A B C, C B A, ...: drift cancels
        for mode in MODES:
            for name in order:
                seconds, output = timed(models[name], mode, inputs[name], gen_configs[name], args.device, args.clock)
                if round_index >= args.warmup:
                    times[name][mode].append(seconds)
                if name in (OURS, REFERENCE):
                    last_outputs[name, mode] = output
                del output
    return times, last_outputs


# ---------------------------------------------------------------- report

def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())


def environment(args, models: dict) -> dict:
    cpu = cpu_name()
    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu ({cpu})",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min_at_start": os.getloadavg()[0],
        "clock": args.clock,
        "dtype": args.dtype,
        "attention": {name: model.config.text_config._attn_implementation for name, model in models.items()},
    }


def summarise(times: list[float], tokens: int) -> dict:
    median = statistics.median(times)
    return {"median_s": median, "min_s": min(times), "max_s": max(times), "tokens": tokens,
            "tokens_per_s": tokens / median, "runs": len(times)}


def build_report(args, shape: Shape, models: dict, inputs: dict, times: dict, last_outputs: dict, memory: dict, env: dict) -> dict:
    per_model = {}
    for name, model in models.items():
        batch, seq = inputs[name]["input_ids"].shape
        per_model[name] = {
            "class": type(model).__name__,
            "projector": model.config.projector_type if hasattr(model.config, "projector_type") else "mlp2x_gelu",
            "image_tokens_per_prompt": model.config.image_seq_length,
            "prompt_tokens": seq,
            "forward": summarise(times[name]["forward"], batch * seq),
            "generate": summarise(times[name]["generate"], batch * args.new_tokens),
            "peak_memory_mib": memory.get(name, {"forward": None, "generate": None}),
        }

    def ratio(numerator_model: str, denominator_model: str) -> dict:
        """Time ratios: the median of per-round ratios (the two runs of a round are adjacent in time, so load that
        changes between rounds cancels), its quartiles, and the ratio of the fastest runs; then memory ratios."""
        out = {}
        for mode in MODES:
            paired = [slow / fast for slow, fast in zip(times[numerator_model][mode], times[denominator_model][mode])]
            quartiles = statistics.quantiles(paired, n=4, method="inclusive") if len(paired) > 1 else paired * 3
            out[mode] = statistics.median(paired)
            out[f"{mode}_quartiles"] = [quartiles[0], quartiles[2]]
            out[f"{mode}_ratio_of_fastest"] = min(times[numerator_model][mode]) / min(times[denominator_model][mode])
        for mode in MODES:
            numerator = per_model[numerator_model]["peak_memory_mib"][mode]
            denominator = per_model[denominator_model]["peak_memory_mib"][mode]
            out[f"peak_memory_{mode}"] = numerator / denominator if numerator and denominator else None
        return out

    logit_diff = (last_outputs[OURS, "forward"].float() - last_outputs[REFERENCE, "forward"].float()).abs().max().item()
    same_tokens = torch.equal(last_outputs[OURS, "generate"], last_outputs[REFERENCE, "generate"])
    return {
        "environment": env,
        "shape": {"name": args.shape, "vision": shape.vision, "text": shape.text, "notes": shape.notes,
                  "parameters_millions": round(sum(p.numel() for p in models[OURS].parameters()) / 1e6, 2)},
        "settings": {"batch_size": args.batch_size, "text_tokens": args.text_tokens, "new_tokens": args.new_tokens,
                     "queries": args.queries, "repeats": args.repeats, "warmup": args.warmup, "seed": args.seed,
                     "memory": memory_method(args)},
        "models": per_model,
        "comparisons": {
            "gz_vs_stock_llava": {"what": "reference / ours (>= 1.0: GZ-LLaVA adds no overhead)",
                                  **ratio(REFERENCE, OURS), "max_abs_logit_diff": logit_diff,
                                  "same_greedy_tokens": same_tokens},
            "resampler_vs_mlp": {"what": f"gz mlp2x_gelu / gz resampler ({args.queries} queries): speed-up, memory saving",
                                 **ratio(OURS, RESAMPLER)},
        },
    }


def memory_method(args) -> str:
    if args.memory == "off":
        return "not measured"
    if args.device.startswith("cuda"):
        return "tensors: torch.cuda.max_memory_allocated above the memory allocated before the call"
    if args.memory == "tensors":
        return "tensors: peak of torch's CPU allocator total (profiler) above the total before the call"
    return "rss: RSS high-water mark above the RSS before the call, fresh process per measurement"


def format_report(report: dict) -> str:
    env, shape, settings = report["environment"], report["shape"], report["settings"]
    lines = [
        f"torch {env['torch']}, transformers {env['transformers']}, python {env['python']}; {env['device']}; "
        f"{env['torch_threads']} thread(s) (OMP_NUM_THREADS={env['OMP_NUM_THREADS']}), {env['cpu_count']} cores, "
        f"load {env['load_average_1min_at_start']:.2f} at start, {env.get('load_average_1min_after_timing', float('nan')):.2f} "
        f"after timing; {env['dtype']}; attention {set(env['attention'].values())}; clock: {env['clock']} "
        f"({'process CPU time' if env['clock'] == 'cpu' else 'wall time'})",
        f"shape {shape['name']} ({shape['parameters_millions']}M parameters; {shape['notes']}); batch {settings['batch_size']}, "
        f"{settings['text_tokens']} text tokens + image tokens per prompt, {settings['new_tokens']} new tokens; "
        f"median of {settings['repeats']} interleaved runs after {settings['warmup']} warm-up; memory: {settings['memory']}",
        "",
        "| model | image tokens | forward ms (min-max) | forward tokens/s | generate ms (min-max) | generate new tokens/s "
        "| peak MiB forward | peak MiB generate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def mib(value):
        return "n/a" if value is None else f"{value:.1f}"

    for name, row in report["models"].items():
        cells = [f"{name} ({row['class']})", str(row["image_tokens_per_prompt"])]
        for mode in MODES:
            timing = row[mode]
            cells += [f"{timing['median_s'] * 1e3:.1f} ({timing['min_s'] * 1e3:.1f}-{timing['max_s'] * 1e3:.1f})",
                      f"{timing['tokens_per_s']:,.0f}"]
        cells += [mib(row["peak_memory_mib"]["forward"]), mib(row["peak_memory_mib"]["generate"])]
        lines.append("| " + " | ".join(cells) + " |")

    def times(value):
        return "n/a" if value is None else f"{value:.3f}x"

    def time_ratio(comparison, mode):
        low, high = comparison[f"{mode}_quartiles"]
        return f"{comparison[mode]:.3f}x ({low:.2f}-{high:.2f}; fastest {comparison[f'{mode}_ratio_of_fastest']:.3f}x)"

    ours_vs_ref, resampler = report["comparisons"]["gz_vs_stock_llava"], report["comparisons"]["resampler_vs_mlp"]
    lines += [
        "",
        "time ratios: median of per-round ratios (quartiles; ratio of the fastest runs)",
        "",
        "| comparison | forward | generate | peak memory forward | peak memory generate | max abs logit diff | same greedy tokens |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| GZ-LLaVA vs stock Llava, mlp2x_gelu (ref time / our time) | {time_ratio(ours_vs_ref, 'forward')} "
        f"| {time_ratio(ours_vs_ref, 'generate')} | {times(ours_vs_ref['peak_memory_forward'])} "
        f"| {times(ours_vs_ref['peak_memory_generate'])} | {ours_vs_ref['max_abs_logit_diff']:.1e} "
        f"| {ours_vs_ref['same_greedy_tokens']} |",
        f"| resampler ({settings['queries']} queries) vs mlp2x_gelu, both GZ-LLaVA (mlp time / resampler time) "
        f"| {time_ratio(resampler, 'forward')} | {time_ratio(resampler, 'generate')} | {times(resampler['peak_memory_forward'])} "
        f"| {times(resampler['peak_memory_generate'])} | n/a | n/a |",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI

def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--shape, --device, --dtype: shared by the benchmarks that build these models (bench_decode.py too)."""
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                        help="auto: bfloat16 on cuda, float32 on cpu")


def check_model_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Resolve --dtype auto; refuse a GPU-only shape on a CPU and a CUDA device torch does not see."""
    if args.dtype == "auto":
        args.dtype = "bfloat16" if args.device.startswith("cuda") else "float32"
    if args.shape == "llava-1.5-7b" and not args.device.startswith("cuda"):
        parser.error("--shape llava-1.5-7b needs --device cuda (7.1B parameters; far too slow and large for a CPU run)")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--text-tokens", type=int, default=24, help="text tokens after the image (a short question)")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens generated per prompt")
    parser.add_argument("--queries", type=int, default=None, help="resampler queries (default: the shape's)")
    parser.add_argument("--repeats", type=int, default=7, help="timed interleaved rounds; the median is reported")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (set OMP_NUM_THREADS to match)")
    parser.add_argument("--memory", choices=("tensors", "rss", "off"), default="tensors",
                        help="tensors: torch allocator peak (exact); rss: process RSS high-water mark in a fresh process "
                             "per measurement (CPU only; includes malloc/oneDNN overhead, noisy); off")
    parser.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                        help="what a run's time is: cpu = this process's CPU time (robust to other processes' load on a "
                             "shared machine), wall = elapsed time; auto: cpu on --device cpu, wall on cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the full report here")
    parser.add_argument("--probe-rss", nargs=2, metavar=("MODEL", "MODE"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clock == "auto":
        args.clock = "wall" if args.device.startswith("cuda") else "cpu"
    if args.clock == "cpu" and args.device.startswith("cuda"):
        parser.error("--clock cpu measures host CPU time, not GPU work: use --clock wall with --device cuda")
    check_model_arguments(parser, args)
    if args.memory == "rss" and args.device.startswith("cuda"):
        parser.error("--memory rss measures a CPU process; on cuda use --memory tensors (the CUDA allocator's peak)")
    if min(args.batch_size, args.new_tokens, args.repeats, args.threads) < 1 or args.warmup < 0 or args.text_tokens < 0:
        parser.error("--batch-size, --new-tokens, --repeats and --threads must be >= 1; --warmup, --text-tokens >= 0")
    args.queries = args.queries or SHAPES[args.shape].num_query_tokens
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print the tables and return the report (also written to `--json`)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    shape = SHAPES[args.shape]
    logger.info("building %s models on %s (%s)", args.shape, args.device, args.dtype)
    models = build_models(shape, args.queries, args.device, dtype, args.seed)
    inputs = {name: make_inputs(models[name].config, args.batch_size, args.text_tokens, args.device, dtype, args.seed)
              for name in (OURS, RESAMPLER)}
    inputs[REFERENCE] = inputs[OURS]  # the very same tensors
    gen_configs = {name: generation_config(args.new_tokens, models[OURS].config) for name in models}

    if args.probe_rss:  # child process of `rss_in_fresh_process`: one measurement, JSON on stdout
        name, mode = args.probe_rss
        print(json.dumps({"peak_mib": peak_memory_mib(models[name], mode, inputs[name], gen_configs[name], "cpu", "rss")}))
        return {}

    env = environment(args, models)
    times, last_outputs = measure_times(models, inputs, gen_configs, args)
    env["load_average_1min_after_timing"] = os.getloadavg()[0]
    memory = measure_memory(models, inputs, gen_configs, args)
    report = build_report(args, shape, models, inputs, times, last_outputs, memory, env)
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        logger.info("report written to %s", args.json)
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
