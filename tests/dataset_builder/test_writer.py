"""Writer + card: the folder loads with `load_dataset(folder, config)` with the agreed schema."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dataset_builder.card import read_card_metadata, write_card
from dataset_builder.curate import split_for
from dataset_builder.decision_tree import vote_columns
from dataset_builder.instructions import rows_for
from dataset_builder.provenance import Provenance
from dataset_builder.records import Reject, Subject, Summary
from dataset_builder.writer import DatasetWriter, RejectLog, ShardedParquetWriter, read_rejects, row_features

VOTES = {
    "smooth-or-featured_smooth_fraction": 0.9,
    "smooth-or-featured_featured-or-disk_fraction": 0.07,
    "smooth-or-featured_artifact_fraction": 0.03,
    "how-rounded_completely_fraction": 0.6,
    "how-rounded_in-between_fraction": 0.3,
    "how-rounded_cigar-shaped_fraction": 0.1,
    "merging_merger_fraction": 0.1,
    "merging_tidal-debris_fraction": 0.0,
    "merging_both_fraction": 0.0,
    "merging_neither_fraction": 0.9,
}


def jpeg(colour=(200, 30, 30), size=24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def build_folder(folder: Path, n: int = 30, **limits) -> dict:
    writer = DatasetWriter(folder, row_features(vote_columns()), **limits)
    for i in range(n):
        subject = Subject(str(5000 + i), tags=["round"], votes=VOTES, image_bytes=jpeg((i * 8 % 255, 40, 90)),
                          source="synthetic", truth={"smooth-or-featured": "smooth"})
        summary = Summary(subject.subject_id, f"A smooth round galaxy number {i}, bright in the middle.",
                          ["smooth light profile"], "low", "template", "template-v1")
        for config in ("description", "decision_tree"):
            for row in rows_for(config, subject, summary)[0]:
                writer.write(config, split_for(subject.subject_id), row)
    counts = writer.close()
    provenance = Provenance(inputs=["test"], synthetic=True, builder_version="0", commit=None,
                            summariser="template", summariser_model="template-v1", split_fractions=(0.8, 0.1, 0.1))
    write_card(folder, counts, provenance, {"subjects": n})
    return counts


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("gz-talk-instruct")
    return folder, build_folder(folder, max_rows=7, row_group_rows=3)


def test_load_dataset_gives_the_agreed_schema_with_embedded_images(built):
    folder, counts = built
    dataset = datasets.load_dataset(str(folder), "decision_tree")
    assert set(dataset) == set(counts["decision_tree"])
    train = dataset["train"]
    assert train.features == row_features(vote_columns())
    assert isinstance(train.features["image"], datasets.Image)
    row = train[0]
    assert isinstance(row["image"], Image.Image) and row["image"].size == (24, 24)
    raw = train.cast_column("image", datasets.Image(decode=False))[0]["image"]
    assert raw["bytes"][:2] == b"\xff\xd8" and raw["path"] is None  # JPEG bytes in the parquet, no path
    assert row["messages"][0]["content"][0] == {"type": "image", "text": None}
    assert set(row["votes"]) == set(vote_columns()) and row["votes"]["bar_yes_fraction"] is None
    assert row["id"].startswith("decision_tree-") and row["question"] in {"smooth-or-featured", "how-rounded", "merging", "odd-feature", None}
    assert json.loads(row["truth"]) == {"smooth-or-featured": "smooth"}
    assert sum(len(split) for split in dataset.values()) == sum(counts["decision_tree"].values())


def test_shards_respect_the_row_limit_and_are_named_of_n(built):
    folder, counts = built
    for config, splits in counts.items():
        for split, rows in splits.items():
            files = sorted((folder / "data" / config).glob(f"{split}-*.parquet"))
            assert len(files) == -(-rows // 7)
            assert [f.name for f in files] == [f"{split}-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))]
            assert sum(pq.read_metadata(f).num_rows for f in files) == rows
            assert all(pq.read_metadata(f).num_rows <= 7 for f in files)
    assert not list(folder.rglob("*.tmp"))


def test_shards_roll_over_at_the_byte_limit(tmp_path):
    writer = ShardedParquetWriter(tmp_path, "train", row_features(vote_columns()), max_rows=1000, max_bytes=3000)
    subject = Subject("1", votes=VOTES, image_bytes=b"\xff\xd8" + b"x" * 1000, source="t")
    rows = rows_for("decision_tree", subject, None)[0]
    for row in rows:
        writer.write(row)
    files = writer.close()
    assert len(files) >= 2 and sum(pq.read_metadata(f).num_rows for f in files) == len(rows)


def test_card_yaml_is_valid_and_lists_configs_and_splits(built):
    folder, counts = built
    metadata = read_card_metadata(folder / "README.md")
    assert metadata["license"] == "cc0-1.0"
    assert "image-text-to-text" in metadata["task_categories"]
    configs = {c["config_name"]: c for c in metadata["configs"]}
    assert set(configs) == {"description", "decision_tree"}
    assert configs["description"].get("default") is True
    for name, config in configs.items():
        assert {f["split"] for f in config["data_files"]} == set(counts[name])
        assert all(f["path"] == f"data/{name}/{f['split']}-*" for f in config["data_files"])
    # datasets' own parser of the `configs:` block accepts it
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    parsed = MetadataConfigs.from_dataset_card_data(DatasetCardData(**metadata))
    assert set(parsed) == {"description", "decision_tree"}
    body = (folder / "README.md").read_text()
    for needed in ("## Provenance", "## Statistics", "## Citation", "Walmsley", "Willett", "Hart", "Zooniverse",
                   'load_dataset("org/gz-talk-instruct", "decision_tree")', "SFTTrainer"):
        assert needed in body


def test_talk_build_card_states_the_talk_licence(tmp_path):
    provenance = Provenance(inputs=["Talk export x.json"], synthetic=False, builder_version="0", commit="abc",
                            summariser="template", summariser_model=None, split_fractions=(0.8, 0.1, 0.1))
    write_card(tmp_path, {"description": {"train": 3}}, provenance, {"subjects": 3})
    metadata = read_card_metadata(tmp_path / "README.md")
    assert metadata["license"] == "other" and metadata["license_name"] == "zooniverse-user-agreement"
    assert "not** released under an open licence" in (tmp_path / "README.md").read_text()


def test_row_passes_through_trl_prepare_multimodal_messages(built):
    from trl.data_utils import prepare_multimodal_messages

    folder, _ = built
    for config in ("description", "decision_tree"):
        row = datasets.load_dataset(str(folder), config, split="train")[0]
        messages = prepare_multimodal_messages(row["messages"], [row["image"]])
        assert messages[0]["content"][0]["type"] == "image"
        assert messages[0]["content"][0]["image"] is row["image"]
        assert [m["role"] for m in messages] == [m["role"] for m in row["messages"]]


def test_reject_log_writes_jsonl_and_refuses_reasonless_rejects(tmp_path):
    log = RejectLog(tmp_path / "rejects.jsonl")
    log.add(Reject("image", "image", "42", "missing: no file", "x"))
    log.add(Reject("curate", "row", "description-1-0", "near duplicate of description-0-0 (estimated Jaccard 0.91)"))
    with pytest.raises(ValueError, match="no reason"):
        log.add(Reject("clean", "comment", "7", ""))
    log.close()
    assert [r.id for r in read_rejects(tmp_path / "rejects.jsonl")] == ["42", "description-1-0"]
    assert log.summary()["top_reasons"] == {"missing": 1, "near duplicate": 1}
