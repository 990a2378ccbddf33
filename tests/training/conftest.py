"""Fixtures for the training tests: a tiny gz-talk-instruct folder (builder schema) and argument helpers.

The folder is written by hand in the dataset builder's layout (`data/<config>/<split>-*.parquet` + README
YAML `configs:`), so these tests do not depend on the builder; the integration tests use the builder itself.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

import gzllava  # noqa: F401  (registers the Auto classes)
from gzllava.tiny import toy_galaxy
from gzllava.training import parse_arguments


REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_RECIPE = str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml")
# The tiny recipe's model, shrunk for tests: 32 px, patch 8 -> 16 image tokens; hidden 32 / 64.
TINY_TEST_SIZES = ["--tiny_image_size", "32", "--tiny_vision_hidden_size", "32", "--tiny_text_hidden_size", "64"]

TEXT_BLOCK = {"type": datasets.Value("string"), "text": datasets.Value("string")}
FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "subject_id": datasets.Value("string"),
    "image": datasets.Image(),
    "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.List(TEXT_BLOCK)}),
    "source": datasets.Value("string"),
})
ANSWERS = [
    "A smooth rounded galaxy.",
    "A barred spiral galaxy with two loose arms and an obvious bulge.",
    "An edge-on disk with a dust lane.",
    "A merger with tidal debris.",
]


def png_bytes(image) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def user(text: str, image: bool = False) -> dict:
    return {"role": "user", "content": ([{"type": "image", "text": None}] if image else []) + [{"type": "text", "text": text}]}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def instruct_rows(config: str, split: str, n: int, long_every: int = 0) -> list[dict]:
    """`n` rows in the builder's schema; every `long_every`-th has a ~400-token answer (over-long)."""
    rows = []
    for i in range(n):
        answer = ANSWERS[i % len(ANSWERS)]
        if long_every and i % long_every == long_every - 1:
            answer = " ".join([answer] * 40)
        if config == "conversation":
            messages = [user("Describe this galaxy.", image=True), assistant(answer),
                        user("Is there any sign of a bar?"), assistant("Bar." if i % 2 else "No bar.")]
        else:
            messages = [user("Describe this galaxy.", image=True), assistant(answer)]
        rows.append({"id": f"{config}-{split}-{i}", "subject_id": str(1000 + i), "source": "test",
                     "image": png_bytes(toy_galaxy(seed=i, size=32)), "messages": messages})
    return rows


def write_instruct_folder(folder: Path, splits: dict[str, dict[str, list[dict]]], features=FEATURES) -> Path:
    """A Hub dataset folder: data/<config>/<split>-00000-of-00001.parquet and a README with `configs:`."""
    yaml = ["---", "configs:"]
    for config, by_split in splits.items():
        yaml += [f"- config_name: {config}", "  data_files:"]
        for split, rows in by_split.items():
            target = folder / "data" / config / f"{split}-00000-of-00001.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(target))
            yaml += [f"  - split: {split}", f"    path: data/{config}/{split}-*"]
    (folder / "README.md").write_text("\n".join(yaml + ["---", "", "# tiny gz-talk-instruct for tests", ""]))
    return folder


@pytest.fixture(scope="session")
def instruct_folder(tmp_path_factory) -> Path:
    """description (train 16 with 2 over-long, validation 4) and conversation (train 8, validation 2)."""
    return write_instruct_folder(tmp_path_factory.mktemp("gz-talk-instruct"), {
        "description": {"train": instruct_rows("description", "train", 16, long_every=8),
                        "validation": instruct_rows("description", "validation", 4)},
        "conversation": {"train": instruct_rows("conversation", "train", 8),
                         "validation": instruct_rows("conversation", "validation", 2)},
    })


def tiny_flags(dataset: Path | str, output_dir: Path, *flags: str, recipe: str = TINY_RECIPE) -> list[str]:
    """train_sft.py's command line: the tiny recipe, the test sizes, then `flags` on top."""
    return [
        "--config", recipe, "--dataset_name", str(dataset), "--output_dir", str(output_dir),
        *TINY_TEST_SIZES, "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1",
        "--per_device_train_batch_size", "4", *flags,
    ]


def tiny_args(dataset: Path | str, output_dir: Path, *flags: str, recipe: str = TINY_RECIPE):
    """(script, training, model, gz) arguments of `tiny_flags`."""
    return parse_arguments(tiny_flags(dataset, output_dir, *flags, recipe=recipe))


def run_script(args: list[str], env: dict | None = None, cwd: Path = REPO_ROOT, timeout: int = 300, launcher=None):
    """Run train_sft.py (or a launcher around it) in a fresh process with one thread per process."""
    command = (launcher or [sys.executable]) + [str(REPO_ROOT / "train_sft.py"), *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


# Helpers as fixtures (pytest's importlib mode does not let test modules import this conftest).
@pytest.fixture(scope="session")
def make_args():
    return tiny_args


@pytest.fixture(scope="session")
def make_flags():
    return tiny_flags


@pytest.fixture(scope="session")
def make_rows():
    return instruct_rows


@pytest.fixture(scope="session")
def write_dataset():
    return write_instruct_folder


@pytest.fixture(scope="session")
def train_script():
    return run_script
