"""Class-label builds (one class per galaxy, like GZ1's table) as head targets, and several builds in one run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gzllava.tower.data import class_label_votes, load_talk_instruct
from gzllava.tower.questions import HeadSchema

CLASSES = ["elliptical", "edge_on", "clockwise_spiral", "anticlockwise_spiral", "merger"]


@pytest.fixture(scope="module")
def class_build(tmp_path_factory) -> Path:
    """A class-label catalogue (objid, class_name) of 60 galaxies built by the dataset builder."""
    from dataset_builder.build import BuildOptions, build

    root = tmp_path_factory.mktemp("class-build")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    ids = [str(5870000 + i) for i in range(60)]
    for galaxy in ids:
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(images / f"{galaxy}.jpg")
    lines = ["objid,class_name"] + [f"{galaxy},{CLASSES[i % len(CLASSES)]}" for i, galaxy in enumerate(ids)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    build(BuildOptions(output_dir=root / "out", catalogue=root / "labels.csv", images=images, progress=False,
                       configs=("description", "decision_tree")))
    return root / "out"


def _class_of(subject: str) -> str:
    return CLASSES[(int(subject) - 5870000) % len(CLASSES)]


def test_class_labels_become_one_hot_shares_of_the_questions_they_imply(class_build):
    schema = HeadSchema.parse("gz2,has-spiral-arms")
    table = load_talk_instruct(str(class_build), "description", "train", schema, stored_size=16)
    assert len(table) > 10
    offsets = dict(zip([q.key for q in schema.questions], schema.slices()))
    index = {q.key: i for i, q in enumerate(schema.questions)}
    for row, subject in enumerate(table.ids):
        kind = _class_of(subject)
        reached = {key for key, i in index.items() if table.reached[row, i]}
        shares = {key: table.shares[row, offsets[key]].tolist() for key in reached}
        if kind == "elliptical":
            assert reached == {"smooth-or-featured"} and shares["smooth-or-featured"] == [1.0, 0.0, 0.0]
        elif kind == "edge_on":
            assert reached == {"smooth-or-featured", "disk-edge-on"} and shares["disk-edge-on"] == [1.0, 0.0]
        elif kind.endswith("spiral"):
            assert reached == {"smooth-or-featured", "disk-edge-on", "has-spiral-arms"}
            assert shares["has-spiral-arms"] == [1.0, 0.0] and shares["disk-edge-on"] == [0.0, 1.0]
        else:  # a merger answers none of these questions: masked, not guessed
            assert reached == set()
    assert torch.isnan(table.counts).all()  # no vote counts: soft cross-entropy, not Dirichlet-multinomial


def test_vote_fractions_are_not_overwritten_and_vote_builds_give_no_class_labels(synthetic_build):
    schema = HeadSchema.parse("gz2")
    assert class_label_votes(str(synthetic_build), "train", schema) == {}


def test_several_builds_are_concatenated(class_build, synthetic_build):
    schema = HeadSchema.parse("gz2")
    one = load_talk_instruct(str(class_build), "description", "train", schema, 16)
    two = load_talk_instruct(str(synthetic_build), "description", "train", schema, 16)
    both = load_talk_instruct(f"{class_build},{synthetic_build}", "description", "train", schema, 16)
    assert both.ids == one.ids + two.ids and both.texts == one.texts + two.texts
    assert torch.equal(both.shares, torch.cat([one.shares, two.shares]))
    assert both.images.shape == (len(one) + len(two), 3, 16, 16)
    capped = load_talk_instruct(f"{class_build},{synthetic_build}", "description", "train", schema, 16, max_samples=5)
    assert capped.ids == one.ids[:5]  # max_samples caps the whole run, not each build


def test_train_clip_runs_on_a_vote_build_and_a_class_build_together(class_build, synthetic_build, tiny_args, tmp_path):
    from gzllava.tower.arguments import parse_arguments
    from gzllava.tower.run import prepare_training

    args = tiny_args(tmp_path / "run", "--morphology_weight", "1", "--head_questions", "gz2,has-spiral-arms",
                     "--dataset_eval_split", "none")
    args[args.index("--dataset_name") + 1] = f"{synthetic_build},{class_build}"
    run = prepare_training(*parse_arguments(args))
    reached = run.train_table.reached.any(0).tolist()
    assert reached == [True, True, True, True]  # smooth-or-featured, edge-on, how-rounded (synthetic), spiral arms
    run.trainer.train()
    assert np.isfinite(run.trainer.state.log_history[-1]["train_loss"])


def test_a_head_question_with_one_answer_in_training_is_named_in_a_warning(class_build, caplog):
    from gzllava.tower.run import warn_single_answer_questions

    schema = HeadSchema.parse("gz2,has-spiral-arms")
    table = load_talk_instruct(str(class_build), "description", "train", schema, 16)
    with caplog.at_level("WARNING", logger="gzllava.tower.run"):
        constant = warn_single_answer_questions(table, schema)
    # GZ1's classes only ever answer has-spiral-arms `yes` (ellipticals and edge-on disks never reach it), and
    # no class implies a roundness
    assert constant == ["how-rounded", "has-spiral-arms"]
    assert "head question has-spiral-arms" in caplog.text and "every one is 'yes'" in caplog.text
    assert "how-rounded" in caplog.text and "no galaxy reaches it" in caplog.text
