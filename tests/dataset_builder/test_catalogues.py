"""Vote catalogues: GZ2 (Hart+2016), GZ DECaLS (DR1/2 and DR5/DESI answers) and the Kaggle challenge,
from CSV, parquet and FITS, mapped onto the decision tree's columns."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dataset_builder.catalogue_schemas import detect_catalogue_schema
from dataset_builder.catalogues import read_vote_catalogue
from dataset_builder.decision_tree import vote_columns

# The real Hart+2016 (gz2_hart16.csv) task/answer column stems, in catalogue order.
HART16 = {
    "t01_smooth_or_features": ["a01_smooth", "a02_features_or_disk", "a03_star_or_artifact"],
    "t02_edgeon": ["a04_yes", "a05_no"],
    "t03_bar": ["a06_bar", "a07_no_bar"],
    "t04_spiral": ["a08_spiral", "a09_no_spiral"],
    "t05_bulge_prominence": ["a10_no_bulge", "a11_just_noticeable", "a12_obvious", "a13_dominant"],
    "t06_odd": ["a14_yes", "a15_no"],
    "t07_rounded": ["a16_completely_round", "a17_in_between", "a18_cigar_shaped"],
    "t08_odd_feature": ["a19_ring", "a20_lens_or_arc", "a21_disturbed", "a22_irregular", "a23_other",
                        "a24_merger", "a38_dust_lane"],
    "t09_bulge_shape": ["a25_rounded", "a26_boxy", "a27_no_bulge"],
    "t10_arms_winding": ["a28_tight", "a29_medium", "a30_loose"],
    "t11_arms_number": ["a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell"],
}
GZ2_VALUES = {  # one galaxy's debiased fractions per task
    "t01_smooth_or_features": [0.2, 0.75, 0.05],
    "t02_edgeon": [0.1, 0.9],
    "t03_bar": [0.6, 0.4],
    "t04_spiral": [0.8, 0.2],
    "t05_bulge_prominence": [0.1, 0.2, 0.3, 0.4],
    "t06_odd": [0.4, 0.6],
    "t07_rounded": [0.5, 0.3, 0.2],
    "t08_odd_feature": [0.25, 0.0, 0.25, 0.0, 0.0, 0.5, 0.0],
    "t09_bulge_shape": [0.5, 0.25, 0.25],
    "t10_arms_winding": [0.2, 0.5, 0.3],
    "t11_arms_number": [0.1, 0.5, 0.2, 0.1, 0.0, 0.1],
}


def gz2_frame() -> pd.DataFrame:
    rows = []
    for objid, scale in ((587722981741363294, 1.0), (587722981741363295, 1.3), (587722981741363294, 1.0)):
        row = {"dr7objid": objid, "ra": 180.0, "dec": 1.0}
        for task, answers in HART16.items():
            for answer, value in zip(answers, GZ2_VALUES[task]):
                row[f"{task}_{answer}_debiased"] = value * scale  # scale 1.3 pushes a fraction out of range
                row[f"{task}_{answer}_fraction"] = 0.5  # must be ignored: debiased wins
                row[f"{task}_{answer}_count"] = 10
        rows.append(row)
    return pd.DataFrame(rows)


def test_gz2_hart16_debiased_mapping_and_row_rejects(tmp_path):
    path = tmp_path / "gz2_hart16.csv"
    gz2_frame().to_csv(path, index=False)
    rejects = []
    schema, votes = read_vote_catalogue(path, rejects=rejects)
    assert schema == "gz2"
    assert list(votes) == ["587722981741363294"], "ids are exact strings of the 64-bit objid"
    v = votes["587722981741363294"]
    assert v["smooth-or-featured_featured-or-disk_fraction"] == pytest.approx(0.75)
    assert v["bar_yes_fraction"] == pytest.approx(0.6)
    assert v["bulge-size_obvious_fraction"] == pytest.approx(0.5)  # just noticeable + obvious
    assert v["how-rounded_completely_fraction"] == pytest.approx(0.5)
    assert v["edge-on-bulge_none_fraction"] == pytest.approx(0.25)
    assert v["spiral-arm-count_2_fraction"] == pytest.approx(0.5)
    # Merging from the odd-feature question: odd yes (0.4) x merger (0.5), x disturbed (0.25).
    assert v["merging_merger_fraction"] == pytest.approx(0.2)
    assert v["merging_tidal-debris_fraction"] == pytest.approx(0.1)
    assert v["merging_neither_fraction"] == pytest.approx(0.7)
    assert v["merging_both_fraction"] == 0.0
    assert v["odd-feature_none_fraction"] == pytest.approx(0.6)
    assert v["odd-feature_ring_fraction"] == pytest.approx(0.1)
    assert v["smooth-or-featured_total-votes"] == 30
    assert set(c for c in v if c.endswith("_fraction")) == set(vote_columns())
    reasons = sorted(r.reason.split(":")[0] for r in rejects)
    assert reasons == ["duplicate id", "out-of-range fraction"]
    assert "t02_edgeon_a05_no_debiased=1.17" in next(
        r.reason for r in rejects if r.reason.startswith("out-of-range"))


def decals_dr5_frame() -> pd.DataFrame:
    nan = math.nan
    base = {
        "iauname": ["J000000.80+004200.0", "J000001.20-003000.5"],
        "smooth-or-featured_total-votes": [40, 35],
        "smooth-or-featured_smooth_fraction": [0.25, 0.9],
        "smooth-or-featured_featured-or-disk_fraction": [0.7, 0.1],
        "smooth-or-featured_artifact_fraction": [0.05, 0.0],
        "disk-edge-on_yes_fraction": [0.1, nan],  # second galaxy: nobody reached the question
        "disk-edge-on_no_fraction": [0.9, nan],
        "bar_strong_fraction": [0.2, nan],
        "bar_weak_fraction": [0.3, nan],
        "bar_no_fraction": [0.5, nan],
        "bulge-size_none_fraction": [0.1, nan],
        "bulge-size_small_fraction": [0.2, nan],
        "bulge-size_moderate_fraction": [0.3, nan],
        "bulge-size_large_fraction": [0.1, nan],
        "bulge-size_dominant_fraction": [0.3, nan],
        "how-rounded_round_fraction": [nan, 0.6],
        "how-rounded_in-between_fraction": [nan, 0.3],
        "how-rounded_cigar-shaped_fraction": [nan, 0.1],
        "merging_none_fraction": [0.6, 0.9],
        "merging_minor-disturbance_fraction": [0.2, 0.05],
        "merging_major-disturbance_fraction": [0.1, 0.05],
        "merging_merger_fraction": [0.1, 0.0],
    }
    return pd.DataFrame(base)


def test_decals_dr5_answers_map_to_the_tree(tmp_path):
    path = tmp_path / "gz_decals_volunteers_5.csv"
    decals_dr5_frame().to_csv(path, index=False)
    schema, votes = read_vote_catalogue(path)
    assert schema == "decals"
    first, second = votes["J000000.80+004200.0"], votes["J000001.20-003000.5"]
    assert first["bar_yes_fraction"] == pytest.approx(0.5) and first["bar_no_fraction"] == pytest.approx(0.5)
    assert first["bulge-size_no_fraction"] == pytest.approx(0.1)
    assert first["bulge-size_obvious_fraction"] == pytest.approx(0.6)
    assert first["bulge-size_dominant_fraction"] == pytest.approx(0.3)
    assert first["merging_tidal-debris_fraction"] == pytest.approx(0.3)
    assert first["merging_neither_fraction"] == pytest.approx(0.6)
    assert first["merging_both_fraction"] == 0.0
    assert first["smooth-or-featured_total-votes"] == 40
    assert "how-rounded_completely_fraction" not in first, "a question nobody answered is left out"
    assert second["how-rounded_completely_fraction"] == pytest.approx(0.6)
    assert not any(k.startswith(("disk-edge-on", "bar_")) for k in second)
    assert not any(k.startswith("spiral-winding") for k in first), "no columns, no values"


def test_decals_dr12_identity_columns_and_keep_ids(tmp_path):
    frame = pd.DataFrame({"iauname": ["J1", "J2", "J3"],
                          "smooth-or-featured_smooth_fraction": [0.1, 0.2, 0.3],
                          "smooth-or-featured_featured-or-disk_fraction": [0.9, 0.8, 0.7],
                          "smooth-or-featured_artifact_fraction": [0.0, 0.0, 0.0],
                          "bar_yes_fraction": [0.3, 0.2, 0.1], "bar_no_fraction": [0.7, 0.8, 0.9]})
    path = tmp_path / "dr12.csv"
    frame.to_csv(path, index=False)
    _, votes = read_vote_catalogue(path, keep_ids={"J2"})
    assert list(votes) == ["J2"]
    assert votes["J2"]["bar_yes_fraction"] == pytest.approx(0.2)


@pytest.mark.parametrize("fmt", ["parquet", "fits"])
def test_parquet_and_fits_read_like_csv(tmp_path, fmt):
    frame = decals_dr5_frame()
    csv_path = tmp_path / "c.csv"
    frame.to_csv(csv_path, index=False)
    if fmt == "parquet":
        path = tmp_path / "c.parquet"
        frame.to_parquet(path)
    else:
        from astropy.table import Table

        path = tmp_path / "c.fits"
        Table.from_pandas(frame).write(path, format="fits")
    expected = read_vote_catalogue(csv_path)
    got = read_vote_catalogue(path)
    assert got[0] == expected[0]
    assert got[1].keys() == expected[1].keys()
    for key in expected[1]:
        assert got[1][key] == pytest.approx(expected[1][key])


def test_kaggle_cumulative_fractions_are_normalised_per_question(tmp_path):
    sizes = {1: 3, 2: 2, 3: 2, 4: 2, 5: 4, 6: 2, 7: 3, 8: 7, 9: 3, 10: 3, 11: 6}
    row = {"GalaxyID": 100008}
    for task, size in sizes.items():
        for i in range(1, size + 1):
            row[f"Class{task}.{i}"] = 0.0
    row.update({"Class1.1": 0.3, "Class1.2": 0.6, "Class1.3": 0.1,
                "Class2.1": 0.1, "Class2.2": 0.5,  # cumulative: sums to Class1.2 = 0.6
                "Class3.1": 0.2, "Class3.2": 0.3,
                "Class6.1": 0.2, "Class6.2": 0.8,
                "Class8.6": 0.1, "Class8.1": 0.1,
                "Class7.1": 0.15, "Class7.2": 0.15})
    path = tmp_path / "training_solutions_rev1.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    schema, votes = read_vote_catalogue(path)
    assert schema == "kaggle"
    v = votes["100008"]
    assert v["disk-edge-on_yes_fraction"] == pytest.approx(1 / 6)
    assert v["bar_yes_fraction"] == pytest.approx(0.4)
    assert v["how-rounded_completely_fraction"] == pytest.approx(0.5)
    assert v["merging_merger_fraction"] == pytest.approx(0.2 * 0.5)
    assert v["odd-feature_none_fraction"] == pytest.approx(0.8)
    assert "spiral-winding_tight_fraction" not in v, "Class10 all zero: nobody was asked"


def test_unknown_schema_names_file_and_lists_expected(tmp_path):
    path = tmp_path / "mystery.csv"
    pd.DataFrame({"id": [1], "p_spiral": [0.5]}).to_csv(path, index=False)
    with pytest.raises(ValueError) as err:
        read_vote_catalogue(path)
    message = str(err.value)
    assert "mystery.csv" in message and "p_spiral" in message
    for expected in ("gz2", "decals", "kaggle", "t01_smooth_or_features_a01_smooth_debiased",
                     "smooth-or-featured_smooth_fraction", "Class1.1"):
        assert expected in message
    with pytest.raises(ValueError, match="unknown schema"):
        detect_catalogue_schema(["a", "b"], path)


def test_missing_id_column_is_named(tmp_path):
    frame = decals_dr5_frame().drop(columns=["iauname"])
    path = tmp_path / "noid.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError) as err:
        read_vote_catalogue(path)
    assert "noid.csv" in str(err.value) and "iauname" in str(err.value)


def test_non_numeric_cell_rejects_only_its_row(tmp_path):
    frame = decals_dr5_frame()
    frame["bar_no_fraction"] = frame["bar_no_fraction"].astype(object)
    frame.loc[0, "bar_no_fraction"] = "n/a?"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    rejects = []
    _, votes = read_vote_catalogue(path, rejects=rejects)
    assert list(votes) == ["J000001.20-003000.5"]
    assert rejects[0].id == "J000000.80+004200.0" and rejects[0].reason == "not a number: bar_no_fraction=n/a?"



# --- partial Kaggle extracts, answers that do not add up, class-label catalogues ----------------------


def kaggle_extract(rows: list[dict]) -> pd.DataFrame:
    """Questions 1, 2, 6, 7 and 8 only, like /work/shared/data/gz2_kaggle_5000/labels.csv."""
    out = []
    for row in rows:
        full = {"GalaxyID": row["GalaxyID"], "Class1.1": 0.6, "Class1.2": 0.3, "Class1.3": 0.1,
                "Class2.1": 0.0, "Class2.2": 0.3, "Class6.1": 0.1, "Class6.2": 0.9,
                "Class7.1": 0.3, "Class7.2": 0.3, "Class7.3": 0.0}
        full.update({f"Class8.{i}": 0.0 for i in range(1, 8)})
        full["Class8.7"] = 0.1
        full.update(row)
        out.append(full)
    return pd.DataFrame(out)


def test_kaggle_extract_with_five_questions_reads_only_those(tmp_path):
    path = tmp_path / "labels.csv"
    kaggle_extract([{"GalaxyID": 1}]).to_csv(path, index=False)
    schema, votes = read_vote_catalogue(path)
    v = votes["1"]
    assert schema == "kaggle"
    assert v["how-rounded_completely_fraction"] == pytest.approx(0.5) and v["odd-feature_dust-lane_fraction"] == pytest.approx(0.1)
    asked = {c.split("_")[0] for c in v}
    assert asked == {"smooth-or-featured", "disk-edge-on", "how-rounded", "merging", "odd-feature"}


def test_kaggle_question_with_only_some_answer_columns_is_named(tmp_path):
    path = tmp_path / "labels.csv"
    kaggle_extract([{"GalaxyID": 1}]).drop(columns=["Class7.3"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"labels.csv \(kaggle\): question 7 has only some.*Class7.3"):
        read_vote_catalogue(path)


def test_kaggle_answers_must_add_up_to_the_share_that_reached_the_question(tmp_path):
    path = tmp_path / "labels.csv"
    kaggle_extract([{"GalaxyID": 1},
                    {"GalaxyID": 2, "Class1.1": 0.9, "Class1.2": 0.9, "Class1.3": 0.9},  # 2.7
                    {"GalaxyID": 3, "Class7.1": 0.1, "Class7.2": 0.1},  # 0.2, but Class1.1 = 0.6 reached it
                    {"GalaxyID": 4, "Class1.1": 0.605, "Class1.2": 0.3}]).to_csv(path, index=False)  # rounding: fine
    rejects = []
    _, votes = read_vote_catalogue(path, rejects)
    assert sorted(votes) == ["1", "4"]
    reasons = {r.id: r.reason for r in rejects}
    assert reasons["2"].startswith("vote fractions do not add up: the answers of Class1 sum to 2.7, expected 1")
    assert "Class7 sum to 0.2, expected Class1.1 = 0.6" in reasons["3"]


def test_decals_single_choice_answers_must_sum_to_one_but_checkbox_options_need_not(tmp_path):
    frame = decals_dr5_frame()
    frame.loc[1, "smooth-or-featured_smooth_fraction"] = 0.9 * 3  # out of range: its own reason
    frame.loc[0, "merging_none_fraction"] = 0.9  # merging sums to 1.3
    path = tmp_path / "decals.csv"
    frame.to_csv(path, index=False)
    rejects = []
    _, votes = read_vote_catalogue(path, rejects)
    assert not votes
    reasons = {r.id: r.reason for r in rejects}
    assert "merging sum to 1.3, expected 1" in reasons["J000000.80+004200.0"]
    assert reasons["J000001.20-003000.5"].startswith("out-of-range fraction")

    ticked = tmp_path / "decals_dr12.csv"
    frame = decals_dr5_frame().iloc[:1].copy()
    for option, value in (("ring", 0.6), ("dust-lane", 0.7), ("none", 0.2)):  # checkbox: sums to 1.5, fine
        frame[f"odd-feature_{option}_fraction"] = value
    frame.to_csv(ticked, index=False)
    assert list(read_vote_catalogue(ticked)[1]) == ["J000000.80+004200.0"]


def test_gz2_debiased_fractions_get_the_wider_tolerance(tmp_path):
    frame = gz2_frame().iloc[:1].copy()
    frame["t01_smooth_or_features_a01_smooth_debiased"] = 0.3  # task 1 sums to 1.1: debiasing drift, kept
    path = tmp_path / "gz2.csv"
    frame.to_csv(path, index=False)
    assert list(read_vote_catalogue(path)[1]) == ["587722981741363294"]
    frame["t01_smooth_or_features_a01_smooth_debiased"] = 0.9  # 1.7: rejected
    frame.to_csv(path, index=False)
    rejects = []
    assert not read_vote_catalogue(path, rejects)[1]
    assert "t01_smooth_or_features sum to 1.7" in rejects[0].reason and "tolerance 0.25" in rejects[0].reason


def test_class_label_catalogue_maps_classes_to_answers_and_counts_the_rest(tmp_path):
    from dataset_builder.class_catalogue import class_label_column, read_class_catalogue

    path = tmp_path / "labels.csv"
    pd.DataFrame({"objid": ["1", "2", "2", "", "5", "6"], "image": ["images/x.jpeg"] * 6, "class": [0, 1, 1, 0, 5, 4],
                  "class_name": ["elliptical", "anticlockwise_spiral", "elliptical", "edge_on", "dont_know", ""]}
                 ).to_csv(path, index=False)
    assert class_label_column(["objid", "class", "class_name"]) == "class_name"
    assert class_label_column(["GalaxyID", "Class1.1", "class"]) is None  # a vote catalogue
    rejects = []
    id_col, class_col, labels = read_class_catalogue(path, rejects)
    assert (id_col, class_col) == ("objid", "class_name")
    assert labels == {"1": {"smooth-or-featured": "smooth"},
                      "2": {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "has-spiral-arms": "yes"}}
    reasons = sorted(r.reason.split(":")[0] for r in rejects)
    assert reasons == ["duplicate id", "no class", "no id", "no morphology"]
