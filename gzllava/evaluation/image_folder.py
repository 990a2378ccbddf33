"""A folder of labelled images as an evaluation set.

Labelled-image folders (like `../shared/data/gz_examples_decals/`) hold `labels.csv` with an
`image` column (path relative to the folder) and either the Galaxy Zoo website's tree indices
(`question_index`, `answer_index`, `answer_kind`) or decision-tree keys/labels (`question`,
`answer`). Several rows may label the same image.
"""

from __future__ import annotations

import csv
from pathlib import Path

from image_processing_gzllava import FITS_SUFFIXES

from dataset_builder.decision_tree import from_website_index

from .samples import (EvalSample, EvalSet, Skip, check_label, checked, decode_image, describe_image_error, is_fits_name,
                      seeded_subset, skip_reason)


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
            eval_set.skips.append(Skip(id=row_id, reason=skip_reason(err)))
            continue
        name = record["image"]
        if name in by_image:
            by_image[name].expert[question] = answer
            continue
        try:
            data = (folder / name).read_bytes()
            image = decode_image(data, name)
        except Exception as err:
            eval_set.skips.append(Skip(id=row_id, reason=f"unreadable image: {describe_image_error(err, name)}"))
            continue
        # A FITS cutout is kept decoded (its stretch is the costly part); JPEG/PNG stay encoded until a batch needs them.
        stored = image if is_fits_name(name) else data
        stem = name[: -len(next(s for s in FITS_SUFFIXES if name.lower().endswith(s)))] if is_fits_name(name) else name
        by_image[name] = EvalSample(id=Path(stem).stem, image_data=stored, expert={question: answer})
    eval_set.samples = seeded_subset(list(by_image.values()), max_samples, seed)
    return checked(eval_set)
