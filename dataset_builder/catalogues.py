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
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from .catalogue_files import read_chunks, read_columns
from .catalogue_schemas import (
    DECALS,
    GZ2,
    GZ2_SUFFIXES,
    GZ2_TASKS,
    KAGGLE,
    VoteMapping,
    decals_mapping,
    detect_catalogue_schema,
    gz2_mapping,
    kaggle_mapping,
    kaggle_task_columns,
    kaggle_tasks,
    resolve_id_column,
)
from .decision_tree import QUESTIONS
from .records import Reject
from .talk import normalise_id

logger = logging.getLogger(__name__)

_TOLERANCE = 1e-6  # catalogue fractions are rounded: 1.0000001 is 1


def catalogue_id_column(path: Path, id_column: str | None = None) -> tuple[str, str]:
    """(schema, id column) of a catalogue, from its header alone; ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vote catalogue not found: {path}")
    columns = read_columns(path)
    schema = detect_catalogue_schema(columns, path)
    return schema, resolve_id_column(schema, columns, path, id_column)


# --- conversion ---------------------------------------------------------------------------------


def _numeric(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(float values, mask of cells that are present but not numbers)."""
    series = frame[column]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(series), dtype=bool)
    coerced = pd.to_numeric(series, errors="coerce")
    return coerced.to_numpy(dtype=float, na_value=np.nan), (series.notna() & coerced.isna()).to_numpy()


def _evaluate(mapping: VoteMapping, values: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
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
    for task in GZ2_TASKS:
        cols = kaggle_task_columns(task)
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


def _question_sums(schema: str, mapping: VoteMapping, columns: Collection[str]) -> list[tuple[str, list[str], str | None, float]]:
    """(question name, its answer columns, the column its sum must equal or None for 1, tolerance) to check."""
    present = set(columns)
    checks: list[tuple[str, list[str], str | None, float]] = []
    if schema == KAGGLE:
        for task, parent in _KAGGLE_PARENT.items():
            cols = kaggle_task_columns(task)
            if all(c in present for c in cols) and (parent is None or parent in present):
                checks.append((f"Class{task}", cols, parent, SUM_TOLERANCE))
    elif schema == GZ2:
        for task, (stem, answers) in GZ2_TASKS.items():
            for suffix in GZ2_SUFFIXES:
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
    columns = read_columns(path)
    schema = detect_catalogue_schema(columns, path)
    id_col = resolve_id_column(schema, columns, path, id_column)
    present = set(columns)
    totals: dict[str, list[str]] = {}
    if schema == DECALS:
        mapping, total_cols = decals_mapping(present)
        totals = {k: [c] for k, c in total_cols.items()}
    elif schema == GZ2:
        suffix = next(s for s in GZ2_SUFFIXES if f"t01_smooth_or_features_a01_smooth{s}" in present)
        mapping, totals = gz2_mapping(present, suffix)
    else:
        tasks = kaggle_tasks(present, path)
        mapping = kaggle_mapping(tasks)
    skipped = [k for k in QUESTIONS if k not in mapping]
    if skipped:
        logger.info("vote catalogue %s (%s): no columns for question(s) %s", path, schema, ", ".join(skipped))
    if schema == KAGGLE:
        fraction_cols = [c for t in tasks for c in kaggle_task_columns(t)]
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
    for frame in read_chunks(path, [id_col, *fraction_cols, *count_cols], id_col):
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
