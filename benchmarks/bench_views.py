"""What `vision_feature_views=8` costs: GZ-LLaVA reading the mean of its tower's features over each image's 8
dihedral views, against the same model reading each image once (`vision_feature_views=1`), in one run.

One model (random weights, built from configs) is measured both ways by switching its config's
`vision_feature_views` between calls, so the only difference is the 8 tower passes and the mean. Measured on the
same batch (`--batch-size` prompts: 4 text tokens, the image's tokens, `--text-tokens` text tokens):
  (a) features: `get_image_features` alone (tower + mean + projector);
  (b) forward: one full forward pass, no gradients (answering, candidate likelihood);
  (c) align step: forward + backward with only the projector trainable, as the align stage trains (the instruct
      stage adds LoRA on the LM, which makes the tower's share smaller still).
Runs are interleaved (every round runs both settings, in alternating order) and figures are medians of this
process's CPU time (`--clock cpu`, the default: a shared machine's other load inflates it far less than wall time).
The ratio is reference time / our time: 1.0 means the 8 views cost nothing, 0.5 that they double the time.

    OMP_NUM_THREADS=2 python benchmarks/bench_views.py --shape real-cpu --threads 2 --repeats 5
    OMP_NUM_THREADS=1 python benchmarks/bench_views.py --shape tiny --threads 1 --repeats 10
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch
import transformers
from tqdm.auto import tqdm
from transformers import CLIPVisionConfig, LlamaConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's modules, run as a script

from bench_model import CLOCKS, PROMPT_PREFIX_TOKENS, cpu_name  # noqa: E402
from configuration_gzllava import GZLlavaConfig  # noqa: E402
from modeling_gzllava import GZLlavaForConditionalGeneration  # noqa: E402

OURS, REFERENCE = "views=8", "views=1"
MODES = ("features", "forward", "align_step")
SHAPES = {
    # The tests' tiny model: 32 px CLIP, patch 8, CLS kept -> 17 image tokens.
    "tiny": dict(vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             image_size=32, patch_size=8),
                 text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, vocab_size=640)),
    # The real CPU recipe: recipes/real_cpu_tower.yaml's 48 px 4 x 128 CLIP tower (patch 8, CLS kept: 37 image
    # tokens, layer -1) + SmolLM2-135M-Instruct's shape (30 layers, 576 wide, 9 heads / 3 KV heads, tied embeddings).
    "real-cpu": dict(vision=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                                 image_size=48, patch_size=8),
                     text=dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                               num_key_value_heads=3, vocab_size=49153, tie_word_embeddings=True,
                               max_position_embeddings=8192)),
}


VIEWS = {OURS: 8, REFERENCE: 1}


def build_model(shape: dict, seed: int = 0):
    """The recipe-shaped GZ-LLaVA with only the projector trainable (the align stage); views set per call."""
    torch.manual_seed(seed)
    text = LlamaConfig(**shape["text"], bos_token_id=1, eos_token_id=2, pad_token_id=0)
    config = GZLlavaConfig(vision_config=CLIPVisionConfig(**shape["vision"]).to_dict(), text_config=text.to_dict(),
                           image_token_id=shape["text"]["vocab_size"] - 1, projector_type="mlp2x_gelu",
                           vision_feature_layer=-1, vision_feature_select_strategy="full")
    model = GZLlavaForConditionalGeneration._from_config(config, attn_implementation="sdpa").eval()
    for name, parameter in model.named_parameters():
        parameter.requires_grad_("multi_modal_projector" in name)
    return model


def make_inputs(config, batch_size: int, text_tokens: int, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    vocab, image_token = config.text_config.vocab_size, config.image_token_id
    text = torch.randint(3, vocab - 1, (batch_size, PROMPT_PREFIX_TOKENS + text_tokens), generator=generator)
    image = torch.full((batch_size, config.num_image_tokens), image_token)
    input_ids = torch.cat([text[:, :PROMPT_PREFIX_TOKENS], image, text[:, PROMPT_PREFIX_TOKENS:]], dim=1)
    size = config.vision_config.image_size
    return {"input_ids": input_ids,  # (B, 4 + image tokens + text_tokens)
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values": torch.randn(batch_size, 3, size, size, generator=generator)}  # (B, 3, S, S)


def run_once(model, views: int, mode: str, inputs: dict):
    model.config.vision_feature_views = views  # read at each call by GZLlavaModel.get_image_features
    if mode == "features":
        with torch.no_grad():
            return model.model.get_image_features(inputs["pixel_values"]).pooler_output
    if mode == "forward":
        with torch.no_grad():
            return model(**inputs).logits
    output = model(**inputs, labels=inputs["input_ids"])
    output.loss.backward()
    model.zero_grad(set_to_none=True)
    return output.loss.detach()


def measure(model, inputs: dict, args) -> dict:
    now = CLOCKS[args.clock]
    times = {name: {mode: [] for mode in MODES} for name in VIEWS}
    for round_index in tqdm(range(args.warmup + args.repeats), desc=f"{args.shape}: views 8 vs 1"):
        order = list(VIEWS) if round_index % 2 == 0 else list(VIEWS)[::-1]
        for mode in MODES:
            for name in order:
                start = now()
                run_once(model, VIEWS[name], mode, inputs)
                if round_index >= args.warmup:
                    times[name][mode].append(now() - start)
    return times


def build_report(args, model, inputs: dict, times: dict) -> dict:
    config = model.config
    report = {"benchmark": "bench_views", "shape": args.shape, "batch_size": args.batch_size,
              "image_tokens": config.num_image_tokens, "sequence_length": inputs["input_ids"].shape[1],
              "clock": args.clock, "repeats": args.repeats, "threads": torch.get_num_threads(),
              "cpu": cpu_name(), "python": platform.python_version(), "torch": torch.__version__,
              "transformers": transformers.__version__, "modes": {}}
    for mode in MODES:
        ours, reference = statistics.median(times[OURS][mode]), statistics.median(times[REFERENCE][mode])
        report["modes"][mode] = {"ours_s": ours, "reference_s": reference, "ratio": reference / ours}
    return report


def format_report(report: dict) -> str:
    lines = [f"bench_views: shape {report['shape']}, batch {report['batch_size']}, {report['image_tokens']} image tokens, "
             f"sequence {report['sequence_length']}, median {report['clock']} time of {report['repeats']} rounds, "
             f"{report['threads']} thread(s), {report['cpu']}",
             "| mode | views=8 (ours) | views=1 (reference) | reference / ours |", "|---|---:|---:|---:|"]
    for mode, row in report["modes"].items():
        lines.append(f"| {mode} | {row['ours_s'] * 1000:.1f} ms | {row['reference_s'] * 1000:.1f} ms | "
                     f"{row['ratio']:.3f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch (the align recipe's batch: 8)")
    parser.add_argument("--text-tokens", type=int, default=64, help="text tokens after the image")
    parser.add_argument("--repeats", type=int, default=5, help="timed interleaved rounds; the median is reported")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (set OMP_NUM_THREADS to match)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    for name in ("batch_size", "text_tokens", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: expected a positive number")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = build_model(SHAPES[args.shape])
    inputs = make_inputs(model.config, args.batch_size, args.text_tokens)
    report = build_report(args, model, inputs, measure(model, inputs, args))
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
