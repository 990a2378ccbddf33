"""The card's `dataset_info` (issue 8 follow-up): it describes the files written, and it is what makes a
rebuild into the same folder load its new rows from the same datasets cache.

datasets 5.2 names a local folder's cache after the folder name, the config and a hash of the card's
`configs` + `dataset_info` only; without `dataset_info` a rebuild (182 rows -> 325) still loaded 182.
"""

from __future__ import annotations

import os

import datasets
import pyarrow.parquet as pq
import pytest

from dataset_builder.build import BuildOptions, build
from dataset_builder.card import read_card_metadata, split_sentence, update_dataset_info
from dataset_builder.decision_tree import vote_columns
from dataset_builder.writer import row_features


def synthetic(out, n: int):
    return build(BuildOptions(output_dir=out, synthetic=n, image_size=32, configs=["decision_tree", "description"],
                              progress=False))


def rows(loaded: datasets.DatasetDict) -> int:
    return sum(len(split) for split in loaded.values())


def test_rebuild_into_the_same_folder_loads_the_new_rows_from_the_same_cache(tmp_path):
    out, cache = tmp_path / "out", str(tmp_path / "hf-datasets-cache")  # one cache, as HF_DATASETS_CACHE
    first = synthetic(out, 12)
    assert rows(datasets.load_dataset(str(out), "decision_tree", cache_dir=cache)) == sum(
        first.split_counts["decision_tree"].values())
    second = synthetic(out, 30)
    expected = sum(second.split_counts["decision_tree"].values())
    assert set(second.split_counts["decision_tree"]) == set(first.split_counts["decision_tree"])  # same configs
    assert expected != sum(first.split_counts["decision_tree"].values())
    assert rows(datasets.load_dataset(str(out), "decision_tree", cache_dir=cache)) == expected
    assert len(datasets.load_dataset(str(out), "description", split="train", cache_dir=cache)) == \
        second.split_counts["description"]["train"]


def test_dataset_info_matches_the_written_files(tmp_path):
    out = tmp_path / "out"
    result = synthetic(out, 12)
    metadata = read_card_metadata(out / "README.md")
    assert "Split by subject (a hash of the subject id)" in (out / "README.md").read_text()  # not a catalogue build
    infos = {entry["config_name"]: entry for entry in metadata["dataset_info"]}
    assert set(infos) == {entry["config_name"] for entry in metadata["configs"]} == set(result.split_counts)
    for config, info in infos.items():
        assert {s["name"]: s["num_examples"] for s in info["splits"]} == result.split_counts[config]
        files = sorted((out / "data" / config).glob("*.parquet"))
        assert info["download_size"] == sum(os.path.getsize(f) for f in files)
        assert info["dataset_size"] == sum(s["num_bytes"] for s in info["splits"])
        for split in info["splits"]:  # arrow bytes, as Dataset.data.nbytes (what push_to_hub records)
            tables = [pq.read_table(f) for f in files if f.name.startswith(split["name"] + "-")]
            assert split["num_bytes"] == sum(t.nbytes for t in tables) > 0
        assert datasets.Features._from_yaml_list(info["features"]) == row_features(vote_columns())


def test_update_dataset_info_follows_a_rewritten_shard_and_keeps_the_rest(tmp_path):
    out = tmp_path / "out"
    synthetic(out, 12)
    card = out / "README.md"
    before = card.read_text()
    shard = sorted((out / "data" / "decision_tree").glob("train-*.parquet"))[0]
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, 3), shard)  # as the privacy pass rewrites a shard
    update_dataset_info(out)
    metadata = read_card_metadata(card)
    info = next(e for e in metadata["dataset_info"] if e["config_name"] == "decision_tree")
    assert next(s for s in info["splits"] if s["name"] == "train")["num_examples"] == 3
    after = card.read_text()
    assert after.split("\n---\n", 1)[1] == before.split("\n---\n", 1)[1]  # the body is untouched
    assert metadata["configs"] == read_card_metadata_from_text(before)["configs"]
    assert len(datasets.load_dataset(str(out), "decision_tree", split="train",
                                     cache_dir=str(tmp_path / "cache"))) == 3


def read_card_metadata_from_text(text: str) -> dict:
    import yaml

    return yaml.safe_load(text[4 : text.index("\n---\n", 4)])


@pytest.mark.parametrize("rule", [None, "20% of the galaxies in test"])
def test_split_sentence_names_the_rule_used(rule):
    text = split_sentence(rule)
    if rule is None:
        assert text.startswith("Split by subject (a hash of the subject id)") and "gzllava" not in text
    else:
        assert "`gzllava.splits.split_of(id)`" in text and "GZ2 twin" in text and "hash" not in text
        assert "This build: 20% of the galaxies in test." in text
