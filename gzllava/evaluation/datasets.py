"""Evaluation sets: a gz-talk-instruct config/split, or a folder of labelled images.

Both become an `EvalSet` of `EvalSample`s. Bad input never stops the run silently or crashes it
half way: an unreadable image, a label naming an unknown question or answer, a vote column the
decision tree does not know, or a malformed row becomes a `Skip` with the reason, counted in
`metrics.json`; a set with nothing usable left raises `EmptyEvaluationSetError` naming why.

Labelled-image folders (like `../shared/data/gz_examples_decals/`) hold `labels.csv` with an
`image` column (path relative to the folder) and either the Galaxy Zoo website's tree indices
(`question_index`, `answer_index`, `answer_kind`) or decision-tree keys/labels (`question`,
`answer`). Several rows may label the same image.

Real-galaxy catalogues (`load_catalogue`) are read as they are, one galaxy per row, images found by id
(`<images>/<id>.jpg|.jpeg|.png`) or by the row's `image` column, restricted to one side of the fixed
real-galaxy split (`gzllava.splits`):
- a vote catalogue (GZ2 Kaggle `Class1.1 ...`, GZ2, GZ DECaLS; `dataset_builder.catalogues` turns it into
  per-question vote fractions, Kaggle's cumulative ones included): targets are the vote-majority answers
  along the majority path, with the vote shares (for the confident subset and calibration);
- the GZ1 class layout (`class_name` column: elliptical, edge_on, clockwise/anticlockwise_spiral, merger,
  dont_know): each class is the answers it implies (`GZ1_CLASS_ANSWERS`), as expert labels; `dont_know`
  implies none and is counted as not scored. GZ1 images with a GZ2 twin take the twin's side of the split.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from processing_gzllava import FITS_SUFFIXES, load_fits, load_image

from dataset_builder.decision_tree import QUESTIONS, from_website_index
from gzllava.splits import VALIDATION_PERCENT, gz1_split_of, read_twins, split_of

logger = logging.getLogger(__name__)

DESCRIPTION_PROMPT = "Describe this galaxy."  # when a sample does not bring its own instruction
TREE_CONFIG = "decision_tree"


class EmptyEvaluationSetError(ValueError):
    """Nothing usable is left in the evaluation set."""


class NotScoredRow(ValueError):
    """A well-formed row that this evaluation does not score (e.g. a multi-turn tree walk)."""


@dataclass
class Skip:
    id: str
    reason: str  # "<category>: <details>"
    bad_input: bool = True  # False: a well-formed row this evaluation does not score


@dataclass
class EvalSample:
    id: str
    # Encoded bytes, checked decodable at load time and decoded again on use (a decoded 424 px
    # cutout takes ~5x its JPEG size, and a decision_tree split repeats each galaxy per question),
    # or an already decoded image.
    image_data: bytes | Image.Image
    votes: dict[str, float] = field(default_factory=dict)  # finite canonical vote fractions only
    expert: dict[str, str] = field(default_factory=dict)  # question key -> answer key (expert / true labels)
    question: str | None = None  # the row's decision-tree question (config decision_tree)
    answer: str | None = None  # the row's vote-majority answer
    prompt: str | None = None  # the row's first user instruction
    reference: str | None = None  # the row's first assistant reply (a description for description/conversation)
    subject_id: str | None = None

    @property
    def image(self) -> Image.Image:
        if isinstance(self.image_data, Image.Image):
            return self.image_data
        return decode_image(self.image_data)


class LazyImages(Sequence):
    """The images of some samples, decoded only when the model's batch needs them."""

    def __init__(self, samples: Sequence[EvalSample], indices: Sequence[int]):
        self.samples, self.indices = samples, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return [self.samples[i].image for i in self.indices[key]]
        return self.samples[self.indices[key]].image


@dataclass
class EvalSet:
    name: str  # e.g. "gz-talk-instruct:decision_tree/test" or "gz_examples_decals"
    kind: str  # "gz-talk-instruct" or "image-folder"
    samples: list[EvalSample]
    skips: list[Skip] = field(default_factory=list)
    rows_read: int = 0

    def skip_summary(self, listed: int = 1000) -> dict[str, Any]:
        """Counts by reason category (the text before the first ':') and the bad-input skips
        themselves (the first `listed`), for metrics.json."""
        counts = Counter(s.reason.split(":")[0] for s in self.skips)
        bad = [{"id": s.id, "reason": s.reason} for s in self.skips if s.bad_input]
        return {"total": len(self.skips), "bad_input": len(bad), "by_reason": dict(counts), "bad_input_rows": bad[:listed]}


# --------------------------------------------------------------------------------- validation
def decode_image(data: bytes | None = None, path: str | Path | None = None) -> Image.Image:
    """An RGB PIL image, fully decoded now (so a truncated file fails here, not in the model), read by the model's
    processor reader (`processing_gzllava.load_image`): JPEG/PNG/any PIL format, and FITS with the processor's
    default stretch, north up, so evaluation sees the pixels inference sees. ImageInputError names `path`."""
    if data is None and path is None:
        raise ValueError("no image bytes or path")
    name = str(path) if path is not None else None
    if path is not None and str(path).lower().endswith(FITS_SUFFIXES):  # .fits.gz bytes carry no FITS signature
        return load_fits(data if data else Path(path), name=name)
    return load_image(data if data else Path(path), name=name)


def _is_fits_name(name: str) -> bool:
    return name.lower().endswith(FITS_SUFFIXES)


def check_label(question_key: str, answer_key: str) -> str:
    """The canonical answer key, after checking both against the tree (KeyError names the fault)."""
    if question_key not in QUESTIONS:
        raise KeyError(f"unknown question {question_key!r}")
    return QUESTIONS[question_key].answer(answer_key).key


_VOTE_COLUMNS = {q.column(a.key): (q.key, a.key) for q in QUESTIONS.values() for a in q.answers}


def clean_votes(votes: dict[str, Any] | None) -> dict[str, float]:
    """Finite vote fractions; a `*_fraction` column the tree does not know raises KeyError."""
    cleaned: dict[str, float] = {}
    for column, value in (votes or {}).items():
        if not column.endswith("_fraction"):
            continue  # e.g. "<question>_total-votes": counts, not fractions
        if column not in _VOTE_COLUMNS:
            raise KeyError(f"vote column {column!r} names no question/answer of the decision tree")
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            cleaned[column] = value
    return cleaned


def _turn_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content.strip()
    return " ".join((block.get("text") or "") for block in content or [] if block.get("type") == "text").strip()


def first_exchange(messages: list[dict[str, Any]] | None) -> tuple[str | None, str | None]:
    """(first user text, first assistant text) of a conversation."""
    user = assistant = None
    for message in messages or []:
        if message.get("role") == "user" and user is None:
            user = _turn_text(message) or None
        elif message.get("role") == "assistant" and user is not None:
            assistant = _turn_text(message) or None
            break
    return user, assistant


def _subset(items: list, max_samples: int | None, seed: int = 0) -> list:
    """A seeded random subset in the original order (the first N would be one question only)."""
    if max_samples is None or max_samples >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), max_samples))
    return [items[i] for i in keep]


def _finish(eval_set: EvalSet) -> EvalSet:
    if eval_set.skips:
        logger.warning("%s: skipped %d of %d rows: %s", eval_set.name, len(eval_set.skips), eval_set.rows_read,
                       eval_set.skip_summary()["by_reason"])
    if not eval_set.samples:
        reasons = eval_set.skip_summary()["by_reason"] or {"no rows": 0}
        raise EmptyEvaluationSetError(
            f"evaluation set {eval_set.name!r} has no usable samples ({eval_set.rows_read} rows read; "
            f"skipped by reason: {reasons})"
        )
    return eval_set


# ------------------------------------------------------------------------- gz-talk-instruct
def sample_from_row(row: dict[str, Any], config: str | None) -> EvalSample:
    """One gz-talk-instruct row -> EvalSample; ValueError/KeyError/OSError name what is wrong."""
    row_id = str(row.get("id"))
    prompt, reference = first_exchange(row.get("messages"))
    question, answer = row.get("question"), row.get("answer")
    if config == TREE_CONFIG and question is None:
        raise NotScoredRow("multi-turn decision-tree walk: no single question to score")
    if question is not None:
        if answer is None:
            raise ValueError(f"question {question!r} without an answer")
        answer = check_label(question, answer)
    votes = clean_votes(row.get("votes"))
    expert: dict[str, str] = {}
    if row.get("truth"):
        try:
            truth = json.loads(row["truth"])
        except json.JSONDecodeError as err:
            raise ValueError(f"truth is not JSON: {err}") from None
        # The generator's truth also holds its parameters (kind, arm_count, pitch_deg, ...): only the
        # decision-tree questions are labels; checkbox truths (lists) have no single answer to score.
        for q_key, a_key in truth.items():
            if q_key in QUESTIONS and isinstance(a_key, str):
                expert[q_key] = check_label(q_key, a_key)
    image = row.get("image") or {}
    try:
        data = image.get("bytes") or Path(image.get("path") or "").read_bytes()
        decode_image(data)
    except Exception as err:  # PIL raises many types for bad bytes
        raise OSError(f"unreadable image: {_describe_image_error(err, image.get('path'))}") from None
    return EvalSample(
        id=row_id, image_data=data, votes=votes, expert=expert, question=question, answer=answer,
        prompt=prompt, reference=reference, subject_id=row.get("subject_id"),
    )


def _describe_image_error(err: Exception, path: str | None) -> str:
    # PIL names an in-memory file by its object repr (an address): say what it was instead
    text = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", path or "the embedded image bytes", str(err))
    return f"{type(err).__name__}: {text}"


def _skip_reason(err: Exception) -> str:
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if isinstance(err, OSError):
        return text
    return f"bad label: {text}"


def load_instruct_split(dataset: str, config: str, split: str, max_samples: int | None = None,
                        seed: int = 0) -> EvalSet:
    """A gz-talk-instruct config/split from a local folder or a Hub repo id."""
    import datasets

    try:
        table = datasets.load_dataset(dataset, config, split=split)
    except ValueError as err:
        raise ValueError(f"cannot load config {config!r} split {split!r} of {dataset!r}: {err}") from err
    missing = {"id", "image", "messages"} - set(table.column_names)
    if missing:
        raise ValueError(f"{dataset} ({config}/{split}) is not gz-talk-instruct: missing column(s) {sorted(missing)}")
    table = table.cast_column("image", datasets.Image(decode=False))  # decode ourselves, to skip bad ones
    indices = _subset(list(range(len(table))), max_samples, seed)
    eval_set = EvalSet(name=f"{Path(dataset).name or dataset}:{config}/{split}", kind="gz-talk-instruct", samples=[])
    for index in indices:
        row = table[index]
        eval_set.rows_read += 1
        try:
            eval_set.samples.append(sample_from_row(row, config))
        except NotScoredRow as err:
            eval_set.skips.append(Skip(id=str(row.get("id")), reason=f"not scored: {err}", bad_input=False))
        except (ValueError, KeyError, OSError) as err:
            eval_set.skips.append(Skip(id=str(row.get("id", f"row {index}")), reason=_skip_reason(err)))
    return _finish(eval_set)


# --------------------------------------------------------------------------- image folders
LABELS_FILE = "labels.csv"


def _folder_label(record: dict[str, str]) -> tuple[str, str]:
    if record.get("question"):
        return record["question"], check_label(record["question"], record.get("answer") or "")
    try:
        question_index = int(record["question_index"])
        answer_index = int(record["answer_index"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"question_index/answer_index must be integers, got {record.get('question_index')!r}/"
            f"{record.get('answer_index')!r}"
        ) from None
    return from_website_index(question_index, answer_index, record.get("answer_kind") or "answer")


def load_image_folder(folder: str | Path, max_samples: int | None = None, seed: int = 0) -> EvalSet:
    """A folder with labels.csv (see the module docstring) -> one sample per labelled image."""
    folder = Path(folder)
    labels = folder / LABELS_FILE
    if not labels.is_file():
        raise FileNotFoundError(f"{labels} not found: a labelled-image folder needs a {LABELS_FILE}")
    with labels.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if "image" not in columns or not ({"question", "answer"} <= columns or {"question_index", "answer_index"} <= columns):
            raise ValueError(
                f"{labels}: needs columns image + (question, answer) or image + (question_index, answer_index"
                f"[, answer_kind]); it has {sorted(columns)}"
            )
        records = list(reader)
    eval_set = EvalSet(name=folder.resolve().name, kind="image-folder", samples=[])
    by_image: dict[str, EvalSample] = {}
    for line, record in enumerate(records, start=2):  # line 1 is the header
        eval_set.rows_read += 1
        row_id = f"{LABELS_FILE}:{line} ({record.get('image')})"
        try:
            question, answer = _folder_label(record)
        except (ValueError, KeyError) as err:
            eval_set.skips.append(Skip(id=row_id, reason=_skip_reason(err)))
            continue
        name = record["image"]
        if name in by_image:
            by_image[name].expert[question] = answer
            continue
        try:
            data = (folder / name).read_bytes()
            image = decode_image(data, name)
        except Exception as err:
            eval_set.skips.append(Skip(id=row_id, reason=f"unreadable image: {_describe_image_error(err, name)}"))
            continue
        # A FITS cutout is kept decoded (its stretch is the costly part); JPEG/PNG stay encoded until a batch needs them.
        stored = image if _is_fits_name(name) else data
        stem = name[: -len(next(s for s in FITS_SUFFIXES if name.lower().endswith(s)))] if _is_fits_name(name) else name
        by_image[name] = EvalSample(id=Path(stem).stem, image_data=stored, expert={question: answer})
    eval_set.samples = _subset(list(by_image.values()), max_samples, seed)
    return _finish(eval_set)


# ------------------------------------------------------------------------ real-galaxy catalogues
# GZ1's single class -> the decision-tree answers it implies (question key -> answer key).
GZ1_CLASS_ANSWERS: dict[str, dict[str, str]] = {
    "elliptical": {"smooth-or-featured": "smooth"},
    "edge_on": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes"},
    "clockwise_spiral": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "has-spiral-arms": "yes"},
    "anticlockwise_spiral": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "has-spiral-arms": "yes"},
    "merger": {"merging": "merger"},
    "dont_know": {},
}
GZ1_CLASS_COLUMN = "class_name"
TWINS_FILE = "same_galaxy_in_gz2_kaggle_5000.csv"  # next to the GZ1 labels.csv
CATALOGUE_SPLITS = ("train", "validation", "test", "all")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class CatalogueGalaxy:
    """One row of a catalogue: its id, targets (votes or expert labels) and where its image may be."""
    id: str
    votes: dict[str, float] = field(default_factory=dict)
    expert: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # the row's `image` column, relative to the catalogue's folder


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def read_catalogue(path: str | Path, id_column: str | None = None) -> tuple[str, list[CatalogueGalaxy], list[Skip]]:
    """(layout, galaxies, skipped rows) of a vote catalogue or a GZ1 class table; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalogue {path} not found (expected a vote catalogue or a GZ1 labels.csv)")
    header = _csv_header(path) if path.suffix.lower() in (".csv", ".tsv", ".gz") else []
    if GZ1_CLASS_COLUMN in header:
        return ("gz1-classes", *_read_gz1_classes(path, header, id_column))
    from dataset_builder.catalogues import read_vote_catalogue

    rejects: list = []
    schema, votes = read_vote_catalogue(path, rejects, id_column=id_column)
    skips = [Skip(id=r.id, reason=f"bad votes: {r.reason}") for r in rejects]
    return schema, [CatalogueGalaxy(id=galaxy_id, votes=clean_votes(v)) for galaxy_id, v in votes.items()], skips


def _read_gz1_classes(path: Path, header: list[str], id_column: str | None) -> tuple[list[CatalogueGalaxy], list[Skip]]:
    id_column = id_column or "objid"
    if id_column not in header:
        raise ValueError(f"{path}: id column {id_column!r} not found (columns: {', '.join(header)}); "
                         "pass --catalogue-id-column")
    galaxies, skips, seen = [], [], set()
    with path.open(newline="", encoding="utf-8") as handle:
        for line, record in enumerate(csv.DictReader(handle), start=2):
            galaxy_id = (record.get(id_column) or "").strip()
            name = (record.get(GZ1_CLASS_COLUMN) or "").strip()
            row_id = f"{path.name}:{line} ({galaxy_id or 'no id'})"
            if not galaxy_id:
                skips.append(Skip(id=row_id, reason=f"bad label: empty {id_column}"))
            elif galaxy_id in seen:
                skips.append(Skip(id=row_id, reason=f"bad label: {id_column}={galaxy_id} repeats an earlier row"))
            elif name not in GZ1_CLASS_ANSWERS:
                skips.append(Skip(id=row_id, reason=f"bad label: unknown GZ1 class {name!r}; expected one of "
                                                    f"{', '.join(GZ1_CLASS_ANSWERS)}"))
            elif not GZ1_CLASS_ANSWERS[name]:
                skips.append(Skip(id=row_id, reason=f"not scored: GZ1 class {name} implies no answer", bad_input=False))
            else:
                seen.add(galaxy_id)
                galaxies.append(CatalogueGalaxy(id=galaxy_id, expert=dict(GZ1_CLASS_ANSWERS[name]),
                                                image=(record.get("image") or "").strip() or None))
    return galaxies, skips


def catalogue_side(layout: str, catalogue: Path, twins_path: str | Path | None = None):
    """galaxy id -> "train"/"validation"/"test" for this catalogue (GZ1: a GZ2 twin's side); validation is
    `VALIDATION_PERCENT` of the non-test galaxies, as the training recipes hold it out."""
    if layout != "gz1-classes":
        return lambda galaxy_id: split_of(galaxy_id, validation_percent=VALIDATION_PERCENT)
    twins = read_twins(Path(twins_path) if twins_path else catalogue.parent / TWINS_FILE)
    return lambda galaxy_id: gz1_split_of(galaxy_id, twins, validation_percent=VALIDATION_PERCENT)


def _image_path(galaxy: CatalogueGalaxy, images: Path | None, catalogue: Path) -> Path | None:
    candidates = []
    if galaxy.image:
        if images is not None:
            candidates.append(images / Path(galaxy.image).name)
        candidates.append(catalogue.parent / galaxy.image)
    if images is not None:
        candidates += [images / f"{galaxy.id}{suffix}" for suffix in IMAGE_SUFFIXES]
    return next((c for c in candidates if c.is_file()), None)


def load_catalogue(catalogue: str | Path, images: str | Path | None = None, id_column: str | None = None,
                   split: str = "test", max_samples: int | None = None, seed: int = 0,
                   twins: str | Path | None = None) -> EvalSet:
    """The galaxies of one side of the fixed split (`split="all"`: every galaxy) of a real catalogue."""
    catalogue = Path(catalogue)
    if split not in CATALOGUE_SPLITS:
        raise ValueError(f"--split {split!r}: a catalogue is split by galaxy id into {', '.join(CATALOGUE_SPLITS)}")
    images = Path(images) if images else None
    if images is not None and not images.is_dir():
        raise FileNotFoundError(f"image folder {images} not found (expected <id>.jpg files for {catalogue})")
    layout, galaxies, skips = read_catalogue(catalogue, id_column)
    side = catalogue_side(layout, catalogue, twins)
    chosen = [g for g in galaxies if split == "all" or side(g.id) == split]
    chosen = _subset(chosen, max_samples, seed)
    eval_set = EvalSet(name=f"{catalogue.parent.name}/{catalogue.name}:{split}", kind=f"catalogue ({layout})",
                       samples=[], skips=skips, rows_read=len(galaxies) + len(skips))
    for galaxy in tqdm(chosen, desc="catalogue: check images", unit="img", leave=False):
        path = _image_path(galaxy, images, catalogue)
        if path is None:
            where = images or catalogue.parent
            eval_set.skips.append(Skip(id=galaxy.id, reason=f"unreadable image: no image file for id {galaxy.id} in {where}"))
            continue
        try:
            data = path.read_bytes()
            decode_image(data, path)
        except Exception as err:
            eval_set.skips.append(Skip(id=galaxy.id, reason=f"unreadable image: {_describe_image_error(err, str(path))}"))
            continue
        eval_set.samples.append(EvalSample(id=galaxy.id, image_data=data, votes=galaxy.votes, expert=galaxy.expert,
                                           subject_id=galaxy.id))
    return _finish(eval_set)


def catalogue_answer_counts(catalogue: str | Path, id_column: str | None = None, split: str = "train",
                            twins: str | Path | None = None) -> Counter | None:
    """(question, answer) counts of the targets on one side of the split, for the majority-prior baseline."""
    from .morphology import morphology_items

    catalogue = Path(catalogue)
    layout, galaxies, _ = read_catalogue(catalogue, id_column)
    side = catalogue_side(layout, catalogue, twins)
    samples = [EvalSample(id=g.id, image_data=b"", votes=g.votes, expert=g.expert) for g in galaxies
               if side(g.id) == split]
    counts = Counter((item.question, item.answer) for item in morphology_items(samples))
    return counts or None


def load_eval_set(dataset: str | None = None, config: str | None = None, split: str = "test",
                  image_folder: str | None = None, max_samples: int | None = None, seed: int = 0,
                  catalogue: str | None = None, images: str | None = None, catalogue_id_column: str | None = None,
                  twins: str | None = None) -> EvalSet:
    if sum(x is not None for x in (dataset, image_folder, catalogue)) != 1:
        raise ValueError("give exactly one of a gz-talk-instruct dataset (with its config), an image folder "
                         "or a catalogue")
    if catalogue is not None:
        return load_catalogue(catalogue, images, catalogue_id_column, split, max_samples, seed, twins)
    if image_folder is not None:
        return load_image_folder(image_folder, max_samples, seed)
    if not config:
        raise ValueError("a gz-talk-instruct dataset needs --config (description, conversation or decision_tree)")
    return load_instruct_split(dataset, config, split, max_samples, seed)


def load_answer_counts(dataset: str, config: str, split: str = "train") -> Counter | None:
    """(question, answer) counts of a training split, for the majority-class baseline; None if absent.

    Rows with a `question` column value count as themselves (config decision_tree); other rows
    count the majority answers along their vote path, the items `morphology_items` makes.
    """
    import datasets

    from dataset_builder.decision_tree import majority_answer

    from .morphology import majority_path

    try:
        table = datasets.load_dataset(dataset, config, split=split)
    except Exception as err:  # missing split or config: the baseline falls back to the eval set
        logger.info("no %s split for the majority baseline (%s); using the evaluation set", split, err)
        return None
    counts: Counter = Counter()
    questions = table["question"] if "question" in table.column_names else [None] * len(table)
    answers = table["answer"] if "answer" in table.column_names else [None] * len(table)
    votes_column = table["votes"] if "votes" in table.column_names else [None] * len(table)
    explicit = any(q is not None for q in questions)
    for question, answer, votes in zip(questions, answers, votes_column):
        if explicit:
            if question in QUESTIONS and answer in QUESTIONS[question].answer_keys:
                counts[(question, answer)] += 1
            continue
        try:
            votes = clean_votes(votes)
        except KeyError:
            continue
        for q in majority_path(votes):
            majority = majority_answer(q, votes)
            if majority is not None:
                counts[(q.key, majority[0])] += 1
    return counts or None
