"""Galaxies for tower training: images (stored resized, uint8), texts and vote-share targets, and the batch collator.

Sources:
- gz-talk-instruct (`load_talk_instruct`): a dataset builder folder or Hub id and config; the text of a row is
  its assistant turns, the targets its `votes` fractions. One row per subject (a config with several rows per
  subject, like decision_tree, keeps the first; the count dropped is logged).
  Class-label builds (GZ1's table: one class per galaxy, no vote fractions) give one-hot shares instead, read
  from their decision_tree rows (`class_label_votes`): weak labels for smooth-or-featured and disk-edge-on (and
  has-spiral-arms, only ever `yes`). Several builds, comma-separated in `dataset_name`, are concatenated
  (`GalaxyTable.concat`). `head_only_config` (e.g. decision_tree) adds the galaxies that config has and `config`
  lacks, with their votes and no text (None): a synthetic build describes only its commented galaxies and drops
  near-duplicate descriptions (1,751 of its 2,854 training galaxies at 5,000 galaxies).
- the GZ2 Kaggle sample (`load_gz2_catalogue`, `labels.csv` + `images/<GalaxyID>.jpg`): images and vote shares of
  smooth-or-featured, disk-edge-on and how-rounded, no text; the side of the fixed split of `gzllava.splits`.

Images are stored the way the saved image processor sees them before its centre crop: shortest edge resized to
`stored_size` (bicubic), centre-cropped square. Training crops `image_size` pixels from them (with jitter).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from gzllava.splits import split_of

from .augment import centre_crop, mirror_text, random_views
from .questions import HeadSchema

logger = logging.getLogger(__name__)
TRAIN_HOLDOUT = "train_holdout"  # a split name: validation_percent of train, chosen by gzllava.splits (split_holdout)

# GZ2 Kaggle columns (cumulative down the tree; HeadSchema.targets renormalises per question) -> canonical keys.
GZ2_KAGGLE_COLUMNS = {
    "smooth-or-featured": {"smooth": "Class1.1", "featured-or-disk": "Class1.2", "artifact": "Class1.3"},
    "disk-edge-on": {"yes": "Class2.1", "no": "Class2.2"},
    "how-rounded": {"completely": "Class7.1", "in-between": "Class7.2", "cigar-shaped": "Class7.3"},
}


@dataclass
class GalaxyTable:
    ids: list[str]
    images: torch.Tensor  # (N, 3, R, R) uint8
    texts: list[str | None] | None  # None: no texts at all; a None entry: a head-only galaxy
    shares: torch.Tensor  # (N, A) float32
    reached: torch.Tensor  # (N, Q) bool
    counts: torch.Tensor  # (N, Q) float32, NaN = unknown

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def concat(cls, tables: "list[GalaxyTable]") -> "GalaxyTable":
        """One table of several (same head schema and stored size); texts only when every table has them."""
        texts = None if any(t.texts is None for t in tables) else [x for t in tables for x in t.texts]
        return cls([i for t in tables for i in t.ids], torch.cat([t.images for t in tables]), texts,
                   torch.cat([t.shares for t in tables]), torch.cat([t.reached for t in tables]),
                   torch.cat([t.counts for t in tables]))

    def subset(self, index) -> "GalaxyTable":
        index = list(index)
        return GalaxyTable([self.ids[i] for i in index], self.images[index],
                           None if self.texts is None else [self.texts[i] for i in index],
                           self.shares[index], self.reached[index], self.counts[index])


def resize_image(image: Image.Image, size: int) -> np.ndarray:
    """(size, size, 3) uint8: shortest edge to `size` (bicubic), centre square, as CLIPImageProcessor resizes."""
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new != (w, h):
        image = image.resize(new, Image.Resampling.BICUBIC)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return np.array(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _table(ids, arrays, texts, targets) -> GalaxyTable:
    shares, reached, counts = (np.stack(t) for t in zip(*targets)) if targets else (np.zeros((0, 0)),) * 3
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, 3, R, R)
    return GalaxyTable(list(ids), images, texts, torch.from_numpy(shares).float(), torch.from_numpy(reached).bool(),
                       torch.from_numpy(counts).float())


def assistant_text(messages) -> str:
    return " ".join(block["text"] for turn in messages or [] if turn.get("role") == "assistant"
                    for block in turn.get("content") or [] if block.get("type") == "text" and block.get("text")).strip()


def class_label_votes(name: str, split: str, schema: HeadSchema) -> dict[str, dict[str, float]]:
    """subject id -> one-hot `<question>_<answer>_fraction`s from the split's class-label decision_tree rows.

    A class-label build (a catalogue of one class per galaxy, like GZ1's) answers each question it implies with no
    vote share (`answer_fraction` empty); those answers become shares of 1 and 0 for the head questions they name.
    Builds with vote fractions (and datasets without a decision_tree config) give nothing here.
    """
    import datasets

    if "decision_tree" not in datasets.get_dataset_config_names(name):
        return {}
    rows = datasets.load_dataset(name, "decision_tree", split=split)
    if not {"subject_id", "question", "answer", "answer_fraction"} <= set(rows.column_names):
        return {}
    questions = {q.key: q for q in schema.questions}
    votes: dict[str, dict[str, float]] = {}
    columns = rows.select_columns(["subject_id", "question", "answer", "answer_fraction"])
    for subject, question, answer, fraction in zip(*(columns[c] for c in columns.column_names)):
        head = questions.get(question)
        if fraction is not None or head is None or answer not in head.answers:
            continue
        votes.setdefault(subject, {}).update({head.column(a): float(a == answer) for a in head.answers})
    return votes


def _known(votes) -> dict[str, float]:
    return {key: value for key, value in (votes or {}).items() if value is not None}


def _config_rows(name: str, config: str, split: str, available: list[str]):
    """One split of one config, with named errors for a missing config, split or gz-talk-instruct column."""
    import datasets

    if config not in available:
        raise ValueError(f"dataset_name {name!r}: no config {config!r}; it has {available}")
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except ValueError as error:
        raise ValueError(f"dataset {name!r} config {config!r}: no split {split!r} ({error})") from error
    missing = {"subject_id", "image", "messages", "votes"} - set(ds.column_names)
    if missing:
        raise ValueError(f"dataset {name!r} config {config!r} split {split!r}: missing column(s) {sorted(missing)}; "
                         "expected a gz-talk-instruct build (subject_id, image, messages, votes)")
    return ds


def load_talk_instruct(name: str, config: str, split: str, schema: HeadSchema, stored_size: int,
                       max_samples: int | None = None, head_only_config: str | None = None) -> GalaxyTable:
    """One split of a gz-talk-instruct config (or of several, `name` comma-separated, concatenated); clear errors
    for a missing dataset, config, split or column. Vote fractions are the targets; class labels fill questions
    without any (`class_label_votes`). `head_only_config`: that config's galaxies missing from `config` are added
    after them, text None (head targets only)."""
    names = [n.strip() for n in name.split(",") if n.strip()]
    if len(names) > 1:
        table = GalaxyTable.concat([load_talk_instruct(n, config, split, schema, stored_size, max_samples,
                                                       head_only_config) for n in names])
        return table.subset(range(max_samples)) if max_samples and len(table) > max_samples else table
    import datasets

    try:
        available = datasets.get_dataset_config_names(name)
    except Exception as error:  # noqa: BLE001  (datasets raises many kinds for a bad path or id)
        raise ValueError(f"dataset_name {name!r}: cannot open it as a dataset ({error})") from error
    described = _config_rows(name, config, split, available)
    head_only = head_only_config if head_only_config and head_only_config != config else None
    sources = [(config, described, True)]
    if head_only:
        sources.append((head_only, _config_rows(name, head_only, split, available), False))
    labels = class_label_votes(name, split, schema)
    seen, ids, arrays, texts, targets = set(), [], [], [], []
    added = {}
    for source, ds, with_text in sources:
        before = len(ids)
        if not with_text:  # decode only the images of galaxies not met yet: one row each
            first = {}
            for i, subject in enumerate(ds["subject_id"]):
                if subject not in seen:
                    first.setdefault(subject, i)
            ds = ds.select(sorted(first.values()))
        for row in tqdm(ds, desc=f"{source}/{split}", leave=False):
            if max_samples and len(ids) >= max_samples:
                break
            if row["subject_id"] in seen:
                continue
            seen.add(row["subject_id"])
            if row["image"] is None:
                raise ValueError(f"dataset {name!r} config {source!r} split {split!r}: subject {row['subject_id']} "
                                 "has no image")
            ids.append(row["subject_id"])
            arrays.append(resize_image(row["image"], stored_size))
            texts.append(assistant_text(row["messages"]) if with_text else None)
            targets.append(schema.targets({**labels.get(row["subject_id"], {}), **_known(row["votes"])}))
        added[source] = len(ids) - before
    if not ids:
        raise ValueError(f"dataset {name!r} config {config!r} split {split!r} has no rows")
    if len(described) > added[config] and not max_samples:
        logger.info("%s/%s: %d rows, %d subjects (one row per subject kept)", config, split, len(described),
                    added[config])
    if head_only:
        logger.info("%s/%s: %d galaxies with a %s row, %d more from %s (head only, no text)", name, split,
                    added[config], config, added[head_only], head_only)
    return _table(ids, arrays, texts, targets)


def read_gz2_labels(folder: Path) -> list[dict]:
    path = Path(folder) / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"GZ2 catalogue: {path} not found (expected labels.csv with GalaxyID and Class1.1 ...)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    needed = {"GalaxyID", *[c for cols in GZ2_KAGGLE_COLUMNS.values() for c in cols.values()]}
    missing = needed - set(rows[0] if rows else ())
    if missing:
        raise ValueError(f"GZ2 catalogue {path}: missing column(s) {sorted(missing)}")
    return rows


def split_holdout(table: GalaxyTable, validation_percent: int, twins: dict[str, str] | None = None,
                  source: str = "train_holdout") -> tuple[GalaxyTable, GalaxyTable]:
    """(train, validation) of a build's train split: the galaxies that `gzllava.splits` puts on the validation side
    (`validation_percent` of the non-test ids; a GZ1 image on its GZ2 twin's side, `twins` from `read_twins`) and
    the rest. The same galaxies for `train_clip.py --dataset_eval_split train_holdout` and for
    `python -m gzllava.tower.evaluate --split train_holdout`. An error naming `source` when none is held out."""
    twins = twins or {}
    side = [split_of(twins.get(i, i), validation_percent=validation_percent) for i in table.ids]
    if validation_percent <= 0 or "validation" not in side:
        raise ValueError(f"{source}: validation_percent {validation_percent} holds out none of the {len(table)} "
                         "training galaxies")
    return (table.subset(i for i, s in enumerate(side) if s != "validation"),
            table.subset(i for i, s in enumerate(side) if s == "validation"))


def gz2_votes(row: dict) -> dict[str, float]:
    return {f"{q}_{a}_fraction": float(row[c]) for q, cols in GZ2_KAGGLE_COLUMNS.items() for a, c in cols.items()}


def load_gz2_catalogue(folder: str | Path, side: str, schema: HeadSchema, stored_size: int,
                       validation_percent: int = 0, max_samples: int | None = None) -> GalaxyTable:
    """The galaxies of one side (`train`, `validation`, `test`) of the fixed split; no texts."""
    folder = Path(folder)
    rows = [r for r in read_gz2_labels(folder)
            if split_of(r["GalaxyID"], validation_percent=validation_percent) == side]
    if max_samples:
        rows = rows[:max_samples]
    ids, arrays, targets = [], [], []
    for row in tqdm(rows, desc=f"GZ2 {side}", leave=False):
        path = folder / "images" / f"{row['GalaxyID'].strip()}.jpg"
        try:
            with Image.open(path) as image:
                arrays.append(resize_image(image, stored_size))
        except OSError as error:
            raise ValueError(f"GZ2 catalogue: cannot read image {path}: {error}") from error
        ids.append(row["GalaxyID"].strip())
        targets.append(schema.targets(gz2_votes(row)))
    if not ids:
        raise ValueError(f"GZ2 catalogue {folder}: no galaxies on side {side!r}")
    return _table(ids, arrays, None, targets)


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, 3, H, W) on the [0, 1] scale (the processor's image_mean/std)."""
    x = images.float().div(255).transpose(0, 1).reshape(3, -1)
    return x.mean(1).tolist(), x.std(1).clamp(min=1e-3).tolist()


class IndexDataset(torch.utils.data.Dataset):
    """Rows are indices into a GalaxyTable; the collator builds the tensors."""

    def __init__(self, table: GalaxyTable):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> dict:
        return {"index": i}


class TowerCollator:
    """Indices -> a batch: pixel_values (B, 3, S, S), input_ids/attention_mask/text_ids (T, ...) for the T
    galaxies with a text when texts are used, with has_text (B,) bool when some have none (head-only galaxies),
    shares (B, A), reached (B, Q), counts (B, Q); mirrored images get mirrored shares and texts."""

    def __init__(self, table: GalaxyTable, schema: HeadSchema | None, image_size: int, image_mean, image_std,
                 tokenizer=None, max_length: int = 77, augment: bool = False, jitter: int = 0, seed: int = 0,
                 any_angle: bool = False, zoom: float = 0.0):
        self.table, self.schema, self.image_size = table, schema, image_size
        self.mean = torch.tensor(image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(image_std).view(1, 3, 1, 1)
        self.tokenizer, self.max_length = tokenizer, max_length
        self.augment, self.jitter, self.any_angle, self.zoom = augment, jitter, any_angle, zoom
        self.generator = torch.Generator().manual_seed(seed)
        self.permutation = torch.from_numpy(schema.mirror_permutation()) if schema is not None else None

    def __call__(self, features: list[dict]) -> dict:
        index = [f["index"] for f in features]
        images = self.table.images[index]
        if self.augment:
            views, mirrored = random_views(images, self.image_size, self.jitter, self.generator,
                                           any_angle=self.any_angle, zoom=self.zoom)
        else:
            views, mirrored = centre_crop(images, self.image_size), torch.zeros(len(index), dtype=torch.bool)
        pixel_values = (views.float() / 255 - self.mean) / self.std  # (B, 3, S, S)
        batch = {"pixel_values": pixel_values, "return_loss": True}
        if self.schema is not None:
            shares = self.table.shares[index].clone()
            shares[mirrored] = shares[mirrored][:, self.permutation]
            batch.update(shares=shares, reached=self.table.reached[index], counts=self.table.counts[index])
        if self.tokenizer is not None and self.table.texts is not None:
            texts = [self.table.texts[i] for i in index]
            has_text = [t is not None for t in texts]
            if not all(has_text):
                batch["has_text"] = torch.tensor(has_text)
            texts = [mirror_text(t) if m else t for t, m in zip(texts, mirrored.tolist()) if t is not None]
            if not texts:
                return batch
            same = {t: i for i, t in enumerate(dict.fromkeys(texts))}  # identical texts share an id (loss positives)
            batch["text_ids"] = torch.tensor([same[t] for t in texts])
            tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                    return_tensors="pt")
            batch["input_ids"], batch["attention_mask"] = tokens["input_ids"], tokens["attention_mask"]
        return batch
