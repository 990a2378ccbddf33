"""Supervised fine-tuning of GZ-LLaVA on gz-talk-instruct with TRL, in the stages of LLaVA-1.5.

# Stage 1, align: only the projector learns (CLIP ViT-L/14-336 + a 7B LM, composed on the fly)
```bash
accelerate launch --config_file accelerate_configs/multi_gpu.yaml train_sft.py \
    --config recipes/llava15_7b_align.yaml
```

# Stage 2, instruct: QLoRA on the language model (4-bit NF4, double quantisation) + the projector in full
```bash
accelerate launch --config_file accelerate_configs/multi_gpu.yaml train_sft.py \
    --config recipes/llava15_7b_instruct.yaml \
    --push_to_hub --hub_model_id org/gz-llava
```

# Full fine-tuning (projector + language model), sharded
```bash
accelerate launch --config_file accelerate_configs/zero3.yaml train_sft.py --config recipes/llava15_7b_full.yaml
accelerate launch --config_file accelerate_configs/fsdp.yaml train_sft.py --config recipes/llava15_7b_full.yaml
```

# Tiny models on CPU (offline): one process, or two DDP ranks on gloo
```bash
python -m dataset_builder build --synthetic 200 --image-size 64 --output_dir data/gz-talk-instruct-synthetic
accelerate launch --config_file accelerate_configs/single_gpu.yaml train_sft.py --config recipes/tiny_cpu_align.yaml
accelerate launch --config_file accelerate_configs/cpu_ddp.yaml train_sft.py --config recipes/tiny_cpu_align.yaml
accelerate launch --config_file accelerate_configs/single_gpu.yaml train_sft.py --config recipes/tiny_cpu_instruct.yaml
```
(`accelerate launch --cpu --num_processes 2` silently runs ONE process; `cpu_ddp.yaml` or
`torchrun --nproc_per_node 2 train_sft.py ...` run two.)

Any recipe key can be overridden on the command line (`--learning_rate 1e-4`); an unknown key is an error.
A run killed mid-training continues from its last checkpoint with `--resume_from_checkpoint last`.
The result, `<output_dir>/final` (or `--export_dir`), is a Hub repository folder that loads with
`AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)` and `pipeline(...)`.

Bad input (a missing recipe, dataset or checkpoint folder, an unknown key, inconsistent arguments) stops the
run before training with ONE line naming what is wrong, exit code 2; `--debug` adds the traceback.
"""

import logging
import sys

from gzllava.cli_errors import report_input_error
from gzllava.training import parse_arguments, prepare_training, push_trained_model, save_trained_model, train

# What bad input raises while the arguments, recipe, base model and dataset are checked (before training).
INPUT_ERRORS = (ValueError, KeyError, OSError)



def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A bare `--debug` is ours; `--debug underflow_overflow` stays transformers' TrainingArguments.debug.
    ours = [i for i, arg in enumerate(argv) if arg == "--debug" and (i + 1 == len(argv) or argv[i + 1].startswith("--"))]
    debug = bool(ours)
    argv = [arg for i, arg in enumerate(argv) if i not in ours]
    try:
        run = prepare_training(*parse_arguments(argv))  # every check happens here
    except INPUT_ERRORS as err:
        return report_input_error("train_sft.py", err, debug)
    run.command = argv  # quoted in the model card, secrets redacted and paths made portable
    train(run)
    folder = save_trained_model(run)
    run.trainer.accelerator.print(f"Model saved to {folder}")
    if run.push_to_hub:
        url = push_trained_model(run, folder)
        run.trainer.accelerator.print(f"Model pushed to {run.training_args.hub_model_id}: {url}")
    run.trainer.end()  # finish the trackers, destroy the process group
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
