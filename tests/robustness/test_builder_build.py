"""Bad inputs to `python -m dataset_builder build`: one case per class, each a named error (exit 2, one
line, before anything is built) or a counted reject; and a build that dies never costs the previous one.

Catalogue-only builds (issue 9) use a small Kaggle-layout catalogue with questions 1, 2, 6, 7 and 8
(like /work/shared/data/gz2_kaggle_5000) and 32 px images written here; the real samples are the
integration tests at the end (skipped without ../shared/data).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dataset_builder.build import BuildError, BuildOptions, build
from dataset_builder.catalogue_input import shared_splits
from dataset_builder.cli import main

REPO = Path(__file__).resolve().parents[2]
KAGGLE_QUESTIONS = {"smooth-or-featured", "disk-edge-on", "how-rounded", "merging", "odd-feature"}


def kaggle_row(galaxy_id: int) -> dict[str, float]:
    """Consistent cumulative Kaggle fractions for questions 1, 2, 6, 7, 8; smooth or featured by parity."""
    smooth, featured = (0.7, 0.25) if galaxy_id % 2 == 0 else (0.2, 0.75)
    row: dict[str, float] = {"GalaxyID": galaxy_id, "Class1.1": smooth, "Class1.2": featured, "Class1.3": 0.05,
                             "Class2.1": featured * 0.1, "Class2.2": featured * 0.9,
                             "Class6.1": 0.2, "Class6.2": 0.8,
                             "Class7.1": smooth * 0.5, "Class7.2": smooth * 0.4, "Class7.3": smooth * 0.1}
    row.update({f"Class8.{i}": 0.0 for i in range(1, 8)})
    row["Class8.1"] = 0.2  # ring: all of the odd-yes share
    return row


def write_kaggle(path: Path, ids, rows: dict[int, dict] | None = None) -> Path:
    frame = pd.DataFrame([{**kaggle_row(i), **(rows or {}).get(i, {})} for i in ids])
    frame.insert(0, "Unnamed: 0", range(len(frame)))  # the stray pandas index of the real file
    frame.to_csv(path, index=False)
    return path


def galaxy_jpeg(seed: int, size: int = 32) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(out, format="JPEG")
    return out.getvalue()


def write_images(folder: Path, ids) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in ids:
        (folder / f"{i}.jpg").write_bytes(galaxy_jpeg(i))
    return folder


@pytest.fixture
def kaggle(tmp_path):
    """(catalogue, image folder) of 12 galaxies with every image present."""
    ids = list(range(100000, 100012))
    return write_kaggle(tmp_path / "labels.csv", ids), write_images(tmp_path / "images", ids)


def cli_error(args: list[str], capsys) -> str:
    code = main(["-q", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def load(out: Path, config: str) -> datasets.DatasetDict:
    """load_dataset in the session's one datasets cache: the card's `dataset_info` keys the cache to the
    files of this build, not only to the folder's name (tests/dataset_builder/test_card_dataset_info.py)."""
    return datasets.load_dataset(str(out), config)


def texts(row: dict, role: str) -> list[str]:
    return [b["text"] for m in row["messages"] if m["role"] == role for b in m["content"] if b["type"] == "text"]


# --- the catalogue-only build ------------------------------------------------------------------------


def test_catalogue_only_build_has_rows_from_the_votes_split_by_gzllava_splits(kaggle, tmp_path):
    catalogue, images = kaggle
    out = tmp_path / "out"
    result = build(BuildOptions(output_dir=out, catalogue=catalogue, catalogue_id_column="GalaxyID", images=images,
                                progress=False))
    stats = result.stats
    assert stats["input_kind"] == "catalogue rows" and stats["input_records"] == 12 and stats["reconciled"]
    assert stats["subjects_in_output"] == 12 and sorted(result.split_counts) == ["decision_tree", "description"]
    split_of = shared_splits().split_of
    card = (out / "README.md").read_text()
    # the card names the fixed real-galaxy split, not the subject hash of Talk builds
    assert "Split by galaxy with `gzllava.splits.split_of(id)`" in card and "GZ2 twin" in card
    assert "hash of the subject id" not in card
    for config in ("decision_tree", "description"):
        loaded = load(out, config)
        assert set(loaded) <= {"train", "test"}
        for split, rows in loaded.items():
            for row in rows:
                assert split_of(row["subject_id"]) == split, (config, row["id"])
                answer = " ".join(texts(row, "assistant"))
                if config == "decision_tree":
                    assert row["question"] is None or row["question"] in KAGGLE_QUESTIONS
                    # the model's own estimate, never a claim that volunteers saw this image
                    assert "estimat" in answer or "expect" in answer, answer
                    assert "volunteers agree" not in answer.lower() and "chose" not in answer
                else:
                    assert answer and not any(w in answer.lower() for w in ("talk", "hashtag", "volunteer", "tagged"))


def test_catalogue_build_rejects_conversation_and_split_options(kaggle, tmp_path, capsys):
    catalogue, images = kaggle
    base = ["build", "--catalogue", str(catalogue), "--images", str(images), "--output_dir", str(tmp_path / "o")]
    assert "needs Talk comments" in cli_error([*base, "--configs", "conversation"], capsys)
    assert "fixed real-galaxy split" in cli_error([*base, "--split", "0.5,0.25,0.25"], capsys)
    assert "give --images" in cli_error(base[:3] + ["--output_dir", str(tmp_path / "o")], capsys)
    assert not (tmp_path / "o").exists()


# --- bad input: named errors before anything is built ------------------------------------------------


def test_catalogue_without_its_id_column_is_named_with_the_columns(kaggle, tmp_path, capsys):
    catalogue, images = kaggle
    err = cli_error(["build", "--catalogue", str(catalogue), "--catalogue-id-column", "objid", "--images",
                     str(images), "--output_dir", str(tmp_path / "o")], capsys)
    assert "labels.csv" in err and "'objid' not found" in err and "GalaxyID" in err, err
    pd.read_csv(catalogue).drop(columns=["GalaxyID"]).to_csv(tmp_path / "noid.csv", index=False)
    err = cli_error(["build", "--catalogue", str(tmp_path / "noid.csv"), "--images", str(images),
                     "--output_dir", str(tmp_path / "o")], capsys)
    assert "noid.csv" in err and "no id column" in err and "GalaxyID" in err, err
    assert not (tmp_path / "o").exists()


def test_ids_that_match_no_image_are_an_error_with_counts(kaggle, tmp_path, capsys):
    catalogue, _ = kaggle
    other = write_images(tmp_path / "other", [7, 8])
    err = cli_error(["build", "--catalogue", str(catalogue), "--images", str(other), "--output_dir", str(tmp_path / "o")], capsys)
    assert "none of the 12 catalogue ids" in err and "'GalaxyID'" in err and "(2 images" in err, err
    assert "100000" in err and "7, 8" in err  # examples of both sides
    assert not (tmp_path / "o").exists()


def test_an_empty_id_column_is_an_error(tmp_path, capsys):
    path = write_kaggle(tmp_path / "labels.csv", [1, 2, 3])
    frame = pd.read_csv(path)
    frame["GalaxyID"] = ""
    frame.to_csv(path, index=False)
    err = cli_error(["build", "--catalogue", str(path), "--images", str(write_images(tmp_path / "i", [1])),
                     "--output_dir", str(tmp_path / "o")], capsys)
    assert "labels.csv" in err and "'GalaxyID' is empty in all 3 rows" in err, err


def test_an_empty_class_column_is_an_error(tmp_path, capsys):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"objid": ["1", "2"], "class_name": ["", " "]}).to_csv(path, index=False)
    err = cli_error(["build", "--catalogue", str(path), "--images", str(write_images(tmp_path / "i", [1, 2])),
                     "--output_dir", str(tmp_path / "o")], capsys)
    assert "labels.csv" in err and "'class_name' is empty in all 2 rows" in err, err


def test_out_folder_holding_other_files_is_refused_and_left_alone(kaggle, tmp_path, capsys):
    catalogue, images = kaggle
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    err = cli_error(["build", "--catalogue", str(catalogue), "--images", str(images), "--output_dir", str(out)], capsys)
    assert "not empty and holds no previous build" in err and str(out) in err
    assert (out / "notes.txt").read_text() == "keep me"


# --- bad input: counted rejects ------------------------------------------------------------------------


def test_ids_without_an_image_are_counted_rejects(tmp_path):
    ids = list(range(200, 212))
    catalogue = write_kaggle(tmp_path / "labels.csv", ids)
    images = write_images(tmp_path / "images", ids[:9])
    result = build(BuildOptions(output_dir=tmp_path / "out", catalogue=catalogue, images=images, progress=False))
    stats = result.stats
    assert stats["input_records"] == 12 and stats["subjects_in_output"] == 9
    assert stats["input_records_rejected"] == 3 and stats["reconciled"]
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    missing = {r["id"] for r in rejects if r["stage"] == "image" and r["reason"].startswith("missing")}
    assert missing == {"209", "210", "211"}
    assert {r["id"] for r in rejects if r["kind"] == "subject"} == missing


def test_vote_fractions_that_do_not_add_up_are_rejected_with_the_reason(tmp_path):
    """Issue 8, 2.9: Class1 summing to 2.7 was accepted and answered "smooth (0.9)"."""
    ids = [300, 301, 302, 303]
    bad = {301: {"Class1.1": 0.9, "Class1.2": 0.9, "Class1.3": 0.9},  # 2.7
           303: {"Class2.1": 0.5, "Class2.2": 0.5}}  # sums to 1.0, but only Class1.2 = 0.75 reached it
    catalogue = write_kaggle(tmp_path / "labels.csv", ids, bad)
    result = build(BuildOptions(output_dir=tmp_path / "out", catalogue=catalogue,
                                images=write_images(tmp_path / "images", ids), progress=False))
    rejects = {json.loads(line)["id"]: json.loads(line)["reason"]
               for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()}
    assert "Class1 sum to 2.7, expected 1" in rejects["301"]
    assert "Class2 sum to 1, expected Class1.2 = 0.75" in rejects["303"]
    assert result.stats["input_records_rejected"] == 2 and result.stats["subjects_in_output"] == 2
    subjects = {row["subject_id"] for split in load(tmp_path / "out", "decision_tree").values()
                for row in split}
    assert subjects == {"300", "302"}


def _fits(path: Path, data: np.ndarray) -> None:
    from astropy.io import fits

    fits.PrimaryHDU(data.astype(np.float32)).writeto(path)


@pytest.mark.parametrize(("name", "write", "category"), [
    ("all-NaN FITS", lambda p: _fits(p.with_suffix(".fits"), np.full((32, 32), np.nan)), "blank"),
    ("all-inf FITS", lambda p: _fits(p.with_suffix(".fits"), np.full((3, 32, 32), np.inf)), "blank"),
    ("constant JPEG", lambda p: Image.new("RGB", (32, 32), (90, 90, 90)).save(p.with_suffix(".jpg")), "blank"),
    ("constant FITS", lambda p: _fits(p.with_suffix(".fits"), np.full((32, 32), 7.0)), "blank"),
    ("1x1 PNG", lambda p: Image.new("RGB", (1, 1), (255, 0, 0)).save(p.with_suffix(".png")), "too small"),
    ("8x40 JPEG", lambda p: Image.fromarray(np.arange(320, dtype=np.uint8).reshape(8, 40)).save(p.with_suffix(".jpg")),
     "too small"),
])
def test_unusable_images_are_counted_rejects_not_embedded(tmp_path, name, write, category):
    """Issue 8, 2.6: these images were embedded in the dataset (a blank or 1x1 training image)."""
    ids = [400, 401, 402]
    catalogue = write_kaggle(tmp_path / "labels.csv", ids)
    images = write_images(tmp_path / "images", [400, 402])
    write(images / "401")
    result = build(BuildOptions(output_dir=tmp_path / "out", catalogue=catalogue, images=images, progress=False))
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    image_rejects = [r for r in rejects if r["stage"] == "image"]
    assert [r["id"] for r in image_rejects] == ["401"], name
    assert image_rejects[0]["reason"].startswith(category) and "401." in image_rejects[0]["reason"], image_rejects
    assert result.stats["subjects_in_output"] == 2 and result.stats["reconciled"]


# --- a build that dies keeps the previous one ------------------------------------------------------------


class FailingStore:
    """ImageStore stand-in: serves the folder, fails at the `fail_at`-th image (an exception, or SIGKILL)."""

    def __init__(self, folder: Path, fail_at: int, kill: bool = False) -> None:
        self.folder, self.fail_at, self.kill, self.served = Path(folder), fail_at, kill, 0

    def resolve(self, subject):
        return str(self.folder / f"{subject.subject_id}.jpg")

    def load(self, subject):
        self.served += 1
        if self.served >= self.fail_at:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("disk full")
        return (self.folder / f"{subject.subject_id}.jpg").read_bytes()


def _rows(out: Path) -> int:
    return sum(split.num_rows for split in load(out, "decision_tree").values())


def test_a_failed_rebuild_leaves_the_previous_build_loadable(kaggle, tmp_path):
    """Issue 8, 2.4: the rebuild deleted data/ first, so a crash left the old card over partial shards."""
    catalogue, images = kaggle
    out = tmp_path / "out"
    first = build(BuildOptions(output_dir=out, catalogue=catalogue, images=images, progress=False))
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    options = BuildOptions(output_dir=out, catalogue=catalogue, images=images, progress=False, chunk_size=3,
                           image_threads=1, shard_rows=2)
    with pytest.raises(RuntimeError, match="disk full"):
        build(options, image_store=FailingStore(images, fail_at=8))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert _rows(out) == first.split_counts["decision_tree"].get("train", 0) + first.split_counts["decision_tree"].get("test", 0)
    assert not list(tmp_path.glob(".out.*")), "the unfinished build is cleaned up"


@pytest.mark.integration
def test_a_rebuild_killed_with_sigkill_leaves_the_previous_build_loadable(kaggle, tmp_path):
    catalogue, images = kaggle
    out = tmp_path / "out"
    first = build(BuildOptions(output_dir=out, catalogue=catalogue, images=images, progress=False)).rows
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from test_builder_build import FailingStore
        from dataset_builder.build import BuildOptions, build
        options = BuildOptions(output_dir=Path({str(out)!r}), catalogue=Path({str(catalogue)!r}),
                               images=Path({str(images)!r}), progress=False, chunk_size=3, image_threads=1, shard_rows=2)
        build(options, image_store=FailingStore(Path({str(images)!r}), fail_at=8, kill=True))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (tmp_path / ".out.building").is_dir(), "killed mid-build: the staging folder is left behind"
    loaded_rows = sum(load(out, c)[s].num_rows for c in ("decision_tree", "description")
                      for s in load(out, c))
    assert loaded_rows == first
    again = build(BuildOptions(output_dir=out, catalogue=catalogue, images=images, progress=False))
    assert again.rows == first and not (tmp_path / ".out.building").exists()


# --- class-label catalogues ----------------------------------------------------------------------------


def test_class_label_catalogue_builds_answers_without_fractions(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"objid": ["11", "12", "13", "14", "15"],
                  "class_name": ["elliptical", "clockwise_spiral", "dont_know", "pancake", "edge_on"]}).to_csv(path, index=False)
    result = build(BuildOptions(output_dir=tmp_path / "out", catalogue=path, images=write_images(tmp_path / "i", range(11, 16)),
                                progress=False))
    assert result.stats["input_records"] == 5 and result.stats["input_records_rejected"] == 2
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert any("no morphology: class 'dont_know'" in r for r in reasons)
    assert any("unknown class: class_name='pancake'" in r for r in reasons)
    rows = [row for split in load(tmp_path / "out", "decision_tree").values() for row in split]
    answers = {(r["subject_id"], r["question"]): r["answer"] for r in rows if r["question"]}
    assert answers[("11", "smooth-or-featured")] == "smooth"
    assert answers[("12", "has-spiral-arms")] == "yes" and answers[("15", "disk-edge-on")] == "yes"
    assert all(r["answer_fraction"] is None and all(v is None for v in r["votes"].values()) for r in rows)
    assert "class-label catalogue" in (tmp_path / "out" / "README.md").read_text()


# --- the real samples ------------------------------------------------------------------------------------


def _real_build(args: list[str], out: Path) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dataset_builder", "-q", "build", *args, "--output_dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "build_stats.json").read_text()), time.perf_counter() - start


@pytest.mark.integration
def test_real_gz2_kaggle_sample_builds_end_to_end(shared_data, tmp_path):
    folder = shared_data / "gz2_kaggle_5000"
    stats, _ = _real_build(["--catalogue", str(folder / "labels.csv"), "--catalogue-id-column", "GalaxyID",
                            "--images", str(folder / "images")], tmp_path / "gz2")
    assert stats["input_records"] == 5000 and stats["subjects_in_output"] == 5000 and stats["reconciled"]
    tree = load(tmp_path / "gz2", "decision_tree")
    assert set(tree) == {"train", "test"}
    split_of = shared_splits().split_of
    test_ids = set(tree["test"]["subject_id"])
    assert test_ids and all(split_of(i) == "test" for i in test_ids)
    assert set(tree["train"]["question"]) - {None} <= KAGGLE_QUESTIONS


@pytest.mark.integration
def test_real_gz1_class_labels_build_end_to_end_with_twins_on_one_side(shared_data, tmp_path):
    folder = shared_data / "gz1_sdss"
    stats, _ = _real_build(["--catalogue", str(folder / "labels.csv"), "--catalogue-id-column", "objid",
                            "--images", str(folder / "images")], tmp_path / "gz1")
    assert stats["input_records"] == 6631 and stats["input_records_rejected"] == 56  # the dont_know class
    assert stats["subjects_in_output"] == 6575 and stats["reconciled"]
    splits = shared_splits()
    twins = splits.read_twins(folder / "same_galaxy_in_gz2_kaggle_5000.csv")
    description = load(tmp_path / "gz1", "description")
    side = {i: s for s, rows in description.items() for i in rows["subject_id"]}
    moved = [i for i in twins if i in side and splits.split_of(i) != splits.split_of(twins[i])]
    assert all(side[i] == splits.split_of(twins[i]) for i in twins if i in side)
    assert moved, "some twins sit on another side than their own id would give: the twin rule is exercised"


def test_staging_folder_is_beside_the_resolved_out_folder(tmp_path, monkeypatch):
    from dataset_builder.staging import StagedFolder

    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    staged = StagedFolder(Path("."))
    assert staged.path == tmp_path / ".a.building" and staged.previous == tmp_path / ".a.previous"
