"""Class-label catalogues: one class per galaxy instead of vote fractions (e.g. gz1_sdss/labels.csv).

A class becomes the decision-tree answers it implies; it is a weak label (how votes became the class is
not documented), so rows built from it carry no fractions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .catalogue_files import csv_separator, read_columns
from .catalogue_schemas import GZ2_SUFFIXES, KAGGLE, resolve_id_column
from .records import Reject
from .talk import normalise_id

logger = logging.getLogger(__name__)

# --- class-label catalogues ---------------------------------------------------------------------
# One class per galaxy instead of vote fractions (e.g. gz1_sdss/labels.csv: objid, image, class, class_name,
# the most specific leaf of the Galaxy Zoo 1 classification). A class becomes the decision-tree answers it
# implies; it is a weak label (how votes became the class is not documented), so rows carry no fractions.
CLASS_COLUMNS = ("class_name", "class", "label")
CLASS_ID_COLUMNS = ("objid", "dr7objid", "GalaxyID", "subject_id", "id")
CLASS_ANSWERS: dict[str, dict[str, str]] = {  # GZ1 class name -> {question key: answer key}
    "elliptical": {"smooth-or-featured": "smooth"},
    "edge_on": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "yes"},
    "clockwise_spiral": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "has-spiral-arms": "yes"},
    "anticlockwise_spiral": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "has-spiral-arms": "yes"},
    "merger": {"merging": "merger"},
}
NO_MORPHOLOGY_CLASSES = ("dont_know", "star_dont_know", "star")  # volunteers could not classify: nothing to learn


def class_label_column(columns: Sequence[str]) -> str | None:
    """The class column of a class-label catalogue (None: not one, e.g. a vote catalogue)."""
    present = set(columns)
    if any(f"t01_smooth_or_features_a01_smooth{s}" in present for s in GZ2_SUFFIXES) or \
            "smooth-or-featured_smooth_fraction" in present or "Class1.1" in present:
        return None
    return next((c for c in CLASS_COLUMNS if c in present), None)


def read_class_catalogue(path: Path, rejects: list[Reject] | None = None, id_column: str | None = None
                         ) -> tuple[str, str, dict[str, dict[str, str]]]:
    """(id column, class column, {id -> {question key: answer key}}) of a class-label CSV catalogue.

    Rows without an id, with a repeated id, an empty class, a class without morphology (`dont_know`) or an
    unknown class become Rejects (stage "votes", kind "row"); an id or class column that is empty in every
    row is a ValueError naming the file and the column.
    """
    path = Path(path)
    columns = read_columns(path)
    class_col = class_label_column(columns)
    if class_col is None:
        raise ValueError(f"catalogue {path}: no class column (expected one of {', '.join(CLASS_COLUMNS)})")
    if id_column is not None:
        id_col = resolve_id_column(KAGGLE, columns, path, id_column)  # the schema only matters without id_column
    else:
        id_col = next((c for c in CLASS_ID_COLUMNS if c in columns), None)
        if id_col is None:
            raise ValueError(f"class-label catalogue {path}: no id column; expected one of {', '.join(CLASS_ID_COLUMNS)} "
                             "(or pass --catalogue-id-column)")
    sep = csv_separator(path)
    frame = pd.read_csv(path, usecols=[id_col, class_col], dtype=str, keep_default_na=False, sep=sep)
    classes = frame[class_col].str.strip()
    if len(frame) and (classes == "").all():
        raise ValueError(f"class-label catalogue {path}: class column {class_col!r} is empty in all {len(frame)} rows")
    ids = [normalise_id(v) for v in frame[id_col].tolist()]
    if len(frame) and all(i is None for i in ids):
        raise ValueError(f"class-label catalogue {path}: id column {id_col!r} is empty in all {len(frame)} rows")
    known = ", ".join([*CLASS_ANSWERS, *NO_MORPHOLOGY_CLASSES])
    result: dict[str, dict[str, str]] = {}
    for row, (subject_key, name) in enumerate(zip(ids, classes.tolist()), start=2):  # row 1 is the header
        if subject_key is None:
            reason = f"no id: empty {id_col}"
        elif subject_key in result:
            reason = f"duplicate id: {id_col}={subject_key} repeats an earlier row"
        elif not name:
            reason = f"no class: empty {class_col}"
        elif name in NO_MORPHOLOGY_CLASSES:
            reason = f"no morphology: class {name!r} (volunteers could not classify it)"
        elif name not in CLASS_ANSWERS:
            reason = f"unknown class: {class_col}={name!r}, expected one of {known}"
        else:
            result[subject_key] = dict(CLASS_ANSWERS[name])
            continue
        if rejects is not None:
            rejects.append(Reject("votes", "row", subject_key or f"{path.name}:{row}", reason, str(path)))
    logger.info("class-label catalogue %s: %d subjects with a usable class", path, len(result))
    return id_col, class_col, result
