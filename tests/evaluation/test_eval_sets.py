"""Loading evaluation sets: gz-talk-instruct splits and labelled-image folders, with counted skips."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import galaxy_image
from gzllava.evaluation.eval_sets import load_eval_set
from gzllava.evaluation.image_folder import load_image_folder
from gzllava.evaluation.samples import EmptyEvaluationSetError

HEADER = ["image", "survey", "question_index", "question_title", "question_text", "answer_kind", "answer_index",
          "answer_text"]


def write_folder(root: Path, rows: list[dict], images: dict[str, bytes | None]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            galaxy_image(len(name)).save(path)
        else:
            path.write_bytes(data)
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    return root


def _row(image, q, a, kind="answer"):
    return {"image": image, "question_index": q, "answer_index": a, "answer_kind": kind}


def test_image_folder_rows_map_through_the_website_tree(tmp_path):
    folder = write_folder(tmp_path / "f", [_row("images/a.jpg", 0, 1), _row("images/a.jpg", 2, 0),
                                           _row("images/b.jpg", 10, 1, "checkbox")],
                          {"images/a.jpg": None, "images/b.jpg": None})
    eval_set = load_image_folder(folder)
    assert [s.id for s in eval_set.samples] == ["a", "b"]
    assert eval_set.samples[0].expert == {"smooth-or-featured": "featured-or-disk", "bar": "yes"}
    assert eval_set.samples[1].expert == {"odd-feature": "ring"}
    assert eval_set.samples[0].image.mode == "RGB"


def test_bad_folder_rows_are_counted_skips_with_reasons(tmp_path):
    rows = [_row("good.jpg", 3, 0), _row("broken.jpg", 3, 1), _row("missing.jpg", 3, 1), _row("good.jpg", 11, 0),
            _row("good.jpg", 3, 7), _row("good.jpg", "three", 0), _row("good.jpg", 1, 0, "checkbox")]
    folder = write_folder(tmp_path / "f", rows, {"good.jpg": None, "broken.jpg": b"\xff\xd8 truncated"})
    eval_set = load_image_folder(folder)
    assert len(eval_set.samples) == 1 and eval_set.rows_read == 7
    reasons = [s.reason for s in eval_set.skips]
    assert sum(r.startswith("unreadable image") for r in reasons) == 2
    assert any("broken.jpg" in s.id for s in eval_set.skips)
    assert any("question_index 11 is outside the DECaLS tree" in r for r in reasons)
    assert any("answer_index 7 is outside question 3" in r for r in reasons)
    assert any("must be integers" in r for r in reasons)
    assert any("not 'checkbox' entries" in r for r in reasons)
    summary = eval_set.skip_summary()
    assert summary["total"] == 6 and summary["bad_input"] == 6
    assert summary["by_reason"] == {"unreadable image": 2, "bad label": 4}


def test_question_and_answer_columns_accept_keys_and_labels(tmp_path):
    folder = write_folder(tmp_path / "f", [{"image": "a.png", "question": "bar", "answer": "No bar"},
                                           {"image": "b.png", "question": "colour", "answer": "red"}],
                          {"a.png": None, "b.png": None})
    eval_set = load_image_folder(folder)
    assert eval_set.samples[0].expert == {"bar": "no"}
    assert eval_set.skips[0].reason == "bad label: unknown question 'colour'"


def test_an_empty_or_unusable_folder_raises_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        load_image_folder(tmp_path)
    folder = write_folder(tmp_path / "f", [_row("x.jpg", 0, 0)], {"x.jpg": b"nope"})
    with pytest.raises(EmptyEvaluationSetError, match=r"no usable samples .*unreadable image"):
        load_image_folder(folder)
    empty = write_folder(tmp_path / "g", [], {})
    (empty / "labels.csv").write_text(",".join(HEADER) + "\n")
    with pytest.raises(EmptyEvaluationSetError, match="0 rows read"):
        load_image_folder(empty)
    (empty / "labels.csv").write_text("file,label\n")
    with pytest.raises(ValueError, match="needs columns image"):
        load_image_folder(empty)


def test_instruct_decision_tree_split_skips_walks_bad_images_and_unknown_labels(instruct_folder):
    eval_set = load_eval_set(str(instruct_folder), "decision_tree", "test")
    summary = eval_set.skip_summary()
    assert summary["by_reason"] == {"not scored": 6, "unreadable image": 1, "bad label": 2}  # a walk per subject
    assert summary["bad_input"] == 3
    assert {r["id"] for r in summary["bad_input_rows"]} == {
        "decision_tree-broken-image", "decision_tree-unknown-question", "decision_tree-unknown-answer"}
    assert "the embedded image bytes" in next(r["reason"] for r in summary["bad_input_rows"]
                                              if r["id"] == "decision_tree-broken-image")
    sample = eval_set.samples[0]
    assert sample.question == "smooth-or-featured" and sample.answer == "featured-or-disk"
    assert sample.prompt and sample.reference.startswith("Features or disk")
    assert sample.votes["has-spiral-arms_yes_fraction"] == 0.95 and "bar_yes_fraction" in sample.votes
    assert all(v == v for v in sample.votes.values())  # nulls dropped, no NaN


def test_questions_keep_only_their_decision_tree_rows_before_the_subset_is_drawn(instruct_folder):
    every = load_eval_set(str(instruct_folder), "decision_tree", "test")
    bar_rows = [s.id for s in every.samples if s.question == "bar"]
    assert len(bar_rows) >= 2 and len(bar_rows) < len(every.samples)
    only_bar = load_eval_set(str(instruct_folder), "decision_tree", "test", questions=["bar"])
    assert [s.id for s in only_bar.samples] == bar_rows
    drawn = load_eval_set(str(instruct_folder), "decision_tree", "test", max_samples=2, questions=["bar"])
    assert len(drawn.samples) == 2 and {s.question for s in drawn.samples} == {"bar"}
    with pytest.raises(ValueError, match=r"--questions spiral-winding: no row of .* asks them \(its questions: bar"):
        load_eval_set(str(instruct_folder), "decision_tree", "test", questions=["spiral-winding"])


def test_instruct_description_split_has_references(instruct_folder):
    eval_set = load_eval_set(str(instruct_folder), "description", "test", max_samples=3)
    assert len(eval_set.samples) + len(eval_set.skips) == 3
    assert all(s.reference and s.question is None for s in eval_set.samples)


def test_a_gz_talk_instruct_source_needs_a_config_and_only_one_source(instruct_folder):
    with pytest.raises(ValueError, match="needs --config"):
        load_eval_set(str(instruct_folder), None)
    with pytest.raises(ValueError, match="exactly one"):
        load_eval_set(str(instruct_folder), "description", image_folder="x")


def test_images_stay_encoded_until_a_batch_needs_them(tmp_path):
    from gzllava.evaluation.samples import LazyImages

    folder = write_folder(tmp_path / "f", [_row("a.jpg", 0, 0), _row("b.jpg", 0, 1)], {"a.jpg": None, "b.jpg": None})
    eval_set = load_image_folder(folder)
    assert all(isinstance(s.image_data, bytes) for s in eval_set.samples)
    view = LazyImages(eval_set.samples, [1, 0, 1])
    assert len(view) == 3 and [im.size for im in view[1:]] == [(48, 48), (48, 48)]
    assert view[0].mode == "RGB"


def test_synthetic_truth_parameters_are_not_read_as_questions():
    """The generator's truth also holds parameters (kind, arm_count, ...): only decision-tree keys are labels."""
    import io
    import json

    from gzllava.evaluation.instruct_split import sample_from_row

    buffer = io.BytesIO()
    galaxy_image(0).save(buffer, format="PNG")
    row = {
        "id": "decision_tree-1-smooth-or-featured", "subject_id": "1", "image": {"bytes": buffer.getvalue(), "path": None},
        "messages": [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "Smooth?"}]},
                     {"role": "assistant", "content": [{"type": "text", "text": "Smooth."}]}],
        "question": "smooth-or-featured", "answer": "smooth", "votes": {},
        "truth": json.dumps({"smooth-or-featured": "smooth", "kind": "elliptical", "arm_count": 0, "odd-feature": ["ring"]}),
    }
    sample = sample_from_row(row, "decision_tree")
    assert sample.expert == {"smooth-or-featured": "smooth"}
    assert sample.question == "smooth-or-featured" and sample.answer == "smooth"


def _fits_cutout(path: Path) -> Path:
    """A 32 px g, r, z cube stored z first (BANDn names say so), with a red blob in the north and noise."""
    fits = pytest.importorskip("astropy.io.fits")
    import numpy as np

    rng = np.random.default_rng(7)
    cube = rng.normal(0.0, 0.02, (3, 32, 32)).astype(np.float32)  # g, r, z
    cube[:, 10:22, 10:22] += np.array([0.5, 1.0, 1.5], dtype=np.float32)[:, None, None]
    cube[2, 26:30, 4:8] += 3.0  # z only, near the top (FITS rows count up from the bottom)
    cube[1, 5, 5] = np.nan  # a masked pixel
    header = fits.Header([("BAND0", "z"), ("BAND1", "r"), ("BAND2", "g")])
    fits.PrimaryHDU(cube[::-1], header=header).writeto(path)
    return path


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz"])
def test_a_fits_cutout_gives_the_same_pixels_to_the_builder_the_evaluation_and_the_processor(tmp_path, gz_tiny, suffix):
    import io

    import numpy as np
    import torch
    from PIL import Image

    from dataset_builder.images import ImageStore
    from dataset_builder.records import Subject
    from processing_gzllava import chat_prompt

    _, processor = gz_tiny
    folder = tmp_path / "eval"
    folder.mkdir()
    cutout = _fits_cutout(folder / f"1234{suffix}")
    write_folder(folder, [_row(cutout.name, 0, 1)], {})
    eval_set = load_image_folder(folder)
    assert not eval_set.skips and [s.id for s in eval_set.samples] == ["1234"]  # the FITS is read, not skipped
    evaluation = eval_set.samples[0].image

    built = ImageStore(folder).load(Subject("1234"))
    assert isinstance(built, bytes), built
    builder = Image.open(io.BytesIO(built))
    inference = processor.load_image(str(cutout))

    pixels = np.asarray(inference)
    assert pixels.shape == (32, 32, 3) and pixels[2, 5, 0] > 200 and pixels[2, 5, 2] < 60  # red blob, north up
    assert np.array_equal(np.asarray(evaluation), pixels)
    assert np.array_equal(np.asarray(builder.convert("RGB")), pixels)
    text = [chat_prompt(processor)]
    model_inputs = [processor(images=[image], text=text, return_tensors="pt")["pixel_values"]
                    for image in (str(cutout), evaluation, built)]
    assert all(torch.equal(model_inputs[0], other) for other in model_inputs[1:])
