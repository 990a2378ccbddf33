"""`head_only_config`: galaxies without a description train the head, not the contrastive loss.

A synthetic build describes only its commented galaxies and drops near-duplicate descriptions; its decision_tree
config has the votes of every galaxy it keeps.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from gzllava.tower.arguments import parse_arguments
from gzllava.tower.data import TowerCollator, load_talk_instruct
from gzllava.tower.questions import HeadSchema

SCHEMA = HeadSchema.parse("gz2,bar,has-spiral-arms")


@pytest.fixture(scope="module")
def two_config_build(tmp_path_factory) -> Path:
    """A 120-subject synthetic build with the description and decision_tree configs (32 px images): the
    builder drops near-duplicate descriptions, so a few galaxies have decision_tree rows only."""
    from dataset_builder.cli import main

    out = tmp_path_factory.mktemp("gz-synthetic-two-configs") / "build"
    assert main(["build", "--synthetic", "120", "--image-size", "32", "--configs", "description,decision_tree",
                 "--output_dir", str(out)]) == 0
    return out


def _subjects(build: Path, config: str) -> list[str]:
    import datasets

    return list(dict.fromkeys(datasets.load_dataset(str(build), config, split="train")["subject_id"]))


def test_galaxies_without_a_description_are_added_after_the_described_ones_with_no_text(two_config_build, caplog):
    described = load_talk_instruct(str(two_config_build), "description", "train", SCHEMA, 16)
    with caplog.at_level(logging.INFO, logger="gzllava.tower.data"):
        table = load_talk_instruct(str(two_config_build), "description", "train", SCHEMA, 16,
                                   head_only_config="decision_tree")
    voted = load_talk_instruct(str(two_config_build), "decision_tree", "train", SCHEMA, 16)
    extra = [s for s in _subjects(two_config_build, "decision_tree") if s not in set(described.ids)]
    assert extra, "the synthetic build should have galaxies without a description"
    assert table.ids == described.ids + extra
    assert table.texts == described.texts + [None] * len(extra)
    assert all(isinstance(t, str) and t for t in described.texts)
    # the added galaxies' images and vote targets are the ones their decision_tree rows give
    rows = [voted.ids.index(s) for s in extra]
    n = len(described)
    assert torch.equal(table.images[n:], voted.images[rows])
    assert torch.equal(table.shares[n:], voted.shares[rows]) and torch.equal(table.reached[n:], voted.reached[rows])
    assert f"{len(described)} galaxies with a description row, {len(extra)} more from decision_tree" in caplog.text


def test_a_head_only_config_the_build_lacks_is_named(two_config_build):
    with pytest.raises(ValueError, match=r"no config 'conversation'; it has"):
        load_talk_instruct(str(two_config_build), "description", "train", SCHEMA, 16, head_only_config="conversation")


@pytest.fixture(scope="module")
def head_only_run(two_config_build, tiny_args, tmp_path_factory):
    """A prepared (not yet trained) tiny train_clip.py run on the build, head_only_config decision_tree."""
    from gzllava.tower.run import prepare_training

    args = tiny_args(tmp_path_factory.mktemp("head-only-run"), "--dataset_name", str(two_config_build),
                     "--morphology_weight", "1", "--head_questions", "gz2,bar,has-spiral-arms",
                     "--head_only_config", "decision_tree", "--dataset_eval_split", "none", "--head_dropout", "0")
    return prepare_training(*parse_arguments(args))


def test_the_collator_tokenises_only_described_galaxies_and_marks_them(head_only_run):
    table, collate = head_only_run.train_table, head_only_run.trainer.data_collator
    first_none = table.texts.index(None)
    index = [0, first_none, 1, len(table) - 1]  # described, head-only, described, head-only
    batch = collate([{"index": i} for i in index])
    assert table.texts[-1] is None and table.texts[0] != table.texts[1]
    assert batch["has_text"].tolist() == [True, False, True, False]
    assert batch["input_ids"].shape[0] == 2 and batch["text_ids"].tolist() == [0, 1]
    assert batch["pixel_values"].shape[0] == 4 and batch["shares"].shape[0] == 4
    only_head = collate([{"index": first_none}, {"index": len(table) - 1}])
    assert only_head["has_text"].tolist() == [False, False] and "input_ids" not in only_head
    described = collate([{"index": 0}, {"index": 1}])
    assert "has_text" not in described and described["input_ids"].shape[0] == 2  # all described: as before


def test_head_only_galaxies_stay_out_of_the_contrastive_loss(head_only_run, two_config_build):
    run = head_only_run
    table, model, train_collate = run.train_table, run.model.eval(), run.trainer.data_collator
    collate = TowerCollator(table, SCHEMA, train_collate.image_size, run.image_mean, run.image_std,
                            tokenizer=train_collate.tokenizer, max_length=train_collate.max_length)  # no augmentation
    assert None in table.texts and len(table) > len(_subjects(two_config_build, "description")) * 0.9
    mixed = [i for i, t in enumerate(table.texts) if t is not None][:3] + [table.texts.index(None)]
    with torch.no_grad():
        both = model(**collate([{"index": i} for i in mixed]))
        alone = model(**collate([{"index": i} for i in mixed[:3]]))
        head_only = model(**collate([{"index": mixed[3]}]))
    # the contrastive term is the described galaxies' own; the head's reads all four
    assert torch.allclose(both["contrastive_loss"], alone["contrastive_loss"], atol=1e-6)
    assert both["head_logits"].shape[0] == 4
    assert "contrastive_loss" not in head_only
    assert torch.allclose(head_only["loss"], head_only["morphology_loss"])
    run.trainer.train()
    assert np.isfinite(run.trainer.state.log_history[-1]["train_loss"])


def test_head_only_config_needs_the_head(tmp_path):
    with pytest.raises(ValueError, match="head_only_config 'decision_tree' adds galaxies for the head: it needs source "
                                         "talk_instruct and a morphology_weight above 0"):
        parse_arguments(["--output_dir", str(tmp_path), "--morphology_weight", "0",
                         "--head_only_config", "decision_tree"])
