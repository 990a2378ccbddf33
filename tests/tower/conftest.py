"""Fixtures for the tower tests: a small synthetic gz-talk-instruct build (the builder itself) and tiny sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_RECIPE = str(REPO_ROOT / "recipes" / "tiny_cpu_clip.yaml")
# The tiny recipe shrunk further for tests: 32 px, patch 8, width 32, one step per epoch.
TINY_FLAGS = ["--image_size", "32", "--vision_hidden_size", "32", "--vision_layers", "1", "--vision_heads", "2",
              "--text_hidden_size", "32", "--text_layers", "1", "--projection_dim", "16", "--num_train_epochs", "1",
              "--per_device_train_batch_size", "16", "--logging_steps", "1", "--disable_tqdm", "true",
              "--crop_jitter", "1"]


@pytest.fixture(scope="session")
def synthetic_build(tmp_path_factory) -> Path:
    """A 40-subject synthetic build (description config, 32 px images) written by the dataset builder."""
    from dataset_builder.cli import main

    out = tmp_path_factory.mktemp("gz-synthetic-tower") / "build"
    assert main(["build", "--synthetic", "40", "--image-size", "32", "--configs", "description", "--output_dir", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_args(synthetic_build):
    """tiny_args(output_dir, *extra): train_clip.py arguments of a seconds-long run on the synthetic build."""
    def make(output_dir: Path, *extra: str) -> list[str]:
        return ["--config", TINY_RECIPE, "--dataset_name", str(synthetic_build), "--output_dir", str(output_dir),
                *TINY_FLAGS, *extra]
    return make
