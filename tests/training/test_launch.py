"""The documented commands, run as documented: 2-rank DDP on CPU, and a push to the (loopback) Hub that users load.

Both use the dataset builder's own output (`python -m dataset_builder build --synthetic ...`): the real path.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

from gzllava.tiny import toy_galaxy
from gzllava.training.callbacks import RANK_CHECKSUMS_FILE


REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def builder_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("builder") / "gz-talk-instruct-synthetic"
    result = subprocess.run(
        [sys.executable, "-m", "dataset_builder", "build", "--synthetic", "24", "--image-size", "48", "--output_dir", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_two_process_ddp_on_cpu_ends_with_identical_ranks(tmp_path, builder_dataset, make_flags, train_script):
    """README: `accelerate launch --config_file accelerate_configs/cpu_ddp.yaml train_sft.py --config recipes/tiny_cpu_align.yaml`."""
    out = tmp_path / "ddp"
    launcher = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
                str(REPO_ROOT / "accelerate_configs" / "cpu_ddp.yaml")]
    result = train_script(make_flags(builder_dataset, out, "--max_steps", "4", "--learning_rate", "0.01"),
                          launcher=launcher)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((out / RANK_CHECKSUMS_FILE).read_text())
    assert report["world_size"] == 2 and len(set(report["checksums"])) == 1 and report["identical"]
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["training"]["world_size"] == 2
    # The ranks agree on weights that did move: the projector is no longer the composed one.
    from gzllava.tiny import tiny_model_and_processor

    initial, _ = tiny_model_and_processor(image_size=32, vision_hidden_size=32, text_hidden_size=64,
                                          image_standardization=True)
    trained = load_file(out / "final" / "model.safetensors")
    assert not (trained["multi_modal_projector.linear_1.weight"] == initial.model.multi_modal_projector.linear_1.weight).all()


USER_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    # Only the remote code uploaded with the model may define it: drop this project from the import path.
    repo = {repo!r}
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != repo]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "") + repr(f)]
    for name in ("modeling_gzllava", "processing_gzllava", "gzllava"):
        assert importlib.util.find_spec(name) is None, name

    from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline

    repo_id, image = sys.argv[1], sys.argv[2]
    model = AutoModelForImageTextToText.from_pretrained(repo_id, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True)
    described = pipeline("image-to-text", model=repo_id, trust_remote_code=True)(image, generate_kwargs={{"max_new_tokens": 4}})
    chat = [{{"role": "user", "content": [{{"type": "image", "url": image}}, {{"type": "text", "text": "Is there a bar?"}}]}}]
    answered = pipeline("image-text-to-text", model=repo_id, trust_remote_code=True)(text=chat, max_new_tokens=4)
    print(json.dumps({{"model": type(model).__module__, "processor": type(processor).__name__,
                      "described": described[0]["generated_text"], "answered": str(answered[0]["generated_text"])}}))
    """
)


def test_push_to_hub_then_the_users_calls_work(tmp_path, builder_dataset, make_flags, train_script, hub_server, hub_env):
    result = train_script(
        make_flags(builder_dataset, tmp_path / "run", "--max_steps", "2", "--push_to_hub", "true",
                   "--hub_model_id", "org/gz-llava"),
        env=hub_env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Model pushed to org/gz-llava" in result.stdout
    # Only the final folder was uploaded, not the checkpoints.
    from huggingface_hub import HfApi

    files = set(HfApi(endpoint=hub_server.url).list_repo_files("org/gz-llava"))
    assert {"config.json", "model.safetensors", "modeling_gzllava.py", "README.md", "training_curve.png"} <= files
    assert not any(name.startswith("checkpoint-") for name in files)

    image = tmp_path / "galaxy.png"
    toy_galaxy(size=48).save(image)
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT.format(repo=str(REPO_ROOT)))
    env = {**os.environ, **hub_env}
    env.pop("PYTHONPATH", None)
    user = subprocess.run([sys.executable, str(script), "org/gz-llava", str(image)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert user.returncode == 0, user.stderr[-3000:]
    report = json.loads(user.stdout.strip().splitlines()[-1])
    assert report["model"].startswith("transformers_modules.") and report["processor"] == "GZLlavaProcessor"
    assert isinstance(report["described"], str) and report["answered"]
