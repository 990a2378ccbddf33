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
The flags are the fields of `gzllava.evaluation.arguments.EvaluationConfig` (HfArgumentParser), named as in
train_sft.py / train_clip.py. The old spellings --model, --dataset, --config (a dataset config) and --out still
work for one release, each with a deprecation line on stderr; from the next release --config means a YAML
recipe, as in the training scripts (a .yaml/.yml value is refused today).
Bad input (a missing folder, labels.csv or catalogue, unknown columns, no usable sample, a model that
does not load) is ONE line naming what is wrong, exit code 2; `--debug` adds the traceback.
"""

from __future__ import annotations

import logging
import sys

from gzllava.cli_errors import report_input_error
from gzllava.evaluation import EmptyEvaluationSetError, EvaluationConfig, run_evaluation
from gzllava.evaluation.arguments import parse_evaluation_args


def parse_args(argv: list[str] | None = None) -> EvaluationConfig:
    """The run's settings from the command line; bad flags or values exit 2 with one usage line."""
    return parse_evaluation_args(argv, "evaluate_gzllava.py", __doc__)[0]


# What bad input raises (a missing file or folder, bad columns, nothing usable, a model that does not load).
INPUT_ERRORS = (EmptyEvaluationSetError, ValueError, KeyError, OSError)



def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config, debug = parse_evaluation_args(argv, "evaluate_gzllava.py", __doc__)
    try:
        run_evaluation(config)
    except INPUT_ERRORS as err:
        return report_input_error("evaluate_gzllava.py", err, debug)
    out = config.output_dir
    print(f"wrote {out}/metrics.json, {out}/report.md and {out}/plots/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
