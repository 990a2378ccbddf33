"""Train a GZ-CLIP vision tower: a dual encoder on (galaxy image, text) pairs and/or a head on vote shares.

# From scratch on the CPU (offline): a small CLIP on a synthetic gz-talk-instruct build
```bash
python -m dataset_builder build --synthetic 300 --image-size 64 --configs description --output_dir data/gz-synthetic-tower
python train_clip.py --config recipes/tiny_cpu_clip.yaml
```

# Real galaxies: the GZ2 Kaggle sample (train side of gzllava.splits), head on the vote shares
```bash
python train_clip.py --config recipes/gz2_real_clip.yaml
python -m gzllava.tower.evaluate --model_name_or_path outputs/gz2-real-clip/final --gz2 ../shared/data/gz2_kaggle_5000
```

# Real galaxies with texts: the catalogue-only gz-talk-instruct build + the real MiniLM text encoder, locked
```bash
python train_clip.py --config recipes/clip_gz2_minilm.yaml
python -m gzllava.tower.evaluate --model_name_or_path outputs/clip-gz2-minilm/final --dataset_name outputs/gz2-build --split test
```

# PAPERCLIP's recipe for a pretrained CLIP (GPU), and a MiniLM text tower (locked) + new CLIP vision tower
```bash
accelerate launch --config_file accelerate_configs/single_gpu.yaml train_clip.py --config recipes/clip_vitb16_paperclip.yaml
python train_clip.py --config recipes/tiny_cpu_clip.yaml --text_model_name_or_path minilm --lock_text_tower true
```

# Ensemble distillation: the head's targets mix the volunteers' shares with the mean shares of teacher towers
```bash
python train_clip.py --config recipes/real_cpu_tower.yaml --teacher_model_name_or_path A/final,B/final \
    --teacher_weight 0.5    # 0: the volunteers' shares only, 1: the teachers' mean only (gzllava/tower/teachers.py)
```

On a shared CPU set `OMP_NUM_THREADS=1`: two OpenMP threads on an oversubscribed machine ran ~20x slower here.
Every recipe key can be overridden on the command line (`--learning_rate 1e-4`); an unknown key is an error
(exit 2, one line; `--debug` for the traceback). The result, `<output_dir>/final` (or `--export_dir`), is a Hub
folder (model card, processor, safetensors, `morphology_head.*`) for `pipeline("zero-shot-image-classification")`,
`compose_gzllava(folder, ...)` and `train_sft.py --vision_model_name_or_path folder`.
"""

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import torch

        from gzllava.tower.arguments import parse_arguments
        from gzllava.tower.run import prepare_training, save_trained_model, train

        tower_args, training_args = parse_arguments(argv)
        if training_args.use_cpu or not torch.cuda.is_available():
            torch.set_num_threads(min(2, torch.get_num_threads()))  # the CPU is shared
        run = prepare_training(tower_args, training_args)  # every check happens here
    except (ValueError, FileNotFoundError, OSError) as error:
        from gzllava.cli_errors import report_input_error

        return report_input_error("train_clip.py", error, debug)
    train(run)
    folder = save_trained_model(run)
    print(f"GZ-CLIP saved to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
