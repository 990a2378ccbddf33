"""The vote catalogue schemas (GZ2, GZ DECaLS/DESI, Kaggle): recognised from their column names, and each
one's mapping of source columns onto the canonical questions of `decision_tree.py` (see catalogues.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from .decision_tree import QUESTIONS

GZ2, DECALS, KAGGLE = "gz2", "decals", "kaggle"

ID_COLUMNS: dict[str, tuple[str, ...]] = {
    GZ2: ("dr7objid", "objid", "specobjid", "subject_id"),
    DECALS: ("iauname", "dr8_id", "id_str", "subject_id"),
    KAGGLE: ("GalaxyID",),
}

# A canonical answer = the sum of terms; a term = the product of source columns (see catalogues.py).
Terms = list[tuple[str, ...]]
VoteMapping = dict[str, dict[str, Terms]]  # question key -> answer key -> terms


# --- GZ2 tree (GZ2 and Kaggle) ------------------------------------------------------------------

# Task number -> (GZ2 column stem, answer stems); Kaggle's Class<t>.<i> follow the same order.
GZ2_TASKS: dict[int, tuple[str, tuple[str, ...]]] = {
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
_GZ2_TREE: VoteMapping = {
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
GZ2_SUFFIXES = ("_debiased", "_weighted_fraction", "_fraction")


def _gz2_column(ref: str, suffix: str) -> str:
    task, answer = ref.split(".")
    stem, answers = GZ2_TASKS[int(task)]
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


def decals_mapping(columns: set[str]) -> tuple[VoteMapping, dict[str, str]]:
    mapping: VoteMapping = {}
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


def gz2_mapping(columns: set[str], suffix: str) -> tuple[VoteMapping, dict[str, list[str]]]:
    mapping: VoteMapping = {}
    totals: dict[str, list[str]] = {}
    for key, answers in _GZ2_TREE.items():
        refs = {ref for terms in answers.values() for term in terms for ref in term}
        # The file's preferred kind of fraction, else any other kind that has every column.
        for sfx in (suffix, *[s for s in GZ2_SUFFIXES if s != suffix]):
            if all(_gz2_column(ref, sfx) in columns for ref in refs):
                mapping[key] = {a: [tuple(_gz2_column(r, sfx) for r in term) for term in terms]
                                for a, terms in answers.items()}
                break
        else:
            continue
        task = _GZ2_TOTAL_TASK[key]
        counts = [f"{GZ2_TASKS[task][0]}_{a}_count" for a in GZ2_TASKS[task][1]]
        if all(c in columns for c in counts):
            totals[key] = counts
    return mapping, totals


def kaggle_task_columns(task: int) -> list[str]:
    return [f"Class{task}.{i}" for i in range(1, len(GZ2_TASKS[task][1]) + 1)]


def kaggle_tasks(present: set[str], path: Path) -> list[int]:
    """The Kaggle tasks (questions) whose columns are all in the file; a partly present task is an error.

    The Kaggle training file has all eleven; extracts often keep a few (the 5,000-galaxy sample here has
    1, 2, 6, 7 and 8). Questions of the missing tasks are simply not asked of these galaxies.
    """
    tasks = []
    for task in GZ2_TASKS:
        columns = kaggle_task_columns(task)
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


def kaggle_mapping(tasks: Collection[int]) -> VoteMapping:
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
    if any(f"t01_smooth_or_features_a01_smooth{s}" in present for s in GZ2_SUFFIXES):
        return GZ2
    if "smooth-or-featured_smooth_fraction" in present:
        return DECALS
    if "Class1.1" in present:
        return KAGGLE
    shown = ", ".join(list(columns)[:12]) + (" ..." if len(columns) > 12 else "")
    raise ValueError(
        f"vote catalogue {path}: unknown schema (columns: {shown or 'none'}). Expected one of: {_expected()}")


def resolve_id_column(schema: str, columns: Sequence[str], path: Path, id_column: str | None) -> str:
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
