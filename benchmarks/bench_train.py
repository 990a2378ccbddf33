"""Training throughput of train_sft.py's stages against the same TRL run on stock LlavaForConditionalGeneration.

Cases, each in a fresh process (so peak memory is its own), on the same filtered samples, batch and steps:

    align-gz            GZ-LLaVA (mlp2x_gelu), stage align, as gzllava.training runs it
    align-stock         stock LlavaForConditionalGeneration with the same weights, projector-only, plain SFTTrainer
    instruct-gz         GZ-LLaVA, stage instruct: 4-bit NF4 LM (double quant), LoRA on the LM, projector in full
    instruct-stock      the same QLoRA set-up on stock Llava with a plain SFTTrainer
    align-resampler     GZ-LLaVA with the resampler projector (fewer image tokens per image)
    align-gz-augment    align-gz with the resumable rot90/flip augmentation on (its cost)
    instruct-resampler  instruct-gz with the resampler projector (not in the tiny shape's default cases)

Shapes (`--shape`):
  tiny (default)  the tiny CPU recipe's model (64 px CLIP, patch 8 -> 64 image tokens; Llama hidden 128, 2 layers),
                  composed in every case process; all the cases above.
  llava-1.5-7b    CLIP ViT-L/14-336 + Llama-2-7B (576 image tokens; resampler: 64 queries), GPU only;
  small           bench_model.py's CPU-sized llava proportions (224 px, 256 image tokens; Llama hidden 512).
                  These two come from bench_model.SHAPES, with random weights (they measure memory and speed like
                  real ones). The driver builds them once (on the GPU with --cuda, in bf16) and writes base folders
                  to a scratch dir (--workdir; default /dev/shm when it has room): GZ-LLaVA mlp2x_gelu, GZ-LLaVA
                  with a fresh 64-query resampler, stock llava-hf, all three sharing one copy of the tower and LM
                  weights (hard links). Each case process loads its folder as a user would: the instruct cases only,
                  with recipes/llava15_7b_instruct.yaml (4-bit NF4 + double quant, vision tower / projector / lm_head
                  unquantised, LoRA r=128 on every LM linear layer, projector in full, bf16, activation
                  checkpointing) and these overrides: the synthetic dataset, the batch and steps, no eval, no saves,
                  no augmentation (the stock run has none), 0 dataloader workers (batches are counted in-process);
                  on CPU also float32 without bf16. Their processor is compose's with the tiny Galaxy Zoo
                  tokenizer (gzllava.tiny) and `<image>`: text token counts (printed per sample) are not Llama's.

Figures: samples/s and tokens/s (non-padding tokens, image tokens included), the median over the timed steps
after warm-up, per second of the process's own CPU time on CPU (one thread: robust to the other processes of
a shared machine; wall-clock rates are in the JSON) or of wall-clock time on a GPU (the step clock synchronises
the device); the median step time; and the peak memory during training (Linux VmHWM, reset just before training;
CUDA: max allocated and max reserved, weights included). The driver adds each case process's wall time (load
included), the ratios ours / stock and resampler / mlp, and, on the GPU, issue 13's goals (instruct-gz peak under
16 GB; the resampler >= 3x faster per step). A case that fails is reported (its stderr tail) and the others still
run; `--json` is written in any case, and the exit status is 1 when anything failed.

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py [--steps 40] [--warmup 3] [--batch 8] [--image-size 64]
    OMP_NUM_THREADS=1 python benchmarks/bench_train.py --shape small --steps 2 --warmup 1 --batch 2 --rounds 1
    python benchmarks/bench_train.py --shape llava-1.5-7b --cuda --batch 4 --steps 8 --warmup 2 --rounds 1 \
        --cases instruct-gz,instruct-stock,instruct-resampler --json bench_train_7b.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rss import peak_rss_mib, reset_peak_rss

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench_model import SHAPES, cpu_name  # noqa: E402  (after the path)
from train_bases import BASE_FOLDERS, build_bases, scratch_dir, write_bases  # noqa: E402, F401  (tests use them here)

TINY = "tiny"  # the tiny CPU recipe's model, composed in each case process (bench_model's "tiny" is another shape)
FOLDER_SHAPES = tuple(name for name in SHAPES if name != TINY)
GPU_ONLY_SHAPES = ("llava-1.5-7b",)
CASES = ("align-gz", "align-stock", "instruct-gz", "instruct-stock", "align-resampler", "align-gz-augment")
TINY_CASES = (*CASES, "instruct-resampler")
FOLDER_CASES = ("instruct-gz", "instruct-stock", "instruct-resampler")
QLORA_FLAGS = ["--stage", "instruct", "--use_peft", "true", "--load_in_4bit", "true", "--use_bnb_nested_quant", "true",
               "--lora_r", "16", "--lora_alpha", "32", "--lora_dropout", "0"]
INSTRUCT_RECIPE = REPO_ROOT / "recipes" / "llava15_7b_instruct.yaml"
DATASET_CONFIGS = "description,conversation,decision_tree"
GB = 1e9  # issue 13's "16 GB", as benchmarks/gpu_report.py reads it
MEMORY_GOAL_GB, RESAMPLER_GOAL = 16, 3.0
# Figures that are medians over rounds in the summary.
MEDIAN_KEYS = ("samples_per_s", "tokens_per_s", "step_s", "peak_rss_mib", "peak_cuda_mib", "peak_cuda_reserved_mib",
               "process_wall_s")
COMPARISONS = (("align-gz", "align-stock"), ("instruct-gz", "instruct-stock"), ("align-resampler", "align-gz"),
               ("instruct-resampler", "instruct-gz"), ("align-gz-augment", "align-gz"))
CHILD_OPTIONS = ("shape", "steps", "warmup", "batch", "image_size", "queries", "text_hidden_size", "layers", "max_length")


def log(message: str) -> None:
    print(f"[bench_train] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- measurement (child process)
class Meter:
    """Times every optimizer step and counts the non-padding tokens the collator produced."""

    def __init__(self, collator, warmup: int, synchronize=None):
        self.collator, self.warmup = collator, warmup
        self.synchronize = synchronize or (lambda: None)  # CUDA: wait for the device, so a step's time is its own
        self.tokens: list[int] = []
        self.samples: list[int] = []
        self.step_times: list[float] = []
        self.step_cpu_times: list[float] = []

    def __call__(self, examples):
        batch = self.collator(examples)
        self.tokens.append(int(batch["attention_mask"].sum()))
        self.samples.append(len(examples))
        return batch

    def tick(self) -> None:
        self.synchronize()
        self.step_times.append(time.perf_counter())
        self.step_cpu_times.append(time.process_time())

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class StepClock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                meter.tick()

            def on_train_end(self, args, state, control, **kwargs):
                meter.tick()

        return StepClock()

    def figures(self, cpu_time: bool) -> dict:
        """Per-step rates after warm-up, their median (robust to other processes taking the CPU for a moment).

        `cpu_time`: per CPU-second of this process instead of per wall-clock second. On a shared CPU with one
        thread per process that counts this run's work only; on a GPU, wall-clock time is what matters.
        """
        clock = self.step_cpu_times if cpu_time else self.step_times
        # clock[i] is the start of step i; batch i is collated just before it (no prefetch with 0 workers).
        durations = [b - a for a, b in zip(clock, clock[1:])][self.warmup:]
        wall = [b - a for a, b in zip(self.step_times, self.step_times[1:])][self.warmup:]
        samples = self.samples[self.warmup:self.warmup + len(durations)]
        tokens = self.tokens[self.warmup:self.warmup + len(durations)]
        return {
            "steps": len(durations),
            "clock": "process CPU time" if cpu_time else "wall clock",
            "seconds": sum(durations),
            "wall_seconds": sum(wall),
            "step_s": statistics.median(durations),
            "step_seconds": durations,  # every timed step: an outlier shows here, not in the medians
            "samples_per_s": statistics.median(n / t for n, t in zip(samples, durations)),
            "tokens_per_s": statistics.median(n / t for n, t in zip(tokens, durations)),
            "wall_samples_per_s": statistics.median(n / t for n, t in zip(samples, wall)),
            # Every step's batch, warm-up included: the same data gives the same counts in every case.
            "samples_seen": sum(self.samples),
            "tokens_seen": sum(self.tokens),
            "tokens_per_sample": sum(self.tokens) / sum(self.samples),
        }


def training_flags(options, dataset: str, output_dir: str) -> list[str]:
    """The tiny shape: the tiny CPU align recipe's model, composed in the case process."""
    return [
        "--config", str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml"), "--dataset_name", dataset,
        "--output_dir", output_dir, "--tiny_image_size", str(options.image_size),
        "--tiny_text_hidden_size", str(options.text_hidden_size), "--tiny_layers", str(options.layers), "--max_steps",
        str(options.steps + options.warmup), "--per_device_train_batch_size", str(options.batch),
        "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1000", "--augment", "false",
        "--dataset_config", DATASET_CONFIGS, "--max_length", str(options.max_length),
        "--disable_tqdm=true", *(["--use_cpu", "false"] if options.cuda else []),
    ]


def instruct_flags(options, base: Path, output_dir: str) -> list[str]:
    """A folder shape: the 7B instruct recipe on a saved base, with the benchmark's overrides (module docstring)."""
    flags = [
        "--config", str(INSTRUCT_RECIPE), "--model_name_or_path", str(base), "--dataset_name", options.dataset,
        "--dataset_config", DATASET_CONFIGS, "--output_dir", output_dir,
        "--max_steps", str(options.steps + options.warmup), "--per_device_train_batch_size", str(options.batch),
        "--max_length", str(options.max_length),
        "--augment", "false", "--dataloader_num_workers", "0", "--eval_strategy", "no", "--save_strategy", "no",
        "--logging_steps", "1000", "--report_to", "none", "--disable_tqdm=true",
    ]
    if not options.cuda:
        flags += ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32"]
    return flags


def stock_trainer(run, quantized: bool, output_dir: str):
    """The same data, weights, batch and steps through a plain SFTTrainer on stock LlavaForConditionalGeneration."""
    from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration
    from trl import SFTTrainer

    from gzllava.llava_export import to_llava_model, to_llava_processor
    from gzllava.training.base_model import QUANTIZATION_SKIP_MODULES
    from gzllava.training.stages import keep_projector_in_float32, lora_target_regex

    gz_model = run.base.model
    if hasattr(gz_model, "peft_config"):
        raise ValueError("build the stock run from an unwrapped GZ-LLaVA")
    processor = to_llava_processor(run.base.processor)  # our chat template: it has the generation markers
    llava = to_llava_model(gz_model).train()
    peft_config = None
    if quantized:
        folder = Path(output_dir) / "stock-base"
        llava.save_pretrained(folder)
        llava = LlavaForConditionalGeneration.from_pretrained(folder, quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype="float32", llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES))
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0,
                                 target_modules=lora_target_regex(llava, None), modules_to_save=["multi_modal_projector"])
    else:
        llava.requires_grad_(False)
        llava.model.multi_modal_projector.requires_grad_(True)
    args = copy.copy(run.training_args)
    args.output_dir = output_dir
    trainer = SFTTrainer(model=llava, args=args, train_dataset=run.data.train, processing_class=processor,
                         peft_config=peft_config)
    if quantized:
        # Without this stock TRL fails on CPU: it casts the trainable projector to bf16, fed float32 features.
        keep_projector_in_float32(trainer.model)
    return trainer


def stock_folder_trainer(flags: list[str], llava_folder: Path):
    """The stock case of a folder shape: the GZ run's arguments, samples and LoRA set-up, on stock Llava loaded in
    4-bit straight from its folder (the same weight files as the GZ base), through a plain SFTTrainer."""
    import torch
    from transformers import AutoConfig, LlavaForConditionalGeneration
    from trl import SFTTrainer

    from gzllava.llava_export import to_llava_processor
    from gzllava.training import parse_arguments, validate_arguments
    from gzllava.training.base_model import quantization_config, torch_dtype
    from gzllava.training.data import prepare_datasets
    from gzllava.training.stages import keep_projector_in_float32, prepare_stage
    from processing_gzllava import GZLlavaProcessor

    script_args, training_args, model_args, gz_args = parse_arguments(flags)
    validate_arguments(script_args, training_args, model_args, gz_args)
    gz_folder = model_args.model_name_or_path  # samples filtered exactly as the GZ case filters them
    processor = GZLlavaProcessor.from_pretrained(gz_folder)
    data = prepare_datasets(script_args, training_args, gz_args, processor, AutoConfig.from_pretrained(gz_folder))
    # Quantised as ours is: NF4, double quant, the recipe's compute dtype, tower / projector / lm_head kept.
    llava = LlavaForConditionalGeneration.from_pretrained(
        llava_folder, dtype=torch_dtype(model_args.dtype), attn_implementation=model_args.attn_implementation,
        quantization_config=quantization_config(model_args))
    peft_config = prepare_stage(llava, gz_args, model_args)  # llava's module names are ours: the same LoRA targets
    trainer = SFTTrainer(model=llava, args=training_args, train_dataset=data.train,
                         processing_class=to_llava_processor(processor), peft_config=peft_config)
    if torch_dtype(model_args.dtype) == torch.float32:
        # CPU only: stock TRL casts the trainable projector to bf16 and float32 features then fail at the first step.
        keep_projector_in_float32(trainer.model)
    return trainer


def tiny_trainer(case: str, options, work: str):
    """A tiny-shape case: gzllava.training composes the tiny model; the stock cases convert it (module docstring)."""
    from gzllava.training import parse_arguments, prepare_training

    flags = training_flags(options, options.dataset, work)
    if case.endswith("-resampler"):
        flags += ["--projector_type", "resampler", "--num_query_tokens", str(options.queries)]
    if case == "align-gz-augment":
        flags += ["--augment", "true"]
    if case.endswith("-stock"):
        # The GZ run is only built to get identical weights and filtered samples; a 4-bit base would not be used.
        return stock_trainer(prepare_training(*parse_arguments(flags)), case.startswith("instruct"), work)
    if case.startswith("instruct"):
        flags += QLORA_FLAGS
    return prepare_training(*parse_arguments(flags)).trainer


def folder_trainer(case: str, options, work: str):
    """A folder-shape case: the instruct recipe on the base folder the driver wrote for it."""
    from gzllava.training import parse_arguments, prepare_training

    bases = Path(options.bases)
    gz_case = "instruct-resampler" if case == "instruct-resampler" else "instruct-gz"
    flags = instruct_flags(options, bases / BASE_FOLDERS[gz_case], work)
    if case == "instruct-stock":
        return stock_folder_trainer(flags, bases / BASE_FOLDERS[case])
    return prepare_training(*parse_arguments(flags)).trainer


def describe_run(trainer) -> dict:
    """What was trained: the model class, image tokens per sample, samples kept, LoRA rank, precision settings."""
    model = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    config = model.config
    lora = getattr(trainer.model, "peft_config", {}).get("default")
    quantization = getattr(config, "quantization_config", None)
    compute_dtype = getattr(quantization, "bnb_4bit_compute_dtype", None)
    return {
        "model_class": type(model).__name__,
        "image_tokens": getattr(config, "num_image_tokens", None) or config.image_seq_length,
        "train_samples": len(trainer.train_dataset),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "lora_r": getattr(lora, "r", None),
        "load_in_4bit": bool(getattr(quantization, "load_in_4bit", False)),
        "compute_dtype": str(compute_dtype or model.dtype).replace("torch.", ""),
        "bf16": bool(trainer.args.bf16),
        "activation_checkpointing": bool(trainer.args.activation_checkpointing),
    }


def measure(case: str, options) -> dict:
    import torch

    torch.manual_seed(0)
    started = time.perf_counter()
    work = tempfile.mkdtemp(prefix=f"bench-train-{case}-")
    try:
        trainer = (folder_trainer if options.bases else tiny_trainer)(case, options, work)
        loaded = time.perf_counter()
        cuda = torch.cuda.is_available() and options.cuda
        meter = Meter(trainer.data_collator, options.warmup, torch.cuda.synchronize if cuda else None)
        trainer.data_collator = meter
        trainer.add_callback(meter.callback())
        described = describe_run(trainer)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        reset_peak_rss()
        trainer.train()
        trained = time.perf_counter()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{case}: load {loaded - started:.1f} s, train {trained - loaded:.1f} s")
    figures = meter.figures(cpu_time=not cuda)
    figures.update({
        "case": case,
        **described,
        "peak_rss_mib": peak_rss_mib(),
        "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "peak_cuda_reserved_mib": torch.cuda.max_memory_reserved() / 2**20 if cuda else None,
        "load_s": loaded - started,
        "train_s": trained - loaded,
    })
    return figures


# --------------------------------------------------------------------------- base folders (driver, folder shapes)
@contextlib.contextmanager
def phase(report: dict, name: str):
    """Times a phase of the driver into report["phases_s"] and says so on stderr."""
    log(f"{name} ...")
    start = time.perf_counter()
    try:
        yield
    finally:
        report["phases_s"][name] = round(time.perf_counter() - start, 2)
        log(f"{name}: {report['phases_s'][name]:.1f} s")


def prepare_bases(options, stack: contextlib.ExitStack, report: dict) -> Path:
    """Build the folder shape once, write its base folders into a scratch dir removed at the end; frees the device."""
    import torch

    device, dtype = ("cuda", torch.bfloat16) if options.cuda else ("cpu", torch.float32)
    with phase(report, "build bases"):
        bases = build_bases(SHAPES[options.shape], options.queries, device, dtype)
    where = scratch_dir(options.workdir, bases.nbytes)
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-train-bases-", dir=where)))
    report["bases"] = {"dir": str(root), "bytes": bases.nbytes, "dtype": str(dtype).replace("torch.", "")}
    log(f"base folders: {bases.nbytes / GB:.1f} GB of weights into {root}")
    with phase(report, "write bases"):
        write_bases(bases, root, options.cases)
    del bases
    gc.collect()
    if options.cuda:
        torch.cuda.empty_cache()  # the case processes get the whole device
        report["bases"]["driver_cuda_allocated_after_free_mib"] = torch.cuda.memory_allocated() / 2**20
    return root


# --------------------------------------------------------------------------- driver
def build_dataset(out: Path, n: int, image_size: int) -> None:
    done = subprocess.run([sys.executable, "-m", "dataset_builder", "build", "--synthetic", str(n), "--image-size",
                           str(image_size), "--output_dir", str(out)], cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:  # the builder's own last lines name the cause (a missing package, say)
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"building the synthetic dataset failed (exit {done.returncode}): {tail}")


def run_case(case: str, options, dataset: Path, bases: Path | None) -> tuple[dict | None, dict | None]:
    """(result, None) or (None, failure) of one case in a fresh process; the result gets the process's wall time."""
    argv = [sys.executable, __file__, "--case", case, "--dataset", str(dataset)]
    argv += [f"--{key.replace('_', '-')}={getattr(options, key)}" for key in CHILD_OPTIONS]
    argv += (["--bases", str(bases)] if bases else []) + (["--cuda"] if options.cuda else [])
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never wait on a network that is not there
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=options.case_timeout)
        returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as error:  # run() killed it
        returncode, stdout = f"timeout after {options.case_timeout:.0f} s", ""
        stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr or ""
    wall = time.perf_counter() - start
    line = next((line for line in stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        return None, {"case": case, "exit": returncode, "process_wall_s": wall, "stderr_tail": stderr[-4000:]}
    return {**json.loads(line[len("RESULT "):]), "process_wall_s": wall}, None


def memory_key(results: dict) -> str:
    cuda = any(r.get("peak_cuda_mib") is not None for r in results.values())
    return "peak_cuda_mib" if cuda else "peak_rss_mib"


def summarise(runs: dict) -> dict:
    """Per case: the first round's figures with the MEDIAN_KEYS replaced by their median over rounds."""
    results = {}
    for case, measured in runs.items():
        if measured:
            results[case] = dict(measured[0])
            for key in MEDIAN_KEYS:
                values = [m[key] for m in measured if m.get(key) is not None]
                results[case][key] = statistics.median(values) if values else None
    return results


def compare(results: dict) -> dict:
    """Ours / reference for every pair measured: rates (>1: ours faster), step speed-up (reference step time / ours),
    peak memory (<1: ours smaller)."""
    memory = memory_key(results)
    comparisons = {}
    for ours, reference in COMPARISONS:
        if ours in results and reference in results:
            a, b = results[ours], results[reference]
            comparisons[f"{ours} / {reference}"] = {
                "samples_per_s": a["samples_per_s"] / b["samples_per_s"],
                "tokens_per_s": a["tokens_per_s"] / b["tokens_per_s"],
                "step_speedup": b["step_s"] / a["step_s"],
                "peak_memory": a[memory] / b[memory] if a.get(memory) and b.get(memory) else None,
                "memory": memory,
            }
    return comparisons


def goals(results: dict, comparisons: dict) -> dict:
    """Issue 13's goals, where measured on a GPU: instruct-gz peak under 16 GB, the resampler >= 3x per step."""
    out = {}
    gz = results.get("instruct-gz")
    if gz and gz.get("peak_cuda_mib") is not None:
        peak = gz["peak_cuda_mib"] * 2**20 / GB
        out["instruct-gz peak memory (max allocated) < 16 GB"] = {"value_gb": peak, "met": peak < MEMORY_GOAL_GB}
    speedup = comparisons.get("instruct-resampler / instruct-gz", {}).get("step_speedup")
    if speedup is not None and gz and gz.get("peak_cuda_mib") is not None:
        out["instruct-resampler step speed-up over instruct-gz >= 3x"] = {"value": speedup,
                                                                          "met": speedup >= RESAMPLER_GOAL}
    return out


def environment(options) -> dict:
    from importlib import metadata

    env = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version()}
    for package in ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets", "safetensors"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = None
    env.update({"cpu": cpu_name(), "cpu_count": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")})
    if options.cuda:
        import torch

        properties = torch.cuda.get_device_properties(0)
        env.update({"device": properties.name, "gpu_memory_gib": properties.total_memory / 2**30,
                    "cuda": torch.version.cuda})
    else:
        env["device"] = f"cpu ({env['cpu']})"
    return env


def format_memory(result: dict) -> str:
    if result.get("peak_cuda_mib") is not None:
        allocated, reserved = (result[key] * 2**20 / GB for key in ("peak_cuda_mib", "peak_cuda_reserved_mib"))
        return f"peak {allocated:5.2f} GB allocated, {reserved:5.2f} GB reserved"
    return f"peak RSS {result['peak_rss_mib']:7.0f} MiB"


def print_summary(report: dict, options) -> None:
    results = report["results"]
    load = report["load_average"]
    print(f"\nmedian of {options.rounds} round(s) (load average {load[0]:.1f} -> {load[1]:.1f}), {options.shape}, "
          f"batch {options.batch}, {options.steps} timed steps after {options.warmup}:")
    for case, r in results.items():
        print(f"{case:19s} {r['samples_per_s']:8.2f} samples/s {r['tokens_per_s']:9.0f} tokens/s "
              f"{r['step_s']:7.3f} s/step {format_memory(r)}  ({r['model_class']}, {r['image_tokens']} image + "
              f"{r['tokens_per_sample'] - r['image_tokens']:.0f} text tokens/sample, "
              f"{r['trainable_params']:,} trainable, LoRA r={r['lora_r']}, {r['process_wall_s']:.0f} s)")
    if report["comparisons"]:
        print("ratios (ours / reference; step speed-up = reference step time / ours):")
    for pair, c in report["comparisons"].items():
        memory = "n/a" if c["peak_memory"] is None else f"x{c['peak_memory']:.2f}"
        print(f"  {pair}: samples/s x{c['samples_per_s']:.2f}, tokens/s x{c['tokens_per_s']:.2f}, "
              f"step speed-up x{c['step_speedup']:.2f}, peak memory {memory}")
    for goal, value in report["goals"].items():
        print(f"goal {goal}: {value.get('value_gb', value.get('value')):.2f} -> {'met' if value['met'] else 'NOT met'}")
    for failure in report["failures"]:
        print(f"FAILED {failure.get('case', failure.get('phase'))}: {failure.get('exit', failure.get('error'))}")


class Interrupted(Exception):
    """SIGTERM (e.g. `timeout`), raised in the driver: the running case is killed, the scratch removed, the JSON
    written."""


def _interrupt(signum, frame):
    raise Interrupted(f"signal {signum}")


def run_all(options, report: dict) -> None:
    """Dataset, base folders (folder shapes), then every case of every round; failures go into report["failures"]."""
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-train-data-")))
        dataset = data_dir / "gz-talk-instruct-synthetic"
        with phase(report, "dataset"):
            build_dataset(dataset, options.subjects, options.image_size)
        bases = prepare_bases(options, stack, report) if options.shape != TINY else None
        for round_index in range(options.rounds):  # cases interleaved, so a busy moment hits them all alike
            for case in options.cases:
                result, failure = run_case(case, options, dataset, bases)
                if failure is not None:
                    report["failures"].append({**failure, "round": round_index + 1})
                    tail = "\n".join(failure["stderr_tail"].splitlines()[-25:])
                    log(f"round {round_index + 1} {case} FAILED ({failure['exit']}) after "
                        f"{failure['process_wall_s']:.0f} s:\n{tail}")
                    continue
                report["runs"][case].append(result)
                log(f"round {round_index + 1} {case}: {result['process_wall_s']:.1f} s "
                    f"(load {result['load_s']:.1f} s, train {result['train_s']:.1f} s)")
                print(f"round {round_index + 1} {case:19s} {result['samples_per_s']:7.2f} samples/s "
                      f"{result['tokens_per_s']:7.0f} tokens/s {format_memory(result)}", flush=True)


def drive(options) -> int:
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    report = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()
                          if k not in ("case", "dataset", "bases")},
              "environment": environment(options), "phases_s": {}, "runs": {case: [] for case in options.cases},
              "failures": []}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        run_all(options, report)
    except Exception as error:  # a phase that failed (or SIGTERM): what was measured is still reported
        report["failures"].append({"phase": "driver", "error": f"{type(error).__name__}: {error}"})
        log(f"stopped: {type(error).__name__}: {error}")
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    report["phases_s"]["total"] = round(time.perf_counter() - start, 2)
    report["load_average"] = [load_before, os.getloadavg()[0]]
    report["results"] = summarise(report["runs"])
    report["comparisons"] = compare(report["results"])
    report["goals"] = goals(report["results"], report["comparisons"])
    print_summary(report, options)
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(report, indent=2))
        log(f"report written to {options.json}; total {report['phases_s']['total']:.0f} s")
    else:
        print(json.dumps(report))
    return 1 if report["failures"] else 0


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=(TINY, *FOLDER_SHAPES), default=TINY,
                        help="tiny: the tiny CPU recipe's model; the others: bench_model.SHAPES (module docstring)")
    parser.add_argument("--steps", type=int, default=40, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64,
                        help="dataset images; tiny shape: also the CLIP input (patch 8: (size/8)^2 tokens)")
    parser.add_argument("--queries", type=int, default=None, help="resampler image tokens (tiny: 16; else the shape's)")
    parser.add_argument("--max-length", type=int, default=2048,
                        help="long enough to keep every sample: all cases train on the same samples")
    parser.add_argument("--text-hidden-size", type=int, default=128, help="tiny LM width (the recipe's)")
    parser.add_argument("--layers", type=int, default=2, help="layers of the tiny tower and LM (the recipe's)")
    parser.add_argument("--subjects", type=int, default=80, help="synthetic galaxies in the dataset")
    parser.add_argument("--cases", default=None, help=f"comma-separated (tiny default: {','.join(CASES)}; "
                        f"other shapes: {','.join(FOLDER_CASES)}, their only cases)")
    parser.add_argument("--rounds", type=int, default=3, help="each case this many times; the median is reported")
    parser.add_argument("--cuda", action="store_true", help="train on the GPU (default: CPU)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch for the base folders of the non-tiny shapes (default /dev/shm if it has room)")
    parser.add_argument("--case-timeout", type=float, default=600, help="seconds before a case process is killed")
    parser.add_argument("--json", type=Path, default=None, help="write the report here (else it is printed)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child process: measure one case
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--bases", help=argparse.SUPPRESS)  # child process of a folder shape: the base folders
    options = parser.parse_args(argv)

    def refuse(message: str):
        parser.exit(2, f"bench_train.py: {message}\n")

    folder_shape = options.shape != TINY
    allowed = FOLDER_CASES if folder_shape else TINY_CASES
    options.cases = options.cases.split(",") if options.cases else list(FOLDER_CASES if folder_shape else CASES)
    unknown = [case for case in options.cases if case not in allowed]
    if options.shape in GPU_ONLY_SHAPES and not options.cuda:
        refuse(f"--shape {options.shape} needs --cuda (7B parameters: a GPU run; --shape small is its CPU-sized kin)")
    if unknown:
        refuse(f"unknown case(s) {','.join(unknown)} for --shape {options.shape}; it has {','.join(allowed)}")
    if min(options.steps, options.batch, options.rounds) < 1 or options.warmup < 0:
        refuse("--steps, --batch and --rounds must be >= 1, --warmup >= 0")
    if options.workdir is not None and not options.workdir.is_dir():
        refuse(f"--workdir {options.workdir} is not a directory")
    if options.cuda and not options.case:
        import torch

        if not torch.cuda.is_available():
            refuse(f"--cuda: torch {torch.__version__} sees no CUDA device")
    if options.queries is None:
        options.queries = SHAPES[options.shape].num_query_tokens if folder_shape else 16
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    if options.case:
        import logging

        logging.disable(logging.WARNING)
        print("RESULT " + json.dumps(measure(options.case, options)))
        return 0
    return drive(options)


if __name__ == "__main__":
    sys.exit(main())
