"""Publishing: `--push org/gz-talk-instruct` to the loopback Hub, then `load_dataset` from the Hub id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from huggingface_hub import HfApi

from dataset_builder.build import BuildError, BuildOptions, build
from dataset_builder.push import push

REPO = Path(__file__).resolve().parents[2]
REPO_ID = "org/gz-talk-instruct"


@pytest.fixture(scope="module")
def pushed(hub_server, tmp_path_factory):
    out = tmp_path_factory.mktemp("gz-talk-instruct")
    result = build(BuildOptions(output_dir=out, synthetic=30, image_size=48, push=REPO_ID, progress=False))
    return out, result


def test_build_push_then_load_dataset_from_the_hub_id(pushed):
    out, result = pushed
    assert result.pushed_to == REPO_ID
    files = set(HfApi().list_repo_files(REPO_ID, repo_type="dataset"))
    assert "README.md" in files and "rejects.jsonl" in files and "reports/report.md" in files
    assert any(f.startswith("data/decision_tree/train-") and f.endswith(".parquet") for f in files)

    remote = datasets.load_dataset(REPO_ID, "decision_tree")
    local = datasets.load_dataset(str(out), "decision_tree")
    assert set(remote) == set(local)
    for split in local:
        assert remote[split].num_rows == local[split].num_rows
        assert remote[split]["id"] == local[split]["id"]
    row = remote["train"][0]
    assert row["image"].size == (48, 48)
    assert row["messages"][0]["content"][0] == {"type": "image", "text": None}
    card = Path(HfApi().hf_hub_download(REPO_ID, "README.md", repo_type="dataset")).read_text()
    assert 'load_dataset("org/gz-talk-instruct", "decision_tree")' in card


def test_push_command_uploads_a_built_folder(pushed, hub_env, hub_repo_id):
    out, _ = pushed
    env = {**os.environ, **hub_env, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "dataset_builder", "push", str(out), hub_repo_id],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert datasets.load_dataset(hub_repo_id, "description", split="train").num_rows > 0


def test_push_refuses_a_folder_that_is_not_a_build(tmp_path, hub_server):
    with pytest.raises(BuildError, match="not a built dataset folder: no README.md"):
        push(tmp_path, "org/never-created")
