"""Measure a GZ-CLIP folder on labelled galaxies: head and zero-shot accuracy per question, retrieval.

```bash
# the real GZ2 test side of gzllava.splits (majority prior from the train side); `--gz2_side validation`
# measures the held-out tenth of train instead (compare towers there, not on test)
python -m gzllava.tower.evaluate --model_name_or_path outputs/gz2-real-clip/final --gz2 ../shared/data/gz2_kaggle_5000 \
    --output_dir eval/
# the head on exactly the (galaxy, question) items a GZ-LLaVA evaluation scored: does the LM answer as well as its tower?
python -m gzllava.tower.evaluate --model_name_or_path outputs/real/tower/final --gz2 ../shared/data/gz2_kaggle_5000 \
    --items outputs/real/eval-gz2-split/predictions.jsonl
# the same items without a GZ-LLaVA run: every question the vote-majority path reaches (as evaluate_gzllava.py asks)
python -m gzllava.tower.evaluate --model_name_or_path outputs/real/tower/final --gz2 ../shared/data/gz2_kaggle_5000 \
    --items majority_path
# the tower as GZ-LLaVA reads it with vision_feature_views=8: features averaged over each image's 8 dihedral views
python -m gzllava.tower.evaluate --model_name_or_path outputs/real/tower/final --gz2 ../shared/data/gz2_kaggle_5000 \
    --gz2_side validation --views 8
# the galaxies of a build that a tower held out (train_clip.py --dataset_eval_split train_holdout): e.g. the GZ1
# weak labels' validation side, ~4x the edge-on galaxies of the GZ2 validation side
python -m gzllava.tower.evaluate --model_name_or_path outputs/real/tower/final --dataset_name outputs/real/builds/gz1 \
    --dataset_config decision_tree --split train_holdout \
    --validation_twins ../shared/data/gz1_sdss/same_galaxy_in_gz2_kaggle_5000.csv
# a gz-talk-instruct split (description texts -> retrieval too)
python -m gzllava.tower.evaluate --model_name_or_path FOLDER --dataset_name outputs/gz2-build \
    --dataset_config description --split test --output_dir eval/
```
Writes OUTPUT_DIR/metrics.json and OUTPUT_DIR/report.md (and prints the report). The flags are the fields of
`TowerEvaluationArguments` (HfArgumentParser), named as in evaluate_gzllava.py; the old spellings --model, --dataset,
--config and --out still work for one release, each with a deprecation line. Bad input: one line, exit 2 (`--debug`:
traceback).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser

from dataset_builder.flags import not_a_recipe
from gzllava.evaluation.arguments import OLD_SPELLINGS, HelpFormatter, add_old_spellings, parse_flags

from .data import (TRAIN_HOLDOUT, gz2_votes, load_gz2_catalogue, load_talk_instruct, read_gz2_labels,
                   split_holdout)
from .metrics import (classification_table, image_features, majority_labels, pixel_batches, retrieval,
                      zero_shot_scores)
from .model import load_tower
from .questions import HeadSchema


MAJORITY_PATH = "majority_path"  # --items: the questions evaluate_gzllava.py asks of a vote catalogue's galaxies


@dataclass
class TowerEvaluationArguments:
    model_name_or_path: str = field(metadata={"help": "a GZ-CLIP folder (train_clip.py output)"})
    gz2: str | None = field(
        default=None, metadata={"help": "the GZ2 Kaggle sample folder (labels.csv + images/): its test side"})
    gz2_side: str = field(default="test", metadata={
        "help": "--gz2: the side of gzllava.splits measured; `validation` (validation_percent of the non-test "
                "galaxies, as train_clip.py's train_holdout) is the one to compare towers on", "choices": ["test", "validation"]})
    validation_percent: int = field(default=10, metadata={
        "help": "--gz2_side validation and --split train_holdout: the validation share of the non-test galaxies, percent"})
    validation_twins: str | None = field(default=None, metadata={
        "help": "--split train_holdout: the GZ1/GZ2 twins file (gz1_sdss/same_galaxy_in_gz2_kaggle_5000.csv), as the "
                "tower was given it: a GZ1 image takes its GZ2 twin's side"})
    dataset_name: str | None = field(default=None, metadata={"help": "a gz-talk-instruct folder or Hub id"})
    dataset_config: str = field(default="description", metadata={"help": "the gz-talk-instruct config"})
    split: str = field(default="test", metadata={
        "help": "--dataset_name: the split measured; `train_holdout`: the galaxies of its train split on the validation "
                "side of gzllava.splits (what train_clip.py --dataset_eval_split train_holdout held out), the prior from "
                "the rest"})
    prior_split: str = field(default="train", metadata={"help": "split whose majority answers are the prior"})
    max_samples: int | None = None
    items: str | None = field(default=None, metadata={
        "help": "an evaluate_gzllava.py predictions.jsonl: measure only its (galaxy, question) items, so the head "
                f"and GZ-LLaVA are compared on the same ones; `{MAJORITY_PATH}` (with --gz2): the items "
                "evaluate_gzllava.py scores on that catalogue, every question the vote-majority path reaches, without "
                "a GZ-LLaVA run"})
    views: int = field(default=1, metadata={
        "help": "1: each image as given; 8: the mean of the tower's pooled outputs over the image's 8 dihedral views "
                "(quarter turns, mirrored), as a GZ-LLaVA with vision_feature_views=8 reads its tower",
        "choices": [1, 8]})
    batch_size: int = 128
    output_dir: str | None = field(default=None, metadata={"help": "writes metrics.json and report.md here"})

    def __post_init__(self):
        if not self.model_name_or_path:
            raise ValueError("the following arguments are required: --model_name_or_path")
        if (self.gz2 is None) == (self.dataset_name is None):
            raise ValueError("give one of --gz2 (the GZ2 Kaggle sample's test side) or --dataset_name")
        if self.gz2_side not in ("test", "validation"):
            raise ValueError(f"--gz2_side {self.gz2_side!r}: expected test or validation")
        if self.gz2_side == "validation" and not 0 < self.validation_percent < 100:
            raise ValueError(f"--validation_percent {self.validation_percent}: expected 1..99 with --gz2_side validation")
        if self.split == TRAIN_HOLDOUT and self.gz2:
            raise ValueError(f"--split {TRAIN_HOLDOUT} measures a --dataset_name build; with --gz2 use --gz2_side "
                             "validation")
        if self.validation_twins and self.split != TRAIN_HOLDOUT:
            raise ValueError(f"--validation_twins is read with --split {TRAIN_HOLDOUT} only (got --split {self.split})")
        if self.validation_twins and not Path(self.validation_twins).is_file():
            raise ValueError(f"--validation_twins {self.validation_twins}: no such file (the GZ1/GZ2 twins file, "
                             "gz1_sdss/same_galaxy_in_gz2_kaggle_5000.csv)")
        if self.split == TRAIN_HOLDOUT and not 0 < self.validation_percent < 100:
            raise ValueError(f"--validation_percent {self.validation_percent}: expected 1..99 with "
                             f"--split {TRAIN_HOLDOUT}")
        if self.items == MAJORITY_PATH and not self.gz2:
            raise ValueError(f"--items {MAJORITY_PATH} follows the GZ2 catalogue's votes: give --gz2")
        if self.views not in (1, 8):
            raise ValueError(f"--views {self.views}: expected 1 or 8")

    @property
    def gz2_validation_percent(self) -> int:
        """The validation share that places GZ2 galaxies: 0 (train = every non-test galaxy) unless measuring it."""
        return self.validation_percent if self.gz2_side == "validation" else 0


def _prior_targets(args, schema: HeadSchema):
    """(shares, reached) of the training side, for the majority prior (votes only, no images)."""
    from gzllava.splits import split_of

    if args.gz2:
        rows = [r for r in read_gz2_labels(Path(args.gz2))
                if split_of(r["GalaxyID"], validation_percent=args.gz2_validation_percent) == "train"]
        targets = [schema.targets(gz2_votes(r)) for r in rows]
    else:
        import datasets

        ds = datasets.load_dataset(args.dataset_name, args.dataset_config, split=args.prior_split).select_columns(
            ["subject_id", "votes"])
        seen, targets = set(), []
        for row in ds:
            if row["subject_id"] not in seen:
                seen.add(row["subject_id"])
                targets.append(schema.targets(row["votes"]))
    shares, reached, _ = (np.stack(t) for t in zip(*targets))
    return shares, reached


def majority_path_items(gz2_folder: str | Path) -> set[tuple[str, str]]:
    """The (galaxy, question) items that evaluate_gzllava.py scores on the GZ2 catalogue, for the questions a tower
    reads from it (smooth-or-featured, disk-edge-on, how-rounded): each one the vote-majority path reaches with a
    majority answer (`gzllava.evaluation.morphology_metrics.morphology_items`)."""
    from dataset_builder.decision_tree import majority_answer
    from gzllava.evaluation.morphology_metrics import majority_path

    items = set()
    for row in read_gz2_labels(Path(gz2_folder)):
        votes = gz2_votes(row)
        items |= {(row["GalaxyID"].strip(), q.key) for q in majority_path(votes)
                  if majority_answer(q, votes) is not None}
    return items


def read_items(path) -> set[tuple[str, str]]:
    """The (sample id, question) pairs that an evaluate_gzllava.py predictions.jsonl scored (its `model` rows)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--items {path}: no such file (an evaluate_gzllava.py predictions.jsonl)")
    pairs = set()
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if row.get("role", "model") == "model" and row.get("question"):
                    pairs.add((str(row["sample"]), row["question"]))
            except (json.JSONDecodeError, KeyError, AttributeError) as error:
                raise ValueError(f"--items {path}: line {number} is not a prediction row with `sample` and "
                                 f"`question` ({error})") from error
    return pairs


def restrict_to_items(reached: np.ndarray, ids: list[str], schema: HeadSchema, items: set, source) -> np.ndarray:
    """reached (N, Q) AND listed in `items`; an error naming `source` when no item falls on these galaxies."""
    keys = [q.key for q in schema.questions]
    listed = np.array([[(str(galaxy), key) in items for key in keys] for galaxy in ids], dtype=bool).reshape(
        len(ids), len(keys))
    kept = reached & listed
    if not kept.any():
        raise ValueError(f"--items {source}: none of its {len(items)} (galaxy, question) items is a reached question "
                         f"of the {len(ids)} galaxies measured (another catalogue, side or head?)")
    return kept


def evaluate(args: TowerEvaluationArguments) -> dict:
    start = time.perf_counter()
    model, processor, head, head_schema = load_tower(args.model_name_or_path)
    image_processor = processor.image_processor
    stored, crop = image_processor.size["shortest_edge"], image_processor.crop_size["height"]
    schema = head_schema or HeadSchema.parse("gz2" if args.gz2 else "decals")
    prior = None
    if args.gz2:
        table = load_gz2_catalogue(args.gz2, args.gz2_side, schema, stored, args.gz2_validation_percent,
                                   max_samples=args.max_samples)
        source = f"{args.gz2} ({args.gz2_side} side of gzllava.splits)"
    elif args.split == TRAIN_HOLDOUT:
        from gzllava.splits import read_twins

        train = load_talk_instruct(args.dataset_name, args.dataset_config, "train", schema, stored)
        twins = read_twins(args.validation_twins) if args.validation_twins else {}
        train, table = split_holdout(train, args.validation_percent, twins, f"--split {TRAIN_HOLDOUT}")
        prior = majority_labels(train.shares.numpy(), train.reached.numpy(), schema)  # from the galaxies kept
        if args.max_samples and len(table) > args.max_samples:
            table = table.subset(range(args.max_samples))
        source = (f"{args.dataset_name} config {args.dataset_config}: the validation side ({args.validation_percent}% "
                  f"of gzllava.splits{', twins on their GZ2 side' if twins else ''}) of split train")
    else:
        table = load_talk_instruct(args.dataset_name, args.dataset_config, args.split, schema, stored, args.max_samples)
        source = f"{args.dataset_name} config {args.dataset_config} split {args.split}"
    if prior is None:
        prior = majority_labels(*_prior_targets(args, schema), schema)
    shares, reached = table.shares.numpy(), table.reached.numpy()
    if args.items:
        items = majority_path_items(args.gz2) if args.items == MAJORITY_PATH else read_items(args.items)
        reached = restrict_to_items(reached, table.ids, schema, items, args.items)
        source += f"; only the {int(reached.sum())} (galaxy, question) items of {args.items}"
    pooled, image_embeds = image_features(model, pixel_batches(table.images, crop, image_processor.image_mean,
                                                                  image_processor.image_std, args.batch_size),
                                          views=args.views)
    if args.views == 8:
        source += "; features averaged over each image's 8 dihedral views"
    result = {"model": str(args.model_name_or_path), "source": source, "galaxies": len(table), "views": args.views}
    if head is not None:
        with torch.no_grad():
            probs = schema.probabilities(head(pooled)).numpy()  # (N, A): predicted vote shares, per question
        result["head"] = classification_table(probs, shares, reached, schema, prior, probabilities=True)
    result["zero_shot"] = classification_table(zero_shot_scores(model, processor.tokenizer, image_embeds, schema),
                                               shares, reached, schema, prior)
    if table.texts:
        from .metrics import text_features

        text_embeds = text_features(model, processor.tokenizer, table.texts)
        result["retrieval"] = retrieval(image_embeds, text_embeds, table.texts)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def report(result: dict) -> str:
    lines = [f"# GZ-CLIP evaluation: {result['model']}", "", f"{result['galaxies']} galaxies: {result['source']}. "
             "Label = the answer with the largest vote share; confident = that share >= 0.8.", ""]
    for kind in ("head", "zero_shot"):
        if kind not in result:
            continue
        lines += [f"## {'Morphology head' if kind == 'head' else 'Zero-shot (answer prompts)'}", "",
                  "| question | subset | n | accuracy | balanced acc. | ROC AUC | vote cross-entropy "
                  "| majority prior acc. | majority bal. acc. | chance |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for key, row in result[kind].items():
            for subset in ("confident", "all"):
                if subset in row:
                    r = row[subset]
                    auc = "-" if r.get("auc") is None else f"{r['auc']:.3f}"
                    entropy = f"{r['cross_entropy']:.3f}" if "cross_entropy" in r else "-"
                    lines.append(f"| {key} | {subset} | {r['n']} | {r['accuracy']:.3f} | "
                                 f"{r['balanced_accuracy']:.3f} | {auc} | {entropy} | {r['majority_accuracy']:.3f} | "
                                 f"{r['majority_balanced_accuracy']:.3f} | {row['chance']:.3f} |")
        lines.append("")
    if "retrieval" in result:
        r = result["retrieval"]
        lines += ["## Retrieval (PAPERCLIP top-k%)", "",
                  f"{r['n']} image-text pairs, {r['distinct_texts']} distinct texts; identical texts tie and ties count "
                  "against the true pair (strict).", "",
                  "| direction | top 1% | top 5% | top 10% | mean rank |", "|---|---:|---:|---:|---:|"]
        for direction in ("image_to_text", "text_to_image", "random"):
            d = r[direction]
            lines.append(f"| {direction} | {d['top_1%']:.3f} | {d['top_5%']:.3f} | {d['top_10%']:.3f} | "
                         f"{d['mean_rank']:.1f} |")
        d = r["image_to_distinct_text"]
        lines += [f"| image_to_text, identical texts as one candidate ({d['candidates']}) | {d['top_1%']:.3f} | "
                  f"{d['top_5%']:.3f} | {d['top_10%']:.3f} | |",
                  f"| random (distinct texts) | {d['random']['top_1%']:.3f} | {d['random']['top_5%']:.3f} | "
                  f"{d['random']['top_10%']:.3f} | |", ""]
    lines.append(f"Took {result['seconds']} s.")
    return "\n".join(lines) + "\n"


def make_parser() -> HfArgumentParser:
    parser = HfArgumentParser(TowerEvaluationArguments, prog="python -m gzllava.tower.evaluate", description=__doc__,
                              formatter_class=HelpFormatter)
    add_old_spellings(parser, OLD_SPELLINGS, {"--config": not_a_recipe("--config", "--dataset_config")})
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_flags(make_parser(), argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        result = evaluate(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        if extra.debug:
            raise
        print(f"gzllava.tower.evaluate: error: {str(error).strip()}", file=sys.stderr)
        return 2
    text = report(result)
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
