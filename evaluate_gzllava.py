"""Evaluate a GZ-LLaVA (or any llava-interface) model against Galaxy Zoo volunteers and experts.

    python evaluate_gzllava.py --model_name_or_path outputs/gz-llava --dataset_name org/gz-talk-instruct \
        --dataset_config decision_tree --split test --baseline-model outputs/gz-llava-base \
        --output_dir eval/decision_tree

    python evaluate_gzllava.py --model_name_or_path outputs/gz-llava --image-folder ../shared/data/gz_examples_decals \
        --output_dir eval/decals_examples

    # a real-galaxy catalogue, on the test side of the fixed split (gzllava/splits.py)
    python evaluate_gzllava.py --model_name_or_path outputs/gz-llava \
        --catalogue ../shared/data/gz2_kaggle_5000/labels.csv --catalogue-id-column GalaxyID \
        --images ../shared/data/gz2_kaggle_5000/images --split test --output_dir eval/gz2
    python evaluate_gzllava.py --model_name_or_path outputs/gz-llava --catalogue ../shared/data/gz1_sdss/labels.csv \
        --catalogue-id-column objid --split test --output_dir eval/gz1

Writes OUTPUT_DIR/metrics.json, OUTPUT_DIR/predictions.jsonl, OUTPUT_DIR/report.md and OUTPUT_DIR/plots/*.png;
with --update-model-card also the model card's `model-index`. The logic is in `gzllava.evaluation`.
The flag names are those of train_sft.py / train_clip.py. The old spellings --model, --dataset, --config (a
dataset config) and --out still work for one release, each with a deprecation line on stderr; from the next
release --config means a YAML recipe, as in the training scripts (a .yaml/.yml value is refused today).
Bad input (a missing folder, labels.csv or catalogue, unknown columns, no usable sample, a model that
does not load) is ONE line naming what is wrong, exit code 2; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback

from dataset_builder.flags import add_flag, not_a_recipe
from gzllava.evaluation import EmptyEvaluationSetError, EvaluationConfig, run_evaluation
from gzllava.evaluation.runner import TASKS
from gzllava.metrics import METRIC_NAMES


def parse_args(argv: list[str] | None = None) -> EvaluationConfig:
    parser = argparse.ArgumentParser(prog="evaluate_gzllava.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flag(parser, "--model_name_or_path", "--model", help="model folder or Hub id (required)")
    source = parser.add_mutually_exclusive_group(required=True)
    add_flag(source, "--dataset_name", "--dataset", help="gz-talk-instruct folder or Hub dataset id")
    source.add_argument("--image-folder", help="folder of labelled images with labels.csv")
    source.add_argument("--catalogue", help="real-galaxy catalogue: vote fractions (GZ2 Kaggle Class1.1..., GZ2, "
                        "GZ DECaLS) or the GZ1 class table (class_name); split by galaxy id (gzllava/splits.py)")
    parser.add_argument("--catalogue-id-column", help="the catalogue's galaxy id column (GalaxyID, objid, ...)")
    parser.add_argument("--images", help="the catalogue's images, <id>.jpg/.jpeg/.png (default: the catalogue's "
                        "`image` column, relative to its folder)")
    parser.add_argument("--twins", help="GZ1: GZ1 objid -> GZ2 GalaxyID pairs kept on one side of the split "
                        "(default: same_galaxy_in_gz2_kaggle_5000.csv next to the catalogue)")
    add_flag(parser, "--dataset_config", "--config", check=not_a_recipe("--config", "--dataset_config"),
             help="gz-talk-instruct config: description, conversation or decision_tree")
    parser.add_argument("--split", default="test", help="dataset split; for --catalogue: test, train, validation "
                        "or all")
    parser.add_argument("--train-split", default="train", help="split whose answer counts give the majority baseline")
    parser.add_argument("--baseline-model", help="untuned base model (folder or Hub id) evaluated alongside")
    add_flag(parser, "--output_dir", "--out", default="eval_results", help="output folder")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-samples", type=int, help="evaluate a seeded random subset of this many samples")
    parser.add_argument("--tasks", default="morphology,descriptions,retrieval,hallucination",
                        help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--metrics", default=",".join(METRIC_NAMES), help="description metrics to compute")
    parser.add_argument("--retrieval-max", type=int, default=200, help="galaxies in the retrieval matrix (n^2 passes)")
    parser.add_argument("--options-in-prompt", action="store_true",
                        help="list the answer labels in each question (helps untuned models)")
    parser.add_argument("--answer-max-new-tokens", type=int, default=32)
    parser.add_argument("--description-max-new-tokens", type=int, default=128)
    parser.add_argument("--judge-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (off by default)")
    parser.add_argument("--judge-model", default="gpt-4o-mini")
    parser.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    parser.add_argument("--update-model-card", action="store_true", help="write the results into the model card")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    args = parser.parse_args(argv)
    if not args.model_name_or_path:
        parser.error("the following arguments are required: --model_name_or_path")
    if args.dataset_name and not args.dataset_config:
        parser.error("--dataset_name needs --dataset_config (description, conversation or decision_tree)")
    if not args.catalogue and (args.images or args.catalogue_id_column or args.twins):
        parser.error("--images, --catalogue-id-column and --twins go with --catalogue")
    return EvaluationConfig(
        model=args.model_name_or_path, dataset=args.dataset_name, config=args.dataset_config, split=args.split, image_folder=args.image_folder,
        catalogue=args.catalogue, catalogue_id_column=args.catalogue_id_column, images=args.images, twins=args.twins,
        baseline_model=args.baseline_model, out=args.output_dir, batch_size=args.batch_size, max_samples=args.max_samples,
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        description_metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()),
        retrieval_max=args.retrieval_max, options_in_prompt=args.options_in_prompt,
        answer_max_new_tokens=args.answer_max_new_tokens, description_max_new_tokens=args.description_max_new_tokens,
        train_split=args.train_split, judge_url=args.judge_url, judge_model=args.judge_model,
        judge_api_key_env=args.judge_api_key_env, update_model_card=args.update_model_card,
        device=args.device, dtype=args.dtype, seed=args.seed,
    )


# What bad input raises (a missing file or folder, bad columns, nothing usable, a model that does not load).
INPUT_ERRORS = (EmptyEvaluationSetError, ValueError, KeyError, OSError)


def one_line(err: BaseException) -> str:
    """The error's message on one line (a KeyError's message without its quotes)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    config = parse_args(argv)
    debug = "--debug" in argv
    try:
        run_evaluation(config)
    except INPUT_ERRORS as err:
        if debug:
            traceback.print_exc()
        print(f"evaluate_gzllava.py: error: {one_line(err)}" + ("" if debug else " (--debug for the traceback)"),
              file=sys.stderr)
        return 2
    print(f"wrote {config.out}/metrics.json, {config.out}/report.md and {config.out}/plots/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
