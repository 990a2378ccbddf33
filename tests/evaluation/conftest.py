"""Fixtures of the evaluation tests: tiny models, a hand-made gz-talk-instruct folder, images.

The gz-talk-instruct folder is built with the dataset builder's own row code
(`dataset_builder.instructions.rows_for`) and row schema (`dataset_builder.writer.row_features`),
so the harness is tested on the format the builder really writes, plus a few broken rows.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tiny_llava

REPO_ROOT = Path(__file__).resolve().parents[2]
DECALS_EXAMPLES = REPO_ROOT / ".." / "shared" / "data" / "gz_examples_decals"


def galaxy_image(seed: int, kind: str = "spiral", size: int = 48) -> Image.Image:
    """A small synthetic galaxy-ish picture (the harness only needs distinct, decodable images)."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray((rng.random((size, size, 3)) * 40).astype("uint8"))
    draw = ImageDraw.Draw(image)
    c = size // 2
    if kind == "smooth":
        draw.ellipse([c - 10, c - 8, c + 10, c + 8], fill=(230, 200, 160))
    else:
        draw.ellipse([c - 5, c - 5, c + 5, c + 5], fill=(240, 230, 200))
        draw.arc([c - 16, c - 12, c + 16, c + 12], 0, 160, fill=(120, 150, 255), width=3)
        draw.arc([c - 16, c - 12, c + 16, c + 12], 180, 340, fill=(120, 150, 255), width=3)
    return image


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


SPIRAL_VOTES = {
    "smooth-or-featured_smooth_fraction": 0.1, "smooth-or-featured_featured-or-disk_fraction": 0.85,
    "smooth-or-featured_artifact_fraction": 0.05, "disk-edge-on_yes_fraction": 0.1, "disk-edge-on_no_fraction": 0.9,
    "bar_yes_fraction": 0.3, "bar_no_fraction": 0.7, "has-spiral-arms_yes_fraction": 0.95,
    "has-spiral-arms_no_fraction": 0.05,
}
SMOOTH_VOTES = {
    "smooth-or-featured_smooth_fraction": 0.9, "smooth-or-featured_featured-or-disk_fraction": 0.08,
    "smooth-or-featured_artifact_fraction": 0.02, "how-rounded_completely_fraction": 0.7,
    "how-rounded_in-between_fraction": 0.25, "how-rounded_cigar-shaped_fraction": 0.05,
    "merging_merger_fraction": 0.05, "merging_tidal-debris_fraction": 0.05, "merging_both_fraction": 0.0,
    "merging_neither_fraction": 0.9, "has-spiral-arms_no_fraction": 0.9, "has-spiral-arms_yes_fraction": 0.1,
}
SPIRAL_SUMMARY = "A face-on spiral galaxy with two blue spiral arms and a bright compact centre."
SMOOTH_SUMMARY = "A smooth, round elliptical galaxy with a bright centre and no visible features."


def _subjects(n: int, offset: int = 0):
    from dataset_builder.records import Subject, Summary

    out = []
    for k in range(n):
        spiral = k % 2 == 0
        sid = str(1000 + offset + k)
        subject = Subject(
            subject_id=sid, image_bytes=jpeg_bytes(galaxy_image(offset + k, "spiral" if spiral else "smooth")),
            votes=dict(SPIRAL_VOTES if spiral else SMOOTH_VOTES), catalogue="synthetic", source="synthetic",
            tags=["spiral"] if spiral else ["elliptical"],
        )
        summary = Summary(subject_id=sid, description=SPIRAL_SUMMARY if spiral else SMOOTH_SUMMARY,
                          visible_features=["spiral arms"] if spiral else ["smooth light"], uncertainty="low",
                          backend="template", model="none")
        out.append((subject, summary))
    return out


def write_instruct_folder(root: Path, n_test: int = 6, n_train: int = 4, broken: bool = True) -> Path:
    """data/<config>/<split>-00000-of-00001.parquet + README.md with the `configs:` YAML block."""
    import datasets

    from dataset_builder.decision_tree import vote_columns
    from dataset_builder.instructions import CONFIGS, rows_for
    from dataset_builder.writer import row_features

    features = row_features(vote_columns())
    yaml_configs = []
    for config in CONFIGS:
        files = []
        for split, n, offset in (("test", n_test, 0), ("train", n_train, 100)):
            rows = []
            for subject, summary in _subjects(n, offset):
                rows.extend(rows_for(config, subject, summary)[0])
            if broken and split == "test":
                bad_image = dict(rows[0], id=f"{config}-broken-image", image={"bytes": b"not a jpeg", "path": None})
                rows.append(bad_image)
                if config == "decision_tree":
                    rows.append(dict(rows[0], id="decision_tree-unknown-question", question="colour"))
                    rows.append(dict(rows[0], id="decision_tree-unknown-answer", answer="maybe"))
            path = root / "data" / config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
            files.append(f"    - split: {split}\n      path: data/{config}/{split}-*")
        yaml_configs.append(f"  - config_name: {config}\n    data_files:\n" + "\n".join(files))
    (root / "README.md").write_text("---\nconfigs:\n" + "\n".join(yaml_configs) + "\n---\n# test gz-talk-instruct\n")
    return root


def report_metrics(split="test", accuracy=0.75):
    """A small metrics.json content (one question, descriptions, a majority baseline) for the report and card tests."""
    per_q = {"bar": {"n": 4, "accuracy": accuracy, "macro_f1": 0.7, "brier": 0.2, "unparsed": 0,
                     "confusion": {"answers": ["yes", "no", "(unparsed)"], "matrix": [[2, 0, 0], [1, 1, 0]]}}}
    overall = {"n": 4, "accuracy": accuracy, "mean_macro_f1": 0.7, "brier": 0.2}
    morph = {"generation": {"per_question": per_q, "overall": overall, "parse_rate": 1.0},
             "likelihood": {"per_question": per_q, "overall": overall,
                            "reliability": {"bins": [], "ece": 0.1}},
             "timing": {"generation_items_per_s": 10.0, "likelihood_items_per_s": 20.0}}
    return {
        "model": "m", "baseline_model": None,
        "eval_set": {"name": "gz:decision_tree/" + split, "kind": "gz-talk-instruct", "samples": 4, "rows_read": 5,
                     "morphology_items": 4, "skips": {"total": 1, "bad_input": 1, "by_reason": {"bad label": 1}}},
        "settings": {"dataset_name": "org/gz-talk-instruct", "dataset_config": "decision_tree", "split": split, "batch_size": 8},
        "models": {"model": {"morphology": morph, "not_run": {"retrieval": "no references"},
                             "descriptions": {"n": 4, "bleu4": 0.2, "rouge_l": 0.4, "meteor": float("nan"),
                                              "cider": 0.5}}},
        "baselines": {"majority": {"per_question": {"bar": {**per_q["bar"], "accuracy": 0.5, "source": "train"}},
                                   "overall": {**overall, "accuracy": 0.5}}},
    }


@pytest.fixture(scope="session")
def instruct_folder(tmp_path_factory) -> Path:
    return write_instruct_folder(tmp_path_factory.mktemp("gz-talk-instruct"))


@pytest.fixture(scope="session")
def gz_tiny():
    """(model, processor): the project's tiny GZ-LLaVA."""
    from gzllava.tiny import tiny_model_and_processor

    return tiny_model_and_processor(seed=0)


@pytest.fixture(scope="session")
def stock_tiny():
    """(model, processor): a tiny stock llava-hf LlavaForConditionalGeneration."""
    from tiny_llava import tiny_stock_llava

    return tiny_stock_llava(seed=0)


def _saved(folder: Path, model_and_processor) -> Path:
    model, processor = model_and_processor
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def gz_tiny_folder(tmp_path_factory, gz_tiny) -> Path:
    """The tiny GZ-LLaVA saved as a model folder (config, weights, remote code, processor)."""
    return _saved(tmp_path_factory.mktemp("tiny-gz-llava"), gz_tiny)


@pytest.fixture(scope="session")
def stock_tiny_folder(tmp_path_factory, stock_tiny) -> Path:
    """A stock llava-hf checkpoint folder: the untuned-baseline slot, loaded by the Auto classes."""
    return _saved(tmp_path_factory.mktemp("tiny-stock-llava"), stock_tiny)


@pytest.fixture(scope="session")
def decals_examples() -> Path:
    if not (DECALS_EXAMPLES / "labels.csv").is_file():
        pytest.skip(f"real DECaLS examples not found at {DECALS_EXAMPLES}")
    return DECALS_EXAMPLES.resolve()
