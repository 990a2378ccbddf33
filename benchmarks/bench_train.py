"""Training throughput of train_sft.py's stages against the same TRL run on stock LlavaForConditionalGeneration.

Cases, each in a fresh process (so peak memory is its own), on the same filtered samples, batch and steps:

    align-gz          GZ-LLaVA (mlp2x_gelu), stage align, as gzllava.training runs it
    align-stock       stock LlavaForConditionalGeneration with the same weights, projector-only, plain SFTTrainer
    instruct-gz       GZ-LLaVA, stage instruct: 4-bit NF4 LM (double quant), LoRA on the LM, projector in full
    instruct-stock    the same QLoRA set-up on stock Llava with a plain SFTTrainer
    align-resampler   GZ-LLaVA with the resampler projector (fewer image tokens per image)
    align-gz-augment  align-gz with the resumable rot90/flip augmentation on (its cost)

Figures: samples/s and tokens/s (non-padding tokens, image tokens included), the median over the timed steps
after warm-up, per second of the process's own CPU time on CPU (one thread: robust to the other processes of
a shared machine; wall-clock rates are in the JSON) or of wall-clock time on a GPU; and the peak resident
memory during training (Linux VmHWM, reset just before training; CUDA: max allocated).

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py [--steps 40] [--warmup 3] [--batch 8] [--image-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rss import peak_rss_mib, reset_peak_rss

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CASES = ("align-gz", "align-stock", "instruct-gz", "instruct-stock", "align-resampler", "align-gz-augment")
QLORA_FLAGS = ["--stage", "instruct", "--use_peft", "true", "--load_in_4bit", "true", "--use_bnb_nested_quant", "true",
               "--lora_r", "16", "--lora_alpha", "32", "--lora_dropout", "0"]


# --------------------------------------------------------------------------- measurement (child process)
class Meter:
    """Times every optimizer step and counts the non-padding tokens the collator produced."""

    def __init__(self, collator, warmup: int):
        self.collator, self.warmup = collator, warmup
        self.tokens: list[int] = []
        self.samples: list[int] = []
        self.step_times: list[float] = []
        self.step_cpu_times: list[float] = []

    def __call__(self, examples):
        batch = self.collator(examples)
        self.tokens.append(int(batch["attention_mask"].sum()))
        self.samples.append(len(examples))
        return batch

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class StepClock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                meter.step_times.append(time.perf_counter())
                meter.step_cpu_times.append(time.process_time())

            def on_train_end(self, args, state, control, **kwargs):
                meter.step_times.append(time.perf_counter())
                meter.step_cpu_times.append(time.process_time())

        return StepClock()

    def figures(self, cpu_time: bool) -> dict:
        """Per-step rates after warm-up, their median (robust to other processes taking the CPU for a moment).

        `cpu_time`: per CPU-second of this process instead of per wall-clock second. On a shared CPU with one
        thread per process that counts this run's work only; on a GPU, wall-clock time is what matters.
        """
        import statistics

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
            "samples_per_s": statistics.median(n / t for n, t in zip(samples, durations)),
            "tokens_per_s": statistics.median(n / t for n, t in zip(tokens, durations)),
            "wall_samples_per_s": statistics.median(n / t for n, t in zip(samples, wall)),
        }


def training_flags(options, dataset: str, output_dir: str) -> list[str]:
    return [
        "--config", str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml"), "--dataset_name", dataset,
        "--output_dir", output_dir, "--tiny_image_size", str(options.image_size),
        "--tiny_text_hidden_size", str(options.text_hidden_size), "--tiny_layers", str(options.layers), "--max_steps",
        str(options.steps + options.warmup), "--per_device_train_batch_size", str(options.batch),
        "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1000", "--augment", "false",
        "--dataset_config", "description,conversation,decision_tree", "--max_length", str(options.max_length),
        "--disable_tqdm=true", *(["--use_cpu", "false"] if options.cuda else []),
    ]


def stock_trainer(run, quantized: bool, output_dir: str):
    """The same data, weights, batch and steps through a plain SFTTrainer on stock LlavaForConditionalGeneration."""
    import copy

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


def measure(case: str, options) -> dict:
    import torch

    from gzllava.training import parse_arguments, prepare_training

    torch.manual_seed(0)
    work = tempfile.mkdtemp(prefix=f"bench-train-{case}-")
    flags = training_flags(options, options.dataset, work)
    if case.startswith("instruct"):
        flags += QLORA_FLAGS
    if case == "align-resampler":
        flags += ["--projector_type", "resampler", "--num_query_tokens", str(options.queries)]
    if case == "align-gz-augment":
        flags += ["--augment", "true"]
    if case.endswith("-stock"):
        # The GZ run is only built to get identical weights and filtered samples; its 4-bit base is not used.
        base_flags = [f for f in flags if f not in QLORA_FLAGS] if case.startswith("instruct") else flags
        run = prepare_training(*parse_arguments(base_flags))
        trainer = stock_trainer(run, quantized=case.startswith("instruct"), output_dir=work)
        model_class = type(trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model)
    else:
        run = prepare_training(*parse_arguments(flags))
        trainer = run.trainer
        model_class = type(run.base.model)
    meter = Meter(trainer.data_collator, options.warmup)
    trainer.data_collator = meter
    trainer.add_callback(meter.callback())
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    cuda = torch.cuda.is_available() and options.cuda
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    trainer.train()
    figures = meter.figures(cpu_time=not cuda)
    figures.update({
        "case": case,
        "model_class": model_class.__name__,
        "trainable_params": trainable,
        "peak_rss_mib": peak_rss_mib(),
        "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "image_tokens": run.base.model.config.num_image_tokens,
    })
    return figures


# --------------------------------------------------------------------------- driver
def build_dataset(out: Path, n: int, image_size: int) -> None:
    subprocess.run([sys.executable, "-m", "dataset_builder", "build", "--synthetic", str(n), "--image-size",
                    str(image_size), "--output_dir", str(out)], cwd=REPO_ROOT, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64, help="tiny CLIP input (patch 8: (size/8)^2 tokens)")
    parser.add_argument("--queries", type=int, default=16, help="resampler image tokens")
    parser.add_argument("--max-length", type=int, default=2048,
                        help="long enough to keep every sample: all cases train on the same samples")
    parser.add_argument("--text-hidden-size", type=int, default=128, help="tiny LM width (the recipe's)")
    parser.add_argument("--layers", type=int, default=2, help="layers of the tiny tower and LM (the recipe's)")
    parser.add_argument("--subjects", type=int, default=80, help="synthetic galaxies in the dataset")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=3, help="each case this many times; the median is reported")
    parser.add_argument("--cuda", action="store_true", help="train on the GPU (default: CPU)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child process: measure one case
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.case:
        import logging

        logging.disable(logging.WARNING)
        print("RESULT " + json.dumps(measure(options.case, options)))
        return

    cases = options.cases.split(",")
    runs: dict[str, list[dict]] = {case: [] for case in cases}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-train-data-") as tmp:
        dataset = Path(tmp) / "gz-talk-instruct-synthetic"
        build_dataset(dataset, options.subjects, options.image_size)
        for round_index in range(options.rounds):  # cases interleaved, so a busy moment hits them all alike
            for case in cases:
                argv = [sys.executable, __file__, "--case", case, "--dataset", str(dataset)]
                argv += [f"--{k.replace('_', '-')}={v}" for k, v in vars(options).items()
                         if k in ("steps", "warmup", "batch", "image_size", "queries", "text_hidden_size", "layers",
                                   "max_length")]
                argv += ["--cuda"] if options.cuda else []
                done = subprocess.run(argv, capture_output=True, text=True,
                                      env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
                line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
                if line is None:
                    raise SystemExit(f"case {case} failed:\n{done.stderr[-4000:]}")
                runs[case].append(json.loads(line[len("RESULT "):]))
                r = runs[case][-1]
                print(f"round {round_index + 1} {case:17s} {r['samples_per_s']:7.2f} samples/s {r['tokens_per_s']:7.0f} "
                      f"tokens/s peak RSS {r['peak_rss_mib']:6.0f} MiB", flush=True)

    import statistics

    results = {}
    for case, measured in runs.items():
        results[case] = dict(measured[0])
        for key in ("samples_per_s", "tokens_per_s", "peak_rss_mib"):
            results[case][key] = statistics.median(m[key] for m in measured)
    print(f"\nmedian of {options.rounds} rounds (load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}):")
    for case, r in results.items():
        print(f"{case:17s} {r['samples_per_s']:8.2f} samples/s {r['tokens_per_s']:9.0f} tokens/s "
              f"peak RSS {r['peak_rss_mib']:7.0f} MiB  ({r['model_class']}, {r['image_tokens']} image tokens, "
              f"{r['trainable_params']:,} trainable)")

    def ratio(a: str, b: str, key: str) -> str:
        if a in results and b in results:
            return f"{results[a][key] / results[b][key]:.2f}"
        return "n/a"

    print("\nratios (ours / reference):")
    for ours, reference in (("align-gz", "align-stock"), ("instruct-gz", "instruct-stock"),
                            ("align-resampler", "align-gz"), ("align-gz-augment", "align-gz")):
        print(f"  {ours} / {reference}: samples/s x{ratio(ours, reference, 'samples_per_s')}, "
              f"tokens/s x{ratio(ours, reference, 'tokens_per_s')}, peak RSS x{ratio(ours, reference, 'peak_rss_mib')}")
    print(json.dumps({"options": {k: v for k, v in vars(options).items() if k not in ("case", "dataset")},
                      "results": results, "runs": runs}))


if __name__ == "__main__":
    main()
