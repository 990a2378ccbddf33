"""A model soup: one GZ-LLaVA whose weights are the (weighted) mean of several fine-tunes of the same start.

    python -m gzllava.soup --model_name_or_path outputs/r16/instruct/final,outputs/r18/instruct/final \
        --output_dir outputs/soup

Idea from "Model soups" (Wortsman et al., 2022, arXiv:2203.05482): models fine-tuned from one pre-trained start sit
in one basin of the loss, so the mean of their weights is a model too, and often better than each of them, at the cost
of one model at inference. Here the start is an align stage: the real recipe's instruct runs share its frozen vision
tower, projector and language model, and differ in their mix, steps or seed.

The ingredients must be the same architecture (configs equal apart from their names) with the *same* vision tower
(the recipe freezes it, so fine-tunes of one start carry it unchanged): a different tower means a different start,
whose weights do not average. The soup is written as a Hub-ready GZ-LLaVA folder (`gzllava.hub.save_for_hub`: weights,
remote code, the first ingredient's processor, a model card naming the ingredients and their weights).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_errors import one_line, report_input_error

PROGRAM = "python -m gzllava.soup"
# config keys that name, date or store a checkpoint rather than shape it
_NAME_KEYS = ("_name_or_path", "name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype")


class SoupError(ValueError):
    """Ingredients that cannot be averaged (one line naming the model and what differs)."""


def _shape_of(config) -> dict:
    """A config as a dict without the keys that only name it, nested configs included."""
    def strip(d):
        return {k: strip(v) if isinstance(v, dict) else v for k, v in d.items() if k not in _NAME_KEYS}
    return strip(config.to_dict())


def soup_weights(weights: list[float] | None, n: int) -> list[float]:
    """The ingredients' weights, summing to 1 (uniform when None); SoupError unless n positive numbers."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n or any(not w > 0 for w in weights):
        raise SoupError(f"--weights {','.join(map(str, weights))}: expected {n} positive numbers, one per model")
    total = sum(weights)
    return [w / total for w in weights]


def check_ingredient(reference: dict, state_dict: dict, name: str, first: str) -> None:
    """SoupError naming `name` unless its weights have the names and shapes of the first model's (`reference`) and the
    same vision tower and integer buffers (which a soup keeps, not averages)."""
    if state_dict.keys() != reference.keys():
        diff = sorted(set(state_dict) ^ set(reference))
        raise SoupError(f"{name}: its weights differ from {first}'s in name ({diff[0]}, {len(diff)} in all)")
    for key, tensor in state_dict.items():
        if tensor.shape != reference[key].shape:
            raise SoupError(f"{name}: {key} has shape {tuple(tensor.shape)}, {first} has {tuple(reference[key].shape)}")
        if ("vision_tower" in key or not tensor.is_floating_point()) and not bool((tensor == reference[key]).all()):
            what = "vision tower" if "vision_tower" in key else "buffer"
            raise SoupError(f"{name}: its {what} differs from {first}'s ({key}); a soup averages fine-tunes of one "
                            "start, which share the frozen vision tower")


def make_soup(model_names: list[str], output_dir: str, weights: list[float] | None = None) -> Path:
    """Average the GZ-LLaVA folders (or Hub ids) `model_names` and save the soup to `output_dir`; returns its path."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from .hub import save_for_hub
    from .model_card import portable_path
    from .registration import register_gzllava

    if len(model_names) < 2:
        raise SoupError(f"--model_name_or_path {','.join(model_names)}: a soup needs at least two models")
    weights = soup_weights(weights, len(model_names))
    register_gzllava()

    def load(name):
        try:
            model = AutoModelForImageTextToText.from_pretrained(name, dtype=torch.float32)
        except (OSError, ValueError) as err:  # no such folder or Hub repository, not a model
            raise SoupError(f"{name}: {one_line(err)}") from err
        if getattr(model.config, "model_type", None) != "gzllava":
            raise SoupError(f"{name}: model_type {model.config.model_type!r}; a soup takes GZ-LLaVA models")
        return model

    # one ingredient in memory at a time beside the soup and its running sum (tied weights appear under both names
    # in a state dict and share storage: the sum is kept apart and loaded at the end, so none is counted twice)
    soup = load(model_names[0])
    reference = soup.state_dict()
    total = {k: v.detach().float() * weights[0] for k, v in reference.items() if v.is_floating_point()}
    for name, weight in zip(model_names[1:], weights[1:]):
        model = load(name)
        if _shape_of(model.config) != _shape_of(soup.config):
            raise SoupError(f"{name}: its config differs from {model_names[0]}'s; a soup needs one architecture")
        state = model.state_dict()
        check_ingredient(reference, state, name, model_names[0])
        for key in total:
            total[key].add_(state[key].detach().float(), alpha=weight)
        del model, state
    soup.load_state_dict({**reference, **total})
    processor = AutoProcessor.from_pretrained(model_names[0])
    training = {"model_soup": {
        "method": "weighted mean of the weights (Wortsman et al. 2022, model soups)",
        "models": [portable_path(name) for name in model_names],
        "weights": [round(w, 6) for w in weights],
    }}
    return save_for_hub(soup.eval(), processor, output_dir, card_kwargs={"training": training})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True,
                        help="the ingredients, comma-separated: GZ-LLaVA folders or Hub ids fine-tuned from one start")
    parser.add_argument("--output_dir", required=True, help="where the soup is saved (a Hub-ready GZ-LLaVA folder)")
    parser.add_argument("--weights", default=None,
                        help="comma-separated positive weights, one per model (normalised to sum 1; default: equal)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an input error")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.model_name_or_path.split(",") if n.strip()]
    weights = None
    if args.weights is not None:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            parser.error(f"--weights {args.weights}: expected comma-separated numbers")
    try:
        for name in names:
            if not Path(name).is_dir() and (name.startswith((".", "/")) or name.count("/") != 1):
                raise SoupError(f"--model_name_or_path {name}: no such model folder")
        out = make_soup(names, args.output_dir, weights)
    except (ValueError, OSError) as err:  # SoupError, or a processor that does not load
        return report_input_error(PROGRAM, err, args.debug)
    print(f"wrote the soup of {len(names)} models to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
