"""The embedded-default main job: a tiny GZ-LLaVA learns Galaxy Zoo morphology on the CPU, offline, in minutes.

    python -m gzllava.demo                     # (README: bash scripts/demo.sh, which also installs)

1. builds the synthetic Galaxy Zoo instruction set if it is absent (`python -m dataset_builder build --synthetic`),
2. stage 1 `align` (recipes/tiny_cpu_align.yaml): only the projector learns,
3. stage 2 `instruct` (recipes/tiny_cpu_instruct.yaml): QLoRA on the language model + the projector,
4. scores held-out decision-tree questions (likelihood of each candidate answer, and the free-text answer parsed)
   next to the majority-class baseline, and the untrained model as a second baseline,
5. describes a sample galaxy through `pipeline("image-to-text", trust_remote_code=True)`, and the real DECaLS
   examples too when `../shared/data` is there.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import torch


logger = logging.getLogger("gzllava.demo")
REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_EXAMPLES = REPO_ROOT.parent / "shared" / "data" / "gz_examples_decals"


def build_dataset(folder: Path, subjects: int, image_size: int) -> None:
    if (folder / "README.md").exists():
        logger.info("using the synthetic dataset in %s", folder)
        return
    command = [sys.executable, "-m", "dataset_builder", "build", "--synthetic", str(subjects), "--image-size",
               str(image_size), "--configs", "description,decision_tree", "--out", str(folder)]
    logger.info("building the synthetic Galaxy Zoo: %s", " ".join(command[1:]))
    subprocess.run(command, check=True, cwd=REPO_ROOT)


def train_stage(recipe: str, overrides: list[str]) -> Path:
    from gzllava.training import parse_arguments, run_training

    arguments = parse_arguments(["--config", str(REPO_ROOT / recipe), *overrides])
    return run_training(*arguments)


def evaluate(model: Path, dataset: Path, out: Path, max_samples: int) -> dict:
    from gzllava.evaluation import EvaluationConfig, run_evaluation

    config = EvaluationConfig(model=str(model), dataset=str(dataset), config="decision_tree", split="test",
                              out=str(out), tasks=("morphology",), max_samples=max_samples, batch_size=16)
    return run_evaluation(config)


def accuracy_table(trained: dict, untrained: dict) -> str:
    """Per-question accuracy: trained model (likelihood and free text), untrained model, majority class, chance."""
    model = trained["models"]["model"]["morphology"]
    base = untrained["models"]["model"]["morphology"]
    baselines = trained["baselines"]
    rows = ["| question | n | trained (likelihood) | trained (free text) | untrained (likelihood) | majority class | random |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for question, figures in model["likelihood"]["per_question"].items():
        rows.append(
            f"| {question} | {figures['n']} | {figures['accuracy']:.2f} | "
            f"{model['generation']['per_question'][question]['accuracy']:.2f} | "
            f"{base['likelihood']['per_question'][question]['accuracy']:.2f} | "
            f"{baselines['majority']['per_question'][question]['accuracy']:.2f} | "
            f"{baselines['random']['per_question'][question]['accuracy']:.2f} |"
        )
    overall = model["likelihood"]["overall"]
    rows.append(
        f"| **all** | {overall['n']} | **{overall['accuracy']:.2f}** | {model['generation']['overall']['accuracy']:.2f} | "
        f"{base['likelihood']['overall']['accuracy']:.2f} | {baselines['majority']['overall']['accuracy']:.2f} | "
        f"{baselines['random']['overall']['accuracy']:.2f} |"
    )
    return "\n".join(rows)


def describe(model: Path, images: list) -> list[str]:
    from transformers import pipeline

    describer = pipeline("image-to-text", model=str(model), trust_remote_code=True)
    return [describer(image, generate_kwargs={"max_new_tokens": 40})[0]["generated_text"] for image in images]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "gz-talk-instruct-synthetic")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "outputs" / "demo")
    parser.add_argument("--subjects", type=int, default=1500, help="synthetic galaxies to build (if absent)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--instruct-epochs", type=float, default=5.0)
    parser.add_argument("--eval-samples", type=int, default=600, help="held-out decision-tree questions scored")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tiny matrices gain nothing from more)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    started = time.time()
    import gzllava  # noqa: F401  (registers the Auto classes)

    build_dataset(args.data, args.subjects, args.image_size)
    # Tiny random LM: its frozen random embeddings and head cannot be steered by LoRA alone, so the instruct
    # stage also trains them in full (peft modules_to_save, unquantised); 16 image tokens (64 px, patch 16).
    # Instruct on descriptions and decision-tree questions: the pipeline describes, the table scores answers.
    common = ["--dataset_name", str(args.data), "--tiny_image_size", str(args.image_size), "--tiny_patch_size", "16"]
    aligned = train_stage("recipes/tiny_cpu_align.yaml", [
        *common, "--output_dir", str(args.out / "align"), "--num_train_epochs", "1", "--eval_strategy", "no"])
    instructed = train_stage("recipes/tiny_cpu_instruct.yaml", [
        *common, "--model_name_or_path", str(aligned), "--output_dir", str(args.out / "instruct"),
        "--dataset_config", "description,decision_tree", "--num_train_epochs", str(args.instruct_epochs), "--learning_rate", "2e-3",
        "--max_length", "200", "--lora_r", "32", "--lora_alpha", "64", "--eval_strategy", "no",
        "--lora_modules_to_save", "lm_head", "embed_tokens"])
    trained = evaluate(instructed, args.data, args.out / "eval", args.eval_samples)
    untrained = evaluate(aligned, args.data, args.out / "eval-align", args.eval_samples)
    table = accuracy_table(trained, untrained)

    from datasets import load_dataset

    sample = load_dataset(str(args.data), "decision_tree", split="test")[0]
    real = sorted(REAL_EXAMPLES.glob("images/*.jpg"))[::12] if REAL_EXAMPLES.exists() else []
    descriptions = describe(instructed, [sample["image"], *map(str, real)])
    truth = json.loads(sample["truth"]) if sample.get("truth") else {}

    lines = [f"# GZ-LLaVA CPU demo ({(time.time() - started) / 60:.1f} min)", "",
             f"Model: {instructed}", "", "## Held-out synthetic decision-tree questions (accuracy)", "", table, "",
             "## Descriptions through pipeline('image-to-text')", "",
             f"- synthetic {sample['subject_id']} (true answers: {', '.join(f'{k}={v}' for k, v in truth.items() if isinstance(v, str))}):",
             f"  {descriptions[0]!r}"]
    lines += [f"- real DECaLS example {path.name}: {text!r}" for path, text in zip(real, descriptions[1:])]
    report = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "demo_report.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
