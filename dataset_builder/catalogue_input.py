"""The subjects of a catalogue-only build: a vote catalogue and an image folder, no Talk export.

    python -m dataset_builder build --catalogue labels.csv --catalogue-id-column GalaxyID \
        --images images/ --output_dir gz2-build

Each catalogue row is one subject (id = the id column, image = `<id>.<jpg|jpeg|png|fits...>` in the
folder) whose votes give the `decision_tree` rows and, through the template summariser, the
`description` rows (no comments: the description says only what the votes say). Only the questions
the catalogue has are asked (the Kaggle sample has questions 1, 2, 6, 7 and 8 of GZ2).

A class-label catalogue (one class per galaxy, e.g. `gz1_sdss/labels.csv`: objid, class_name) is read
by `catalogues.read_class_catalogue`: each class becomes the decision-tree answers it implies
(elliptical -> smooth; edge_on -> features, edge-on; (anti)clockwise_spiral -> features, not edge-on,
spiral arms; merger -> merging), worded without a confidence, with null `votes` and `answer_fraction`
(a weak label, not a vote share); `dont_know` and unknown classes are counted rejects.

Galaxies are split by the project's fixed real-galaxy split, `gzllava.splits.split_of(id)` (train or
test; a GZ1 galaxy with a GZ2 twin listed in `same_galaxy_in_gz2_kaggle_5000.csv` next to the
catalogue takes its twin's side), so a model trained on the `train` split of one build is never
measured on a galaxy it saw in another.

Checked before anything is built (one error naming the file or column): the id column exists and is
not empty, and at least one id names an image. Ids without an image are counted rejects ("missing").
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from .records import Reject, Subject

CLASS_LABEL = "class-label"
EXAMPLES = 3


@dataclass
class LabelledSubject(Subject):
    """A subject of a class-label catalogue: decision-tree answers from its class, no vote fractions."""

    labels: dict[str, str] = field(default_factory=dict)  # question key -> answer key


@dataclass
class CatalogueInput:
    subjects: dict[str, Subject]  # in catalogue order
    schema: str  # "kaggle", "gz2", "decals", or "class-label"
    id_column: str
    rows: int  # catalogue rows read (subjects + rejected rows)
    rejects: list[Reject]  # rows that are no subject (bad fractions, no id, repeated id)
    questions: list[str]  # decision-tree questions the catalogue has votes (or class answers) for
    images_found: int  # subjects whose id names a file in the image folder
    split_rule: str  # for the card
    split_of: Callable[[str], str]


def shared_splits() -> ModuleType:
    """`gzllava.splits`, without importing the `gzllava` package (which registers the model classes with
    transformers: ~6 s). The module is pure Python and imports nothing from the package."""
    if "gzllava.splits" in sys.modules:
        return sys.modules["gzllava.splits"]
    spec = importlib.util.find_spec("gzllava")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("gzllava is not installed: the catalogue build needs gzllava.splits (pip install -e .)")
    path = Path(next(iter(spec.submodule_search_locations))) / "splits.py"
    module_spec = importlib.util.spec_from_file_location("gzllava_splits_standalone", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _examples(items) -> str:
    items = sorted(items)
    return ", ".join(items[:EXAMPLES]) + (" ..." if len(items) > EXAMPLES else "") if items else "none"


def split_rule(catalogue: Path) -> tuple[str, Callable[[str], str]]:
    """(description for the card, id -> "train" | "test") from `gzllava.splits`."""
    splits = shared_splits()
    twins_path = Path(catalogue).parent / splits.TWINS_FILE
    twins = splits.read_twins(twins_path)
    # the card's split sentence (card.split_sentence) names gzllava.splits.split_of; this is the particulars
    text = f"{splits.TEST_PERCENT}% of the galaxies in test"
    if twins:
        text += f"; {len(twins)} GZ1 galaxies take the side of their GZ2 twin ({splits.TWINS_FILE})"
        return text, lambda galaxy_id: splits.gz1_split_of(galaxy_id, twins)
    return text, splits.split_of


def read_catalogue_subjects(catalogue: Path, images: Path, id_column: str | None) -> CatalogueInput:
    """Subjects with votes from `catalogue`; ValueError (one line) when the inputs cannot make a build."""
    from .catalogue_files import read_columns
    from .catalogues import catalogue_id_column, read_vote_catalogue
    from .class_catalogue import class_label_column, read_class_catalogue
    from .decision_tree import QUESTIONS
    from .images import ImageStore
    from .votes import CompactVotes, vote_index

    catalogue, images = Path(catalogue), Path(images)
    if not catalogue.is_file():
        raise FileNotFoundError(f"--catalogue: file not found: {catalogue}")
    rejects: list[Reject] = []
    class_col = class_label_column(read_columns(catalogue))
    labels: dict[str, dict[str, str]] = {}
    if class_col is not None:
        schema = CLASS_LABEL
        id_col, class_col, labels = read_class_catalogue(catalogue, rejects, id_column)
        votes: dict[str, dict[str, float]] = {key: {} for key in labels}
    else:
        schema, id_col = catalogue_id_column(catalogue, id_column)
        _, votes = read_vote_catalogue(catalogue, rejects, id_column=id_col)
    rows = len(votes) + len(rejects)
    if not votes:
        reasons = sorted({r.reason.split(":")[0] for r in rejects})
        raise ValueError(f"vote catalogue {catalogue}: none of its {rows} rows is usable ({', '.join(reasons)}; "
                         f"e.g. {rejects[0].reason})" if rejects else f"vote catalogue {catalogue}: no rows")
    with ImageStore(image_dir=images, offline=True) as store:
        available = store.local_ids()
    found = sum(1 for subject_id in votes if subject_id in available)
    if not found:
        raise ValueError(
            f"--images {images}: none of the {len(votes)} catalogue ids (column {id_col!r} of {catalogue.name}, "
            f"e.g. {_examples(votes)}) names an image there ({len(available)} images, e.g. {_examples(available)}); "
            "images must be named <id>.jpg/.jpeg/.png/.fits")
    index = vote_index()
    subjects: dict[str, Subject] = {}
    source = f"catalogue:{catalogue.name}"
    for subject_id, fractions in votes.items():
        if class_col is not None:
            subjects[subject_id] = LabelledSubject(subject_id=subject_id, catalogue=schema, source=source,
                                                   labels=labels[subject_id])
        else:
            subjects[subject_id] = Subject(subject_id=subject_id, votes=CompactVotes.from_dict(fractions, index),
                                           catalogue=schema, source=source)
    answered = {column for fractions in votes.values() for column in fractions}
    answered |= {QUESTIONS[q].column(a) for answers in labels.values() for q, a in answers.items()}
    questions = [key for key, q in QUESTIONS.items() if any(c in answered for c in q.columns())]
    text, rule = split_rule(catalogue)
    return CatalogueInput(subjects=subjects, schema=schema, id_column=id_col, rows=rows, rejects=rejects,
                          questions=questions, images_found=found, split_rule=text, split_of=rule)
