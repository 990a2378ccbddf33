"""Real-galaxy catalogues as evaluation sets: Kaggle cumulative votes and GZ1 classes, split by galaxy id."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import galaxy_image
from gzllava.evaluation.catalogue import GZ1_CLASS_ANSWERS, catalogue_answer_counts, load_catalogue
from gzllava.evaluation.eval_sets import load_eval_set
from gzllava.evaluation.morphology_metrics import is_confident, morphology_items
from gzllava.evaluation.samples import EmptyEvaluationSetError
from gzllava.splits import gz1_split_of, read_twins, split_of

KAGGLE_HEADER = ["", "GalaxyID", "Class1.1", "Class1.2", "Class1.3", "Class2.1", "Class2.2", "Class6.1", "Class6.2",
                 "Class7.1", "Class7.2", "Class7.3", *[f"Class8.{i}" for i in range(1, 8)]]


def _kaggle_row(galaxy_id: int, smooth: float, edge_on_of_featured: float = 0.0, odd: float = 0.1,
                round_of_smooth: float = 1.0) -> list:
    """Cumulative fractions as in the Kaggle file: each question's answers sum to the share that reached it."""
    featured = 1.0 - smooth
    return [0, galaxy_id, smooth, featured, 0.0, featured * edge_on_of_featured, featured * (1 - edge_on_of_featured),
            odd, 1 - odd, smooth * round_of_smooth, smooth * (1 - round_of_smooth), 0.0,
            odd, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # every odd volunteer saw a ring


def _ids_on_both_sides(n: int = 40) -> list[int]:
    ids = list(range(100000, 100000 + n))
    assert {split_of(i) for i in ids} == {"train", "test"}  # the fixture covers both sides
    return ids


def write_kaggle(root: Path, rows: list[list], images: list[int] | None = None, broken: tuple = ()) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(KAGGLE_HEADER)
        writer.writerows(rows)
    for galaxy_id in images if images is not None else [row[1] for row in rows]:
        path = root / "images" / f"{galaxy_id}.jpg"
        if galaxy_id in broken:
            path.write_bytes(b"not a jpeg")
        else:
            galaxy_image(galaxy_id % 97, size=16).save(path)
    return root / "labels.csv"


def test_kaggle_catalogue_test_side_with_per_question_majorities_and_shares(tmp_path):
    ids = _ids_on_both_sides()
    rows = [_kaggle_row(i, smooth=0.9 if k % 2 else 0.3, edge_on_of_featured=0.85) for k, i in enumerate(ids)]
    labels = write_kaggle(tmp_path / "gz2", rows)
    eval_set = load_catalogue(labels, tmp_path / "gz2" / "images", "GalaxyID", split="test")
    expected = {str(i) for i in ids if split_of(i) == "test"}
    assert {s.id for s in eval_set.samples} == expected and eval_set.kind == "catalogue (kaggle)"
    items = morphology_items(eval_set.samples)
    by_galaxy: dict[str, dict] = {}
    for item in items:
        by_galaxy.setdefault(eval_set.samples[item.sample_index].id, {})[item.question] = item
    smooth_id = next(str(i) for k, i in enumerate(ids) if k % 2 and str(i) in expected)
    featured_id = next(str(i) for k, i in enumerate(ids) if not k % 2 and str(i) in expected)
    # smooth 0.9 -> smooth, then how-rounded (all "completely") and the odd questions; never disk-edge-on
    assert by_galaxy[smooth_id]["smooth-or-featured"].answer == "smooth"
    assert by_galaxy[smooth_id]["how-rounded"].answer == "completely"
    assert "disk-edge-on" not in by_galaxy[smooth_id]
    # featured 0.7: Kaggle's cumulative 0.595 / 0.105 become the question's own shares 0.85 / 0.15
    edge_on = by_galaxy[featured_id]["disk-edge-on"]
    assert edge_on.answer == "yes" and edge_on.fractions == pytest.approx((0.85, 0.15))
    assert is_confident(edge_on) and not is_confident(by_galaxy[featured_id]["smooth-or-featured"])
    # anything odd 0.1 (all rings): odd-feature "none" with 0.9 of the votes; merging "neither"
    assert by_galaxy[featured_id]["odd-feature"].answer == "none"
    assert by_galaxy[featured_id]["merging"].answer == "neither"
    # the majority prior comes from the training side (validation: 10% of the non-test galaxies, held out)
    counts = catalogue_answer_counts(labels, "GalaxyID", "train")
    n_train = sum(1 for i in ids if split_of(i, validation_percent=10) == "train")
    assert sum(v for (q, _), v in counts.items() if q == "smooth-or-featured") == n_train
    validation = load_catalogue(labels, tmp_path / "gz2" / "images", "GalaxyID", split="validation")
    assert {s.id for s in validation.samples} == {str(i) for i in ids if split_of(i, validation_percent=10) == "validation"}
    assert not expected & {s.id for s in validation.samples}


def test_catalogue_images_missing_or_broken_are_counted_skips(tmp_path):
    ids = [i for i in _ids_on_both_sides() if split_of(i) == "test"][:3]
    labels = write_kaggle(tmp_path / "gz2", [_kaggle_row(i, 0.9) for i in ids], images=ids[1:], broken=(ids[2],))
    eval_set = load_catalogue(labels, tmp_path / "gz2" / "images", split="test")  # GalaxyID found by itself
    assert [s.id for s in eval_set.samples] == [str(ids[1])]
    reasons = {s.id: s.reason for s in eval_set.skips}
    assert reasons[str(ids[0])].startswith("unreadable image: no image file for id")
    assert reasons[str(ids[2])].startswith("unreadable image:") and eval_set.skip_summary()["bad_input"] == 2


def test_catalogue_bad_votes_rows_are_skips_and_bad_input_is_one_named_error(tmp_path):
    ids = [i for i in _ids_on_both_sides() if split_of(i) == "test"][:2]
    rows = [_kaggle_row(ids[0], 0.9), _kaggle_row(ids[1], 0.9)]
    rows[1][2] = 1.7  # a fraction above 1
    labels = write_kaggle(tmp_path / "gz2", rows)
    eval_set = load_catalogue(labels, tmp_path / "gz2" / "images")
    assert [s.id for s in eval_set.samples] == [str(ids[0])]
    assert any("out-of-range fraction: Class1.1=1.7" in s.reason for s in eval_set.skips)
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        load_catalogue(tmp_path / "nowhere.csv", tmp_path / "gz2" / "images")
    with pytest.raises(FileNotFoundError, match="image folder .*no-images"):
        load_catalogue(labels, tmp_path / "no-images")
    with pytest.raises(ValueError, match="id column 'objid' not found"):
        load_catalogue(labels, tmp_path / "gz2" / "images", id_column="objid")
    with pytest.raises(ValueError, match="--split 'val'"):
        load_catalogue(labels, tmp_path / "gz2" / "images", split="val")
    (tmp_path / "odd.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="odd.csv: unknown schema"):
        load_catalogue(tmp_path / "odd.csv", tmp_path / "gz2" / "images")
    with pytest.raises(EmptyEvaluationSetError, match="no usable samples"):  # both ids are test galaxies
        load_catalogue(labels, tmp_path / "gz2" / "images", split="train")


def test_gz1_classes_imply_answers_and_twins_take_the_gz2_side(tmp_path):
    root = tmp_path / "gz1"
    (root / "images").mkdir(parents=True)
    classes = ["elliptical", "edge_on", "clockwise_spiral", "anticlockwise_spiral", "merger", "dont_know", "blob"]
    objids = [str(587000000000000000 + k) for k in range(len(classes))]
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["objid", "image", "class", "class_name"])
        for k, (objid, name) in enumerate(zip(objids, classes)):
            writer.writerow([objid, f"images/{objid}.jpeg", k, name])
            galaxy_image(k, size=16).save(root / "images" / f"{objid}.jpeg", format="JPEG")
    # every galaxy a twin of a GZ2 id on the test side: all of them are test galaxies, whatever their own hash
    test_gz2 = [i for i in _ids_on_both_sides(200) if split_of(i) == "test"]
    with (root / "same_galaxy_in_gz2_kaggle_5000.csv").open("w") as handle:
        handle.write("gz1_objid,kaggle_galaxyid,max_corr_48px\n")
        handle.writelines(f"{o},{g},0.99\n" for o, g in zip(objids, test_gz2))
    eval_set = load_eval_set(catalogue=str(root / "labels.csv"), split="test")
    assert eval_set.kind == "catalogue (gz1-classes)"
    assert {s.id: s.expert for s in eval_set.samples} == {o: GZ1_CLASS_ANSWERS[c] for o, c in zip(objids, classes[:5])}
    reasons = {s.id.split(" ")[-1].strip("()"): s for s in eval_set.skips}
    assert not reasons[objids[5]].bad_input and reasons[objids[5]].reason.startswith("not scored")
    assert reasons[objids[6]].bad_input and "unknown GZ1 class 'blob'" in reasons[objids[6]].reason
    items = morphology_items(eval_set.samples)
    assert Counter(i.question for i in items) == {"smooth-or-featured": 4, "disk-edge-on": 3, "has-spiral-arms": 2,
                                                  "merging": 1}
    assert all(i.target_source == "expert" and not is_confident(i) for i in items)  # weak labels: no vote shares
    with pytest.raises(EmptyEvaluationSetError):  # nothing is left on the train side
        load_eval_set(catalogue=str(root / "labels.csv"), split="train")


def test_real_gz2_kaggle_and_gz1_test_sides(shared_data):
    gz2 = shared_data / "gz2_kaggle_5000"
    eval_set = load_catalogue(gz2 / "labels.csv", gz2 / "images", "GalaxyID", split="test", max_samples=200)
    assert len(eval_set.samples) == 200 and all(split_of(s.id) == "test" for s in eval_set.samples)
    items = morphology_items(eval_set.samples)
    assert {i.question for i in items} <= {"smooth-or-featured", "disk-edge-on", "how-rounded", "merging",
                                           "odd-feature"}
    assert Counter(i.question for i in items)["smooth-or-featured"] == 200
    gz1 = shared_data / "gz1_sdss"
    twins = read_twins(gz1 / "same_galaxy_in_gz2_kaggle_5000.csv")
    gz1_set = load_catalogue(gz1 / "labels.csv", split="test", max_samples=300)
    assert all(gz1_split_of(s.id, twins) == "test" for s in gz1_set.samples)
    assert all(split_of(twins[s.id]) == "test" for s in gz1_set.samples if s.id in twins)
    json.dumps(gz1_set.skip_summary())
