"""The loopback Hub, exercised only through the real clients (huggingface_hub, transformers, datasets).

Every test gets its own repo (`hub_repo_id`) on the session-wide server (`hub_server`), and
checks what the client sees plus, where the point is the wire protocol (LFS routing, ETag
caching, Range resume), the requests the server recorded.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    HfFileSystem,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils.sha import git_hash

WEIGHTS = bytes(range(256)) * 40  # 10 KiB with NUL bytes: binary, so the Hub routes it through LFS
README = "---\nlicense: apache-2.0\n---\n# Loopback test repo\n"


@pytest.fixture
def api(hub_server) -> HfApi:
    return HfApi()  # endpoint and token come from HF_ENDPOINT / HF_TOKEN set by tests/conftest.py


@pytest.fixture
def model_repo(api: HfApi, hub_repo_id: str, tmp_path) -> str:
    """A model repo holding a small text file, a README and a binary (LFS) file under a folder."""
    folder = tmp_path / "upload"
    (folder / "weights").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 64}\n')
    (folder / "README.md").write_text(README)
    (folder / "weights" / "shard.bin").write_bytes(WEIGHTS)
    api.create_repo(hub_repo_id)
    api.upload_folder(repo_id=hub_repo_id, folder_path=folder, commit_message="Add files")
    return hub_repo_id


def test_endpoint_points_at_the_loopback_server(hub_server):
    from huggingface_hub import constants

    assert constants.ENDPOINT == hub_server.url
    assert hub_server.url.startswith("http://127.0.0.1:")


def test_create_repo_conflicts_on_repeat_unless_exist_ok(api, hub_repo_id):
    url = api.create_repo(hub_repo_id)
    assert url.repo_id == hub_repo_id

    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(hub_repo_id)
    assert conflict.value.response.status_code == 409

    assert api.create_repo(hub_repo_id, exist_ok=True).repo_id == hub_repo_id
    assert api.repo_exists(hub_repo_id)
    # Repo types are separate namespaces, as on the Hub.
    assert not api.repo_exists(hub_repo_id, repo_type="dataset")
    assert api.create_repo(hub_repo_id, repo_type="dataset").repo_type == "dataset"


def test_upload_folder_sends_small_text_inline_and_binary_through_lfs(api, model_repo, hub_server):
    files = sorted(api.list_repo_files(model_repo))
    assert files == [".gitattributes", "README.md", "config.json", "weights/shard.bin"]

    paths = ["config.json", "weights/shard.bin", "weights", "not/there.txt"]
    infos = {info.path: info for info in api.get_paths_info(model_repo, paths)}
    assert set(infos) == {"config.json", "weights/shard.bin", "weights"}  # missing paths are left out
    assert infos["config.json"].lfs is None
    assert infos["config.json"].blob_id == git_hash(b'{"hidden_size": 64}\n')
    assert infos["weights/shard.bin"].lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert infos["weights/shard.bin"].size == len(WEIGHTS)
    assert infos["weights"].tree_id  # folders are reported too

    # Exactly the binary went through the LFS batch + PUT route, with its sha256 as object id.
    def lfs_puts(content: bytes) -> list:
        return hub_server.requests_for("/" + hashlib.sha256(content).hexdigest(), method="PUT")

    assert [r.status for r in lfs_puts(WEIGHTS)] == [200]
    assert not lfs_puts(b'{"hidden_size": 64}\n')


def test_reupload_of_unchanged_files_makes_no_commit(api, model_repo, tmp_path):
    head_before = api.repo_info(model_repo).sha
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "config.json").write_text('{"hidden_size": 64}\n')
    info = api.upload_folder(repo_id=model_repo, folder_path=tmp_path / "again")
    # The client skips files whose oid the preupload answer reports unchanged.
    assert info.oid == head_before
    assert api.repo_info(model_repo).sha == head_before


def test_tree_lists_folders_recursively_and_404s_a_missing_folder(api, model_repo):
    top = {entry.path for entry in api.list_repo_tree(model_repo)}
    assert top == {".gitattributes", "README.md", "config.json", "weights"}
    nested = {entry.path for entry in api.list_repo_tree(model_repo, recursive=True)}
    assert nested == top | {"weights/shard.bin"}
    assert [entry.path for entry in api.list_repo_tree(model_repo, "weights")] == ["weights/shard.bin"]
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(model_repo, "no_such_folder"))


def test_download_sends_hub_metadata_headers(model_repo):
    lfs_meta = get_hf_file_metadata(hf_hub_url(model_repo, "weights/shard.bin"))
    assert lfs_meta.etag == hashlib.sha256(WEIGHTS).hexdigest()  # LFS: ETag is the sha256
    assert lfs_meta.size == len(WEIGHTS)
    assert lfs_meta.commit_hash == HfApi().repo_info(model_repo).sha

    text_meta = get_hf_file_metadata(hf_hub_url(model_repo, "config.json"))
    assert text_meta.etag == git_hash(b'{"hidden_size": 64}\n')  # regular file: git blob sha1


def test_second_download_is_served_from_the_etag_cache(model_repo, hub_server):
    first = hf_hub_download(model_repo, "weights/shard.bin")
    second = hf_hub_download(model_repo, "weights/shard.bin")

    assert first == second
    with open(first, "rb") as f:
        assert f.read() == WEIGHTS
    resolve_path = f"/{model_repo}/resolve/main/weights/shard.bin"
    assert len(hub_server.requests_for(resolve_path, method="HEAD")) == 2
    assert len(hub_server.requests_for(resolve_path, method="GET")) == 1  # the content crossed the wire once


def test_interrupted_download_resumes_with_a_range_request(model_repo, hub_server, monkeypatch):
    from huggingface_hub import constants

    # The client keeps only whole chunks of a broken stream (10 MiB by default): use 1 KiB ones so
    # that a 10 KiB file is enough to see it resume.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    hub_server.cut_next_download("weights/shard.bin", after_bytes=4096)

    path = hf_hub_download(model_repo, "weights/shard.bin", force_download=True)

    with open(path, "rb") as f:
        assert f.read() == WEIGHTS
    gets = hub_server.requests_for(f"/{model_repo}/resolve/main/weights/shard.bin", method="GET")
    assert [(r.range, r.status) for r in gets[-2:]] == [(None, 200), ("bytes=4096-", 206)]


def test_file_system_reads_a_byte_range(model_repo, hub_server):
    with HfFileSystem().open(f"{model_repo}/weights/shard.bin", "rb", block_size=64) as f:
        f.seek(1000)
        assert f.read(24) == WEIGHTS[1000:1024]
    ranged = [r for r in hub_server.requests_for(f"{model_repo}/resolve/main/weights/shard.bin") if r.range]
    assert ranged and all(r.status == 206 for r in ranged)


def test_snapshot_download_by_branch_and_by_commit(api, model_repo):
    first_commit = api.repo_info(model_repo).sha
    api.upload_file(repo_id=model_repo, path_or_fileobj=b'{"hidden_size": 128}\n', path_in_repo="config.json")
    api.delete_folder("weights", repo_id=model_repo)

    latest = snapshot_download(model_repo)
    assert sorted(os.listdir(latest)) == [".gitattributes", "README.md", "config.json"]
    with open(os.path.join(latest, "config.json")) as f:
        assert f.read() == '{"hidden_size": 128}\n'

    old = snapshot_download(model_repo, revision=first_commit)
    with open(os.path.join(old, "weights", "shard.bin"), "rb") as f:
        assert f.read() == WEIGHTS
    commits = api.list_repo_commits(model_repo)
    assert [c.title for c in commits][-1] == "initial commit"
    assert commits[0].commit_id == api.repo_info(model_repo).sha


def test_missing_things_raise_the_typed_client_errors(api, model_repo, hub_repo_id):
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(model_repo, "tokenizer.json")
    assert api.file_exists(model_repo, "config.json")
    assert not api.file_exists(model_repo, "tokenizer.json")
    assert not api.file_exists(hub_repo_id + "-absent", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(hub_repo_id + "-absent", "config.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(model_repo, "config.json", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        api.delete_file("tokenizer.json", repo_id=model_repo)


def test_commit_on_a_stale_parent_is_refused(api, model_repo):
    stale = api.repo_info(model_repo).sha
    api.upload_file(repo_id=model_repo, path_or_fileobj=b"one\n", path_in_repo="notes.txt")
    with pytest.raises(HfHubHTTPError) as refused:
        api.create_commit(
            model_repo,
            operations=[CommitOperationAdd("notes.txt", b"two\n")],
            commit_message="racing commit",
            parent_commit=stale,
        )
    assert refused.value.response.status_code == 412


def test_invalid_readme_metadata_is_rejected(api, hub_repo_id):
    api.create_repo(hub_repo_id)
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.upload_file(repo_id=hub_repo_id, path_or_fileobj=b"---\nlicense: [oops\n---\n", path_in_repo="README.md")


def test_hub_env_lets_a_subprocess_reach_the_same_server(hub_env, model_repo):
    script = (
        "import sys; from huggingface_hub import HfApi, hf_hub_download\n"
        "print(HfApi().whoami()['name'])\n"
        f"print(open(hf_hub_download({model_repo!r}, 'config.json')).read().strip())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **hub_env}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["local-user", '{"hidden_size": 64}']
    assert os.listdir(os.path.join(hub_env["HF_HOME"], "hub"))  # the subprocess used its own cache


def test_transformers_push_to_hub_then_from_pretrained(hub_repo_id, hub_server):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=1000,
    )
    model = LlamaForCausalLM(config)
    model.push_to_hub(hub_repo_id)

    loaded = AutoModelForCausalLM.from_pretrained(hub_repo_id)

    assert isinstance(loaded, LlamaForCausalLM)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    # transformers probed optional files and took the EntryNotFound answer as "absent".
    probes = [r for r in hub_server.requests_for("adapter_config.json") if hub_repo_id in r.path]
    assert probes and all(r.status == 404 for r in probes)


def test_datasets_push_two_configs_and_load_each(hub_repo_id):
    from datasets import Dataset, DatasetDict, load_dataset

    questions = DatasetDict(
        train=Dataset.from_dict({"galaxy_id": [1, 2, 3], "question": ["Is it round?", "Any arms?", "Edge-on?"]}),
        test=Dataset.from_dict({"galaxy_id": [4], "question": ["A bar?"]}),
    )
    labels = DatasetDict(train=Dataset.from_dict({"galaxy_id": [1, 2], "label": ["elliptical", "spiral"]}))
    questions.push_to_hub(hub_repo_id, config_name="questions")
    labels.push_to_hub(hub_repo_id, config_name="labels")

    loaded_questions = load_dataset(hub_repo_id, "questions")
    loaded_labels = load_dataset(hub_repo_id, "labels")

    assert loaded_questions["train"].to_dict() == questions["train"].to_dict()
    assert loaded_questions["test"].to_dict() == questions["test"].to_dict()
    assert list(loaded_labels) == ["train"]
    assert loaded_labels["train"].to_dict() == labels["train"].to_dict()


def test_datasets_image_column_round_trips_bytes(hub_repo_id):
    from datasets import Dataset, Features, Image, Value, load_dataset
    from PIL import Image as PILImage

    pngs = []
    for shade in (0, 128, 255):
        buffer = io.BytesIO()
        PILImage.new("RGB", (8, 8), (shade, 64, 255 - shade)).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    features = Features({"image": Image(), "name": Value("string")})
    images = Dataset.from_dict(
        {"image": [{"bytes": b, "path": f"g{i}.png"} for i, b in enumerate(pngs)], "name": ["a", "b", "c"]},
        features=features,
    )
    images.push_to_hub(hub_repo_id)

    loaded = load_dataset(hub_repo_id, split="train").cast_column("image", Image(decode=False))

    assert [row["image"]["bytes"] for row in loaded] == pngs
    assert loaded["name"] == ["a", "b", "c"]
