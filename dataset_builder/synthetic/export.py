"""Write a synthetic survey in the layouts of the real inputs, so it is ingested like them.

    out_dir/
      comments.json          Panoptes Talk comments export (a JSON list), incl. a few general-board chats
      tags.json              Panoptes Talk tags export (one record per hashtag)
      gz_decals_votes.csv    GZ DECaLS-style vote catalogue: subject_id, iauname, ra, dec, file_loc,
                             <q>_total-votes and <q>_<a>_fraction (empty = NaN: nobody reached it)
      images/<subject_id>.jpg
      truth.jsonl            {"subject_id", "truth"} per galaxy: the generator's true answers
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..decision_tree import DECALS_TREE
from . import generate_galaxy
from .talk import chat_comments

log = logging.getLogger(__name__)

CATALOGUE_NAME = "gz_decals_votes.csv"
JPEG_QUALITY = 90
CHAT_EVERY = 40  # one general-board chat thread per this many subjects


def catalogue_columns() -> list[str]:
    cols = ["subject_id", "iauname", "ra", "dec", "file_loc"]
    for q in DECALS_TREE:
        cols.append(q.total_votes_column)
        cols += q.columns()
    return cols


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes with full-resolution colour (4:4:4): at 64-128 px the default 4:2:0 chroma
    subsampling would blur away the sky's colour speckle that real (downsized) cutouts keep."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def _make_record(job: tuple[int, int, int]) -> dict:
    """Everything one galaxy contributes to the export (runs in worker processes)."""
    index, seed, size = job
    g = generate_galaxy(index, seed, size)
    row = {"subject_id": g.subject_id, "iauname": g.iauname, "ra": f"{g.ra:.6f}", "dec": f"{g.dec:.6f}",
           "file_loc": f"images/{g.subject_id}.jpg"}
    for column in catalogue_columns()[5:]:
        value = g.votes.get(column, math.nan)
        row[column] = "" if math.isnan(value) else (f"{int(value)}" if column.endswith("_total-votes") else f"{value:.4f}")
    comments = list(g.comments)
    if index % CHAT_EVERY == CHAT_EVERY - 1:
        comments += chat_comments(int(g.subject_id), np.random.default_rng([seed, index, 7]))
    return {"subject_id": g.subject_id, "jpeg": encode_jpeg(g.image), "row": row, "comments": comments,
            "tags": g.tags, "truth": g.truth}


def write_synthetic_export(n: int, out_dir: str | Path, seed: int = 0, size: int = 128, workers: int = 1) -> dict:
    """Generate `n` galaxies of survey `seed` and write them as a Talk export + vote catalogue + images.

    Deterministic: the same (n, seed, size) gives the same files for any number of workers.
    Returns the counts and the paths written.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    jobs = [(i, seed, size) for i in range(n)]
    comments: list[dict] = []
    tags: list[dict] = []
    catalogue = out / CATALOGUE_NAME
    truth_path = out / "truth.jsonl"
    pool = get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        records = pool.imap(_make_record, jobs, chunksize=16) if pool else map(_make_record, jobs)
        with catalogue.open("w", newline="") as cat_f, truth_path.open("w") as truth_f:
            writer = csv.DictWriter(cat_f, fieldnames=catalogue_columns())
            writer.writeheader()
            for rec in tqdm(records, total=n, desc="synthetic galaxies", unit="img"):
                (images / f"{rec['subject_id']}.jpg").write_bytes(rec["jpeg"])
                writer.writerow(rec["row"])
                truth_f.write(json.dumps({"subject_id": rec["subject_id"], "truth": rec["truth"]}) + "\n")
                comments += rec["comments"]
                tags += rec["tags"]
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    (out / "comments.json").write_text(json.dumps(comments, ensure_ascii=False, indent=0))
    (out / "tags.json").write_text(json.dumps(tags, ensure_ascii=False, indent=0))
    counts = {
        "subjects": n,
        "images": n,
        "comments": len(comments),
        "subject_comments": sum(c["comment_focus_type"] == "Subject" for c in comments),
        "tags": len(tags),
        "commented_subjects": len({c["comment_focus_id"] for c in comments if c["comment_focus_id"] is not None}),
        "paths": {"comments": str(out / "comments.json"), "tags": str(out / "tags.json"),
                  "catalogue": str(catalogue), "images": str(images), "truth": str(truth_path)},
    }
    log.info("wrote %d synthetic galaxies, %d comments, %d tags to %s", n, counts["comments"], len(tags), out)
    return counts
