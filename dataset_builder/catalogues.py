"""Read Galaxy Zoo vote catalogues into the canonical vote fractions of `decision_tree.py`.

Three catalogue families are recognised from their column names:

- ``gz2``: Galaxy Zoo 2 (Hart et al. 2016, MNRAS 461, 3663; also Willett et al. 2013), columns
  like `t01_smooth_or_features_a01_smooth_debiased`, id `dr7objid` (or `objid`). The debiased
  fractions are used when present, else the weighted, else the raw fractions.
- ``decals``: GZ DECaLS (Walmsley et al. 2022) and GZ DESI (Walmsley et al. 2023), columns like
  `smooth-or-featured_smooth_fraction` and `..._total-votes`, id `iauname` (or `dr8_id`, `id_str`).
  Both the DR1/2 answers (the tree of `decision_tree.py`) and the DR5/DESI ones are read:
  bar strong+weak -> yes; bulge none -> no, small+moderate+large -> obvious, dominant -> dominant;
  merging minor+major disturbance -> tidal-debris, none -> neither ("both" was not offered: 0);
  how-rounded round -> completely.
- ``kaggle``: the Galaxy Zoo Challenge (Kaggle 2014, training_solutions_rev1.csv), `GalaxyID`,
  `Class1.1` ... `Class11.6`. These are cumulative: each question's answers sum to the share of
  volunteers who reached it, so each question is first normalised to sum to 1.

GZ2 and Kaggle share the GZ2 tree, whose merger answers live inside "odd feature" (asked only
after "is there anything odd? yes"). They are mapped to overall shares: merging_merger =
odd_yes x odd_feature_merger, merging_tidal-debris = odd_yes x disturbed, merging_neither = the
rest; odd-feature_none = odd_no, odd-feature_<f> = odd_yes x f ("overlapping" was not offered: 0).
"Can't tell" arm counts have no canonical answer and are dropped (the others keep their values).

Fractions are per question (conditional on reaching it), as in the GZ DECaLS catalogues. A
question nobody answered (NaN) is left out of the row rather than guessed. A row with a fraction
outside [0, 1], a non-number, no id, a repeated id, or answers of one question that do not add up (to
1, or for Kaggle's cumulative fractions to the share that reached the question; `SUM_TOLERANCE`)
becomes a Reject (stage "votes"). An id column that is empty in every row is an error."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .decision_tree import QUESTIONS
from .records import Reject
from .talk import normalise_id

logger = logging.getLogger(__name__)

GZ2, DECALS, KAGGLE = "gz2", "decals", "kaggle"
_TOLERANCE = 1e-6  # catalogue fractions are rounded: 1.0000001 is 1
_CHUNK_ROWS = 100_000

ID_COLUMNS: dict[str, tuple[str, ...]] = {
    GZ2: ("dr7objid", "objid", "specobjid", "subject_id"),
    DECALS: ("iauname", "dr8_id", "id_str", "subject_id"),
    KAGGLE: ("GalaxyID",),
}

# A canonical answer = the sum of terms; a term = the product of source columns (see docstring).
Terms = list[tuple[str, ...]]
Mapping_ = dict[str, dict[str, Terms]]  # question key -> answer key -> terms

# --- GZ2 tree (GZ2 and Kaggle) ------------------------------------------------------------------

# Task number -> (GZ2 column stem, answer stems); Kaggle's Class<t>.<i> follow the same order.
_GZ2_TASKS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("t01_smooth_or_features", ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact")),
    2: ("t02_edgeon", ("a04_yes", "a05_no")),
    3: ("t03_bar", ("a06_bar", "a07_no_bar")),
    4: ("t04_spiral", ("a08_spiral", "a09_no_spiral")),
    5: ("t05_bulge_prominence", ("a10_no_bulge", "a11_just_noticeable", "a12_obvious", "a13_dominant")),
    6: ("t06_odd", ("a14_yes", "a15_no")),
    7: ("t07_rounded", ("a16_completely_round", "a17_in_between", "a18_cigar_shaped")),
    8: ("t08_odd_feature", ("a19_ring", "a20_lens_or_arc", "a21_disturbed", "a22_irregular", "a23_other",
                            "a24_merger", "a38_dust_lane")),
    9: ("t09_bulge_shape", ("a25_rounded", "a26_boxy", "a27_no_bulge")),
    10: ("t10_arms_winding", ("a28_tight", "a29_medium", "a30_loose")),
    11: ("t11_arms_number", ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell")),
}
_ODD_YES, _ODD_NO = "6.1", "6.2"
_ODD_FEATURES = {"ring": "8.1", "lens-or-arc": "8.2", "irregular": "8.4", "other": "8.5", "dust-lane": "8.7"}

# Canonical question -> answer -> terms over "<task>.<answer number>" references.
_GZ2_TREE: Mapping_ = {
    "smooth-or-featured": {"smooth": [("1.1",)], "featured-or-disk": [("1.2",)], "artifact": [("1.3",)]},
    "disk-edge-on": {"yes": [("2.1",)], "no": [("2.2",)]},
    "bar": {"yes": [("3.1",)], "no": [("3.2",)]},
    "has-spiral-arms": {"yes": [("4.1",)], "no": [("4.2",)]},
    "bulge-size": {"no": [("5.1",)], "obvious": [("5.2",), ("5.3",)], "dominant": [("5.4",)]},
    "how-rounded": {"completely": [("7.1",)], "in-between": [("7.2",)], "cigar-shaped": [("7.3",)]},
    "edge-on-bulge": {"rounded": [("9.1",)], "boxy": [("9.2",)], "none": [("9.3",)]},
    "spiral-winding": {"tight": [("10.1",)], "medium": [("10.2",)], "loose": [("10.3",)]},
    "spiral-arm-count": {"1": [("11.1",)], "2": [("11.2",)], "3": [("11.3",)], "4": [("11.4",)],
                         "more-than-4": [("11.5",)]},
    "merging": {
        "merger": [(_ODD_YES, "8.6")],
        "tidal-debris": [(_ODD_YES, "8.3")],
        "both": [],
        "neither": [(_ODD_NO,)] + [(_ODD_YES, ref) for ref in _ODD_FEATURES.values()],
    },
    "odd-feature": {"none": [(_ODD_NO,)], **{f: [(_ODD_YES, ref)] for f, ref in _ODD_FEATURES.items()},
                    "overlapping": []},
}
# Canonical question -> the GZ2 task whose answer counts give its number of votes.
_GZ2_TOTAL_TASK = {"smooth-or-featured": 1, "disk-edge-on": 2, "bar": 3, "has-spiral-arms": 4, "bulge-size": 5,
                   "how-rounded": 7, "edge-on-bulge": 9, "spiral-winding": 10, "spiral-arm-count": 11,
                   "merging": 6, "odd-feature": 6}
_GZ2_SUFFIXES = ("_debiased", "_weighted_fraction", "_fraction")


def _gz2_column(ref: str, suffix: str) -> str:
    task, answer = ref.split(".")
    stem, answers = _GZ2_TASKS[int(task)]
    return f"{stem}_{answers[int(answer) - 1]}{suffix}"


def _kaggle_column(ref: str) -> str:
    return f"Class{ref}"


# --- DECaLS / DESI ------------------------------------------------------------------------------

# Canonical question -> variants (first whose columns all exist wins): answer -> source answers.
_DECALS_VARIANTS: dict[str, list[dict[str, list[str]]]] = {
    "bar": [{"yes": ["yes"], "no": ["no"]}, {"yes": ["strong", "weak"], "no": ["no"]}],
    "bulge-size": [
        {"no": ["no"], "obvious": ["obvious"], "dominant": ["dominant"]},
        {"no": ["no"], "obvious": ["just-noticeable", "obvious"], "dominant": ["dominant"]},
        {"no": ["none"], "obvious": ["small", "moderate", "large"], "dominant": ["dominant"]},
    ],
    "how-rounded": [
        {"completely": ["completely"], "in-between": ["in-between"], "cigar-shaped": ["cigar-shaped"]},
        {"completely": ["round"], "in-between": ["in-between"], "cigar-shaped": ["cigar-shaped"]},
    ],
    "merging": [
        {"merger": ["merger"], "tidal-debris": ["tidal-debris"], "both": ["both"], "neither": ["neither"]},
        {"merger": ["merger"], "tidal-debris": ["minor-disturbance", "major-disturbance"], "both": [],
         "neither": ["none"]},
    ],
}


def _decals_mapping(columns: set[str]) -> tuple[Mapping_, dict[str, str]]:
    mapping: Mapping_ = {}
    totals: dict[str, str] = {}
    for key, question in QUESTIONS.items():
        identity = {a: [a] for a in question.answer_keys}
        for variant in [identity, *_DECALS_VARIANTS.get(key, [])]:
            sources = {a: [f"{key}_{s}_fraction" for s in srcs] for a, srcs in variant.items()}
            if all(c in columns for cols in sources.values() for c in cols):
                mapping[key] = {a: [(c,) for c in cols] for a, cols in sources.items()}
                break
        if key in mapping and question.total_votes_column in columns:
            totals[key] = question.total_votes_column
    return mapping, totals


def _gz2_mapping(columns: set[str], suffix: str) -> tuple[Mapping_, dict[str, list[str]]]:
    mapping: Mapping_ = {}
    totals: dict[str, list[str]] = {}
    for key, answers in _GZ2_TREE.items():
        refs = {ref for terms in answers.values() for term in terms for ref in term}
        # The file's preferred kind of fraction, else any other kind that has every column.
        for sfx in (suffix, *[s for s in _GZ2_SUFFIXES if s != suffix]):
            if all(_gz2_column(ref, sfx) in columns for ref in refs):
                mapping[key] = {a: [tuple(_gz2_column(r, sfx) for r in term) for term in terms]
                                for a, terms in answers.items()}
                break
        else:
            continue
        task = _GZ2_TOTAL_TASK[key]
        counts = [f"{_GZ2_TASKS[task][0]}_{a}_count" for a in _GZ2_TASKS[task][1]]
        if all(c in columns for c in counts):
            totals[key] = counts
    return mapping, totals


def _kaggle_task_columns(task: int) -> list[str]:
    return [f"Class{task}.{i}" for i in range(1, len(_GZ2_TASKS[task][1]) + 1)]


def _kaggle_tasks(present: set[str], path: Path) -> list[int]:
    """The Kaggle tasks (questions) whose columns are all in the file; a partly present task is an error.

    The Kaggle training file has all eleven; extracts often keep a few (the 5,000-galaxy sample here has
    1, 2, 6, 7 and 8). Questions of the missing tasks are simply not asked of these galaxies.
    """
    tasks = []
    for task in _GZ2_TASKS:
        columns = _kaggle_task_columns(task)
        missing = [c for c in columns if c not in present]
        if len(missing) == len(columns):
            continue
        if missing:
            raise ValueError(f"vote catalogue {path} (kaggle): question {task} has only some of its answer "
                             f"columns; missing {', '.join(missing)}")
        tasks.append(task)
    if 1 not in tasks:
        raise ValueError(f"vote catalogue {path} (kaggle): missing Class1.1-Class1.3 (the first question)")
    return tasks


def _kaggle_mapping(tasks: Collection[int]) -> Mapping_:
    """Canonical questions whose source columns all belong to `tasks`."""
    available = set(tasks)
    return {key: {a: [tuple(_kaggle_column(r) for r in term) for term in terms] for a, terms in answers.items()}
            for key, answers in _GZ2_TREE.items()
            if all(int(ref.split(".")[0]) in available for terms in answers.values() for term in terms for ref in term)}


# --- schema detection ---------------------------------------------------------------------------


def _expected() -> str:
    return ("gz2 (Hart+2016: t01_smooth_or_features_a01_smooth_debiased or ..._fraction, id dr7objid/objid); "
            "decals (GZ DECaLS/DESI: smooth-or-featured_smooth_fraction, ..._total-votes, id iauname/dr8_id); "
            "kaggle (Galaxy Zoo Challenge: GalaxyID, Class1.1 ... Class11.6)")


def detect_catalogue_schema(columns: Sequence[str], path: Path) -> str:
    """"gz2", "decals" or "kaggle"; ValueError naming the file and listing what is expected otherwise."""
    present = set(columns)
    if any(f"t01_smooth_or_features_a01_smooth{s}" in present for s in _GZ2_SUFFIXES):
        return GZ2
    if "smooth-or-featured_smooth_fraction" in present:
        return DECALS
    if "Class1.1" in present:
        return KAGGLE
    shown = ", ".join(list(columns)[:12]) + (" ..." if len(columns) > 12 else "")
    raise ValueError(
        f"vote catalogue {path}: unknown schema (columns: {shown or 'none'}). Expected one of: {_expected()}")


def _id_column(schema: str, columns: Sequence[str], path: Path, id_column: str | None) -> str:
    if id_column is not None:
        if id_column not in columns:
            shown = ", ".join(list(columns)[:20]) + (" ..." if len(columns) > 20 else "")
            raise ValueError(f"vote catalogue {path}: id column {id_column!r} not found (columns: {shown})")
        return id_column
    for name in ID_COLUMNS[schema]:
        if name in columns:
            return name
    raise ValueError(f"vote catalogue {path} ({schema}): no id column; expected one of "
                     f"{', '.join(ID_COLUMNS[schema])} (or pass id_column=)")


def catalogue_id_column(path: Path, id_column: str | None = None) -> tuple[str, str]:
    """(schema, id column) of a catalogue, from its header alone; ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vote catalogue not found: {path}")
    columns = _read_columns(path)
    schema = detect_catalogue_schema(columns, path)
    return schema, _id_column(schema, columns, path, id_column)


# --- file access ----------------------------------------------------------------------------------


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".fits", ".fit", ".fits.gz", ".fit.gz", ".fts")):
        return "fits"
    return "csv"


def _read_columns(path: Path) -> list[str]:
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    if kind == "fits":
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:  # the header only: no table data is read here
            for hdu in hdul:
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                    return list(hdu.columns.names)
        raise ValueError(f"vote catalogue {path}: no table HDU in this FITS file")
    sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    return list(pd.read_csv(path, nrows=0, sep=sep).columns)


def _read_chunks(path: Path, columns: list[str], id_col: str) -> Iterator[pd.DataFrame]:
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=_CHUNK_ROWS, columns=columns):
            yield batch.to_pandas()
    elif kind == "fits":
        from astropy.table import Table

        # FITS tables are read whole (memory-mapped); big-endian columns are made native for pandas.
        table = Table.read(path, format="fits", memmap=True)[columns]
        frame = table.to_pandas()
        for start in range(0, len(frame), _CHUNK_ROWS):
            yield frame.iloc[start : start + _CHUNK_ROWS]
    else:
        sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
        yield from pd.read_csv(path, usecols=columns, dtype={id_col: str}, chunksize=_CHUNK_ROWS, sep=sep)


# --- conversion ---------------------------------------------------------------------------------


def _numeric(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(float values, mask of cells that are present but not numbers)."""
    series = frame[column]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(series), dtype=bool)
    coerced = pd.to_numeric(series, errors="coerce")
    return coerced.to_numpy(dtype=float, na_value=np.nan), (series.notna() & coerced.isna()).to_numpy()


def _evaluate(mapping: Mapping_, values: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Canonical column -> values: sums of products of source columns (NaN: question not answered)."""
    out: dict[str, np.ndarray] = {}
    for key, answers in mapping.items():
        question = QUESTIONS[key]
        computed: dict[str, np.ndarray | None] = {}
        for answer, terms in answers.items():
            if not terms:
                computed[answer] = None
                continue
            total = np.zeros(n)
            for term in terms:
                factors = [values[c] for c in term]
                product = np.prod(factors, axis=0) if len(factors) > 1 else factors[0].copy()
                if len(factors) > 1:  # "yes" = 0 makes the follow-up irrelevant, even when NaN
                    product[np.any([f == 0 for f in factors], axis=0)] = 0.0
                total = total + product
            computed[answer] = total
        reached = ~np.isnan(np.sum([v for v in computed.values() if v is not None], axis=0))
        for answer, column_values in computed.items():
            if column_values is None:  # answer not offered by this catalogue: 0 where the question was asked
                column_values = np.where(reached, 0.0, np.nan)
            out[question.column(answer)] = np.clip(column_values, 0.0, 1.0)
    return out


def _normalise_kaggle(values: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Kaggle's cumulative fractions -> per-question fractions (NaN where nobody reached it)."""
    out: dict[str, np.ndarray] = {}
    for task in _GZ2_TASKS:
        cols = _kaggle_task_columns(task)
        if cols[0] not in values:  # a task this file does not have
            continue
        total = np.sum([values[c] for c in cols], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            for c in cols:
                out[c] = np.where(total > 0, values[c] / np.where(total > 0, total, 1.0), np.nan)
    return out


# A question's answers must add up to the share that reached it (1 for per-question fractions). Catalogue
# fractions are rounded (the Kaggle file is consistent to 1e-6), so 0.02 only catches real errors such as a
# row whose answers of one question add up to 2.7. GZ2 debiased fractions are corrected answer by answer
# (Hart et al. 2016), which moves their sum by a few per cent: they get a wider tolerance.
SUM_TOLERANCE = 0.02
DEBIASED_SUM_TOLERANCE = 0.25
# Kaggle task -> the cumulative answer that leads to it (None: every volunteer answers it).
_KAGGLE_PARENT: dict[int, str | None] = {1: None, 2: "Class1.2", 3: "Class2.2", 4: "Class2.2", 5: "Class2.2",
                                         6: None, 7: "Class1.1", 8: "Class6.1", 9: "Class2.1", 10: "Class4.1",
                                         11: "Class4.1"}


def _question_sums(schema: str, mapping: Mapping_, columns: Collection[str]) -> list[tuple[str, list[str], str | None, float]]:
    """(question name, its answer columns, the column its sum must equal or None for 1, tolerance) to check."""
    present = set(columns)
    checks: list[tuple[str, list[str], str | None, float]] = []
    if schema == KAGGLE:
        for task, parent in _KAGGLE_PARENT.items():
            cols = _kaggle_task_columns(task)
            if all(c in present for c in cols) and (parent is None or parent in present):
                checks.append((f"Class{task}", cols, parent, SUM_TOLERANCE))
    elif schema == GZ2:
        for task, (stem, answers) in _GZ2_TASKS.items():
            for suffix in _GZ2_SUFFIXES:
                cols = [f"{stem}_{a}{suffix}" for a in answers]
                if all(c in present for c in cols):
                    tolerance = DEBIASED_SUM_TOLERANCE if suffix == "_debiased" else SUM_TOLERANCE
                    checks.append((stem, cols, None, tolerance))
    else:
        for key, answers in mapping.items():
            if QUESTIONS[key].multiple_choice:  # checkbox options are ticked independently
                continue
            cols = [term[0] for terms in answers.values() for term in terms]
            checks.append((key, cols, None, SUM_TOLERANCE))
    return checks


def _sum_problems(checks: list[tuple[str, list[str], str | None, float]], values: dict[str, np.ndarray],
                  n: int) -> np.ndarray:
    """Per row: "" or the first question whose answers do not add up (rows where nobody answered pass)."""
    problem = np.full(n, "", dtype=object)
    for name, cols, parent, tolerance in checks:
        total = np.sum([values[c] for c in cols], axis=0)
        expected = values[parent] if parent is not None else np.ones(n)
        with np.errstate(invalid="ignore"):
            # Nobody answered the question: all answers 0 (the question is then left out of the row) or NaN.
            unanswered = total == 0
            bad = (np.abs(total - expected) > tolerance) & ~unanswered & ~np.isnan(total) & ~np.isnan(expected)
        for i in np.flatnonzero(bad & (problem == "")):
            shown = "1" if parent is None else f"{parent} = {expected[i]:.3g}"
            problem[i] = (f"vote fractions do not add up: the answers of {name} sum to {total[i]:.3g}, "
                          f"expected {shown} (tolerance {tolerance:g})")
    return problem


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
    if any(f"t01_smooth_or_features_a01_smooth{s}" in present for s in _GZ2_SUFFIXES) or \
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
    columns = _read_columns(path)
    class_col = class_label_column(columns)
    if class_col is None:
        raise ValueError(f"catalogue {path}: no class column (expected one of {', '.join(CLASS_COLUMNS)})")
    if id_column is not None:
        id_col = _id_column(KAGGLE, columns, path, id_column)  # the schema only matters without id_column
    else:
        id_col = next((c for c in CLASS_ID_COLUMNS if c in columns), None)
        if id_col is None:
            raise ValueError(f"class-label catalogue {path}: no id column; expected one of {', '.join(CLASS_ID_COLUMNS)} "
                             "(or pass --catalogue-id-column)")
    sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
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


def read_vote_catalogue(
    path: Path,
    rejects: list[Reject] | None = None,
    keep_ids: Collection[str] | None = None,
    id_column: str | None = None,
) -> tuple[str, dict[str, dict[str, float]]]:
    """(schema, {id -> {canonical column -> value}}) for a CSV, parquet or FITS catalogue.

    Values are the decision tree's `<question>_<answer>_fraction` columns, plus
    `<question>_total-votes` where the catalogue has vote counts. `keep_ids` keeps only those ids
    (a whole GZ2 or DECaLS catalogue is ~300k rows: filter to the subjects you have). Bad rows go
    to `rejects` (stage "votes", kind "row") and are counted in the log.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vote catalogue not found: {path}")
    columns = _read_columns(path)
    schema = detect_catalogue_schema(columns, path)
    id_col = _id_column(schema, columns, path, id_column)
    present = set(columns)
    totals: dict[str, list[str]] = {}
    if schema == DECALS:
        mapping, total_cols = _decals_mapping(present)
        totals = {k: [c] for k, c in total_cols.items()}
    elif schema == GZ2:
        suffix = next(s for s in _GZ2_SUFFIXES if f"t01_smooth_or_features_a01_smooth{s}" in present)
        mapping, totals = _gz2_mapping(present, suffix)
    else:
        tasks = _kaggle_tasks(present, path)
        mapping = _kaggle_mapping(tasks)
    skipped = [k for k in QUESTIONS if k not in mapping]
    if skipped:
        logger.info("vote catalogue %s (%s): no columns for question(s) %s", path, schema, ", ".join(skipped))
    if schema == KAGGLE:
        fraction_cols = [c for t in tasks for c in _kaggle_task_columns(t)]
    else:
        fraction_cols = sorted({c for answers in mapping.values() for terms in answers.values()
                                for term in terms for c in term})
    count_cols = sorted({c for cols in totals.values() for c in cols})
    keep = set(keep_ids) if keep_ids is not None else None
    sum_checks = _question_sums(schema, mapping, fraction_cols)

    result: dict[str, dict[str, float]] = {}
    bad_rows = 0
    row_offset = 0
    empty_ids = 0
    for frame in _read_chunks(path, [id_col, *fraction_cols, *count_cols], id_col):
        n = len(frame)
        ids = [normalise_id(v.decode() if isinstance(v, bytes) else v) for v in frame[id_col].tolist()]
        values: dict[str, np.ndarray] = {}
        problem = np.full(n, "", dtype=object)
        for col in fraction_cols + count_cols:
            arr, not_number = _numeric(frame, col)
            values[col] = arr
            with np.errstate(invalid="ignore"):
                if col in count_cols:
                    out_of_range = arr < 0
                else:
                    out_of_range = (arr < -_TOLERANCE) | (arr > 1 + _TOLERANCE)
            for i in np.flatnonzero((out_of_range | not_number) & (problem == "")):
                kind = "not a number" if not_number[i] else "out-of-range fraction"
                shown = frame[col].iloc[i] if not_number[i] else f"{arr[i]:g}"
                problem[i] = f"{kind}: {col}={shown}"
        sums = _sum_problems(sum_checks, values, n)
        problem = np.where(problem == "", sums, problem)
        fractions = _normalise_kaggle(values, n) if schema == KAGGLE else values
        canonical = _evaluate(mapping, fractions, n)
        for key, cols in totals.items():
            canonical[QUESTIONS[key].total_votes_column] = np.sum([values[c] for c in cols], axis=0)
        names = list(canonical)
        matrix = np.column_stack([canonical[c] for c in names]) if names else np.empty((n, 0))
        empty_ids += sum(1 for subject_key in ids if subject_key is None)
        for i, subject_key in enumerate(ids):
            if keep is not None and subject_key not in keep:
                continue
            reason = None
            if subject_key is None:
                reason = "no id: empty " + id_col
            elif problem[i]:
                reason = problem[i]
            elif subject_key in result:
                reason = f"duplicate id: {id_col}={subject_key} repeats an earlier row"
            if reason is not None:
                bad_rows += 1
                if rejects is not None:
                    rejects.append(Reject("votes", "row", subject_key or f"{path.name}:{row_offset + i + 1}",
                                          reason, str(path)))
                continue
            row = matrix[i]
            result[subject_key] = {c: float(v) for c, v in zip(names, row) if v == v}
        row_offset += n
    if row_offset and empty_ids == row_offset:
        raise ValueError(f"vote catalogue {path}: id column {id_col!r} is empty in all {row_offset} rows")
    if bad_rows:
        logger.warning("vote catalogue %s: %d row(s) rejected (out-of-range, non-numeric, answers not adding up, no id or "
                       "repeated id)",
                       path, bad_rows)
    logger.info("vote catalogue %s: schema %s, %d subjects with votes", path, schema, len(result))
    return schema, result
