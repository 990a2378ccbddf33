"""Real-galaxy catalogues as evaluation sets, restricted to one side of the fixed real-galaxy split (`gzllava.splits`).

Catalogues (`load_catalogue`) are read as they are, one galaxy per row, images found by id
(`<images>/<id>.jpg|.jpeg|.png`) or by the row's `image` column:
- a vote catalogue (GZ2 Kaggle `Class1.1 ...`, GZ2, GZ DECaLS; `dataset_builder.catalogues` turns it into
  per-question vote fractions, Kaggle's cumulative ones included): targets are the vote-majority answers
  along the majority path, with the vote shares (for the confident subset and calibration);
- the GZ1 class layout (`class_name` column: elliptical, edge_on, clockwise/anticlockwise_spiral, merger,
  dont_know): each class is the answers it implies (`GZ1_CLASS_ANSWERS`), as expert labels; `dont_know`
  implies none and is counted as not scored. GZ1 images with a GZ2 twin take the twin's side of the split.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from gzllava.splits import TWINS_FILE, VALIDATION_PERCENT, gz1_split_of, read_twins, split_of

from .morphology_metrics import morphology_items
from .samples import EvalSample, EvalSet, Skip, checked, clean_votes, decode_image, describe_image_error, seeded_subset

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
    chosen = seeded_subset(chosen, max_samples, seed)
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
            eval_set.skips.append(Skip(id=galaxy.id, reason=f"unreadable image: {describe_image_error(err, str(path))}"))
            continue
        eval_set.samples.append(EvalSample(id=galaxy.id, image_data=data, votes=galaxy.votes, expert=galaxy.expert,
                                           subject_id=galaxy.id))
    return checked(eval_set)


def catalogue_answer_counts(catalogue: str | Path, id_column: str | None = None, split: str = "train",
                            twins: str | Path | None = None) -> Counter | None:
    """(question, answer) counts of the targets on one side of the split, for the majority-prior baseline."""
    catalogue = Path(catalogue)
    layout, galaxies, _ = read_catalogue(catalogue, id_column)
    side = catalogue_side(layout, catalogue, twins)
    samples = [EvalSample(id=g.id, image_data=b"", votes=g.votes, expert=g.expert) for g in galaxies
               if side(g.id) == split]
    counts = Counter((item.question, item.answer) for item in morphology_items(samples))
    return counts or None
