"""The embedded-default main job: a tiny GZ-LLaVA learns Galaxy Zoo morphology on the CPU, offline, in minutes.

    python -m gzllava.demo                     # (README: bash scripts/demo.sh, which also installs)

1. `build`: the synthetic Galaxy Zoo instruction set, if absent (`python -m dataset_builder build --synthetic`),
2. `tower`: a small GZ-CLIP vision tower trained from scratch on it (`train_clip.py`, recipes/tiny_cpu_clip.yaml:
   contrastive image/description + the vote-share head), instead of the frozen random tower of earlier demos,
3. `align` (recipes/tiny_cpu_tower_align.yaml): that tower + a tiny random Llama, only the projector learns,
4. `instruct` (recipes/tiny_cpu_instruct.yaml): QLoRA on the language model + the projector,
5. `eval`: held-out decision-tree questions (likelihood of each candidate answer, and the free-text answer parsed)
   next to the untrained (aligned-only) model, the earlier frozen-random-tower figures, majority class and chance,
   and, when `../shared/data/gz2_kaggle_5000` exists, the same synthetic-trained model on the real GZ2 test split
   (sim-to-real),
6. describes a sample galaxy through `pipeline("image-to-text", trust_remote_code=True)`.

Each stage runs as a child process with one progress bar; full logs go to `<out>/logs/<stage>.log`. A stage whose
output exists is skipped (delete `<out>` to start over).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from gzllava.recipe_report import load_metrics, real_table, synthetic_table
from gzllava.stage_runner import REPO_ROOT, Stage, StageError, run_stages, timing_table


logger = logging.getLogger("gzllava.demo")
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
# The demo before it had a tower stage (README, measured 2026-11-23): a frozen random 64 px CLIP tower, likelihood route.
FROZEN_RANDOM_TOWER = {"smooth-or-featured": 0.86, "disk-edge-on": 0.86, "has-spiral-arms": 0.73, "all": 0.76}


def write_tiny_language_model(folder: Path, hidden_size: int = 128, layers: int = 2) -> Path:
    """The demo's language model: a random Llama + the Galaxy Zoo BPE tokenizer (gzllava.tiny), as a folder."""
    if (folder / "config.json").exists():
        return folder
    import torch

    from gzllava.tiny import tiny_language_model, tiny_tokenizer

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    tiny_language_model(len(tokenizer), hidden_size, layers).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def demo_stages(args) -> list[Stage]:
    data, out = args.data, args.out
    tower, align, instruct = out / "tower", out / "align", out / "instruct"
    common = ["--dataset_name", str(data)]
    image = ["--image_size", str(args.image_size), "--patch_size", str(args.patch_size)]
    stages = [
        Stage("build", ["-m", "dataset_builder", "-q", "build", "--synthetic", str(args.subjects), "--image-size",
                        str(args.image_size), "--configs", "description,decision_tree", "--output_dir", str(data)],
              data / "README.md", f"{args.subjects} synthetic galaxies ({data})"),
        # A 4-layer, 128-wide CLIP: 16 image tokens (64 px, patch 16), contrastive + vote-share head. On the synthetic
        # test split its head beat the recipe's 2 x 64 shape on edge-on (balanced accuracy 0.92 vs 0.73, confident
        # votes) and spiral arms (0.98 vs 0.92) for ~20 s more training (README "What the demo shows").
        Stage("tower", ["train_clip.py", "--config", "recipes/tiny_cpu_clip.yaml", *common, *image,
                        "--vision_layers", "4", "--vision_hidden_size", "128", "--vision_heads", "4",
                        "--num_train_epochs", str(args.tower_epochs), "--eval_strategy", "no",
                        "--output_dir", str(tower)],
              tower / "final" / "config.json", "GZ-CLIP tower (tower/final)"),
        Stage("align", ["train_sft.py", "--config", "recipes/tiny_cpu_tower_align.yaml", *common,
                        "--vision_model_name_or_path", str(tower / "final"),
                        "--text_model_name_or_path", str(out / "tiny-lm"), "--output_dir", str(align),
                        "--num_train_epochs", "1", "--eval_strategy", "no"],
              align / "final" / "config.json", "projector aligned (align/final)"),
        # Tiny random LM: its frozen random embeddings and head cannot be steered by LoRA alone, so the instruct
        # stage also trains them in full (peft modules_to_save, unquantised). Descriptions and decision-tree
        # questions: the pipeline describes, the table scores answers.
        Stage("instruct", ["train_sft.py", "--config", "recipes/tiny_cpu_instruct.yaml", *common,
                           "--model_name_or_path", str(align / "final"), "--output_dir", str(instruct),
                           "--dataset_config", "description,decision_tree", "--num_train_epochs",
                           str(args.instruct_epochs), "--learning_rate", "2e-3", "--max_length", "200",
                           "--lora_r", "32", "--lora_alpha", "64", "--eval_strategy", "no",
                           "--lora_modules_to_save", "lm_head", "embed_tokens"],
              instruct / "final" / "config.json", "QLoRA-instructed GZ-LLaVA (instruct/final)"),
    ]
    evaluation = ["--dataset_name", str(data), "--dataset_config", "decision_tree", "--split", "test", "--tasks", "morphology",
                  "--max-samples", str(args.eval_samples), "--batch-size", "16"]
    stages += [
        Stage("eval", ["evaluate_gzllava.py", "--model_name_or_path", str(instruct / "final"), *evaluation,
                       "--output_dir", str(out / "eval")], out / "eval" / "metrics.json", "held-out synthetic questions"),
        Stage("eval-base", ["evaluate_gzllava.py", "--model_name_or_path", str(align / "final"), *evaluation,
                            "--output_dir", str(out / "eval-align")], out / "eval-align" / "metrics.json",
              "the aligned-only model (baseline)"),
    ]
    gz2 = args.real_data / "gz2_kaggle_5000"
    if args.real_samples and (gz2 / "labels.csv").exists():
        stages.append(Stage(
            "sim2real", ["evaluate_gzllava.py", "--model_name_or_path", str(instruct / "final"), "--catalogue",
                         str(gz2 / "labels.csv"), "--catalogue-id-column", "GalaxyID", "--images", str(gz2 / "images"),
                         "--split", "test", "--tasks", "morphology", "--max-samples", str(args.real_samples),
                         "--batch-size", "16", "--output_dir", str(out / "eval-gz2")],
            out / "eval-gz2" / "metrics.json", "real GZ2 test split (gzllava.splits)"))
    return stages


def describe(model: Path, images: list) -> list[str]:
    from transformers import pipeline

    describer = pipeline("image-to-text", model=str(model), trust_remote_code=True)
    return [describer(image, generate_kwargs={"max_new_tokens": 40})[0]["generated_text"] for image in images]


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "gz-talk-instruct-synthetic")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "outputs" / "demo")
    parser.add_argument("--subjects", type=int, default=1500, help="synthetic galaxies to build (if absent)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=16, help="tower patch: (64/16)^2 = 16 image tokens")
    parser.add_argument("--tower-epochs", type=float, default=16.0)
    parser.add_argument("--instruct-epochs", type=float, default=3.0)  # 7.0 min in all on idle cores; 5: 13.3 min
    parser.add_argument("--eval-samples", type=int, default=600, help="held-out decision-tree questions scored")
    parser.add_argument("--real-data", type=Path, default=SHARED_DATA, help="folder with gz2_kaggle_5000/ (optional)")
    parser.add_argument("--real-samples", type=int, default=600,
                        help="real GZ2 test questions scored sim-to-real when --real-data has them (0: skip)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each stage (tiny matrices gain little)")
    parser.add_argument("--no-describe", action="store_true", help="skip the pipeline('image-to-text') descriptions")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.data, args.out, args.real_data = args.data.resolve(), args.out.resolve(), args.real_data.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, filename=args.out / "demo.log",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.time()
    write_tiny_language_model(args.out / "tiny-lm")
    stages = demo_stages(args)
    try:
        run_stages(stages, args.out / "logs", env={"OMP_NUM_THREADS": str(args.threads)}, show_progress=not args.quiet)
    except StageError as error:
        print(f"gzllava.demo: {error}", file=sys.stderr)
        return 2 if error.exit_code == 2 else 1
    trained, untrained = load_metrics(args.out / "eval"), load_metrics(args.out / "eval-align")
    table = synthetic_table(trained, untrained, FROZEN_RANDOM_TOWER, "frozen random tower (earlier demo)")
    lines = [f"# GZ-LLaVA CPU demo ({(time.time() - started) / 60:.1f} min)", "",
             f"Model: {args.out / 'instruct' / 'final'}", "", "## Stages", "", timing_table(stages), "",
             "## Held-out synthetic decision-tree questions (accuracy)", "", table, ""]
    if (args.out / "eval-gz2" / "metrics.json").exists():
        lines += ["## Sim-to-real: the synthetic-trained model on the real GZ2 test split (gzllava.splits)", "",
                  real_table(load_metrics(args.out / "eval-gz2")), ""]
    if not args.no_describe:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch
        from datasets import load_dataset

        torch.set_num_threads(args.threads)
        sample = load_dataset(str(args.data), "decision_tree", split="test")[0]
        text = describe(args.out / "instruct" / "final", [sample["image"]])[0]
        truth = json.loads(sample["truth"]) if sample.get("truth") else {}
        answers = ", ".join(f"{k}={v}" for k, v in truth.items() if isinstance(v, str))
        lines += ["## A description through pipeline('image-to-text')", "",
                  f"- synthetic {sample['subject_id']} (true answers: {answers}):", f"  {text!r}"]
    report = "\n".join(lines)
    (args.out / "demo_report.md").write_text(report + "\n")
    print(report)
    print(f"\nfull logs: {args.out / 'logs'}; report: {args.out / 'demo_report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
