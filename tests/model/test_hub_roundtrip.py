"""push_to_hub, then every user call of the README in a fresh Python process that cannot import this project.

Only the remote code uploaded with the model can then define the config, model, processor and pipeline.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from gzllava.hub import CUSTOM_PIPELINES, REMOTE_CODE_FILES, push_to_hub, save_for_hub
from gzllava.testing import toy_galaxy


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

USER_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    # Make this project unimportable: drop its checkout from sys.path and the editable-install finder.
    repo = {repo!r}
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != repo]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "") + repr(f)]
    for name in ("configuration_gzllava", "modeling_gzllava", "processing_gzllava", "pipeline_gzllava", "gzllava"):
        assert importlib.util.find_spec(name) is None, f"{{name}} is importable"

    import torch
    from transformers import AutoModel, AutoModelForImageTextToText, AutoProcessor, pipeline

    repo_id, image_path = sys.argv[1], sys.argv[2]
    model = AutoModelForImageTextToText.from_pretrained(repo_id, trust_remote_code=True)
    base = AutoModel.from_pretrained(repo_id, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True)
    described = pipeline("image-to-text", model=repo_id, trust_remote_code=True)(image_path, generate_kwargs={{"max_new_tokens": 5}})
    chat = [{{"role": "user", "content": [{{"type": "image", "url": image_path}},
                                         {{"type": "text", "text": "Is there any sign of a bar?"}}]}}]
    answered = pipeline("image-text-to-text", model=repo_id, trust_remote_code=True)(text=chat, max_new_tokens=5)
    inputs = processor(images=[image_path], text=[processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)],
                       return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    print(json.dumps({{
        "model": type(model).__module__ + "." + type(model).__name__,
        "base": type(base).__name__,
        "processor": type(processor).__name__,
        "described": described,
        "answered": answered[0]["generated_text"] if isinstance(answered[0]["generated_text"], str) else answered[0]["generated_text"][-1],
        "last_logits": logits[:8].tolist(),
    }}))
    """
)


def test_saved_folder_is_a_complete_hub_model_repository(tmp_path, tiny_mlp):
    model, processor = tiny_mlp
    folder = save_for_hub(model, processor, tmp_path / "repo", card_kwargs={"base_models": ["tiny/clip", "tiny/llama"]})
    names = {path.name for path in folder.iterdir()}
    assert set(REMOTE_CODE_FILES) <= names
    assert {"config.json", "model.safetensors", "generation_config.json", "processor_config.json", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", "README.md"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_gzllava.GZLlavaConfig",
        "AutoModel": "modeling_gzllava.GZLlavaModel",
        "AutoModelForImageTextToText": "modeling_gzllava.GZLlavaForConditionalGeneration",
    }
    assert config["custom_pipelines"] == CUSTOM_PIPELINES
    assert json.loads((folder / "processor_config.json").read_text())["auto_map"]["AutoProcessor"] == "processing_gzllava.GZLlavaProcessor"
    card = (folder / "README.md").read_text()
    header = card.split("---")[1]
    for line in ("pipeline_tag: image-text-to-text", "library_name: transformers", "license: apache-2.0", "- tiny/clip",
                 "- org/gz-talk-instruct", "- galaxy-zoo"):
        assert line in header, line
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)  # safetensors only


def test_saved_tokenizer_carries_no_call_time_truncation(tmp_path, tiny_mlp):
    model, processor = tiny_mlp
    with pytest.raises(ValueError):  # a truncating call (as a training collator makes) that cuts image tokens
        processor(images=[toy_galaxy()], text=[processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Bar?"}]}],
            add_generation_prompt=True, tokenize=False)], truncation=True, max_length=8, return_tensors="pt")
    folder = save_for_hub(model, processor, tmp_path / "repo")
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    assert tokenizer["truncation"] is None and tokenizer["padding"] is None


@pytest.mark.integration
def test_push_to_hub_then_every_user_call_in_a_fresh_process(tmp_path, hub_server, hub_env, tiny_mlp):
    model, processor = tiny_mlp
    repo_id = "org/gz-llava"
    push_to_hub(model, processor, repo_id)
    image_path = tmp_path / "galaxy.jpg"
    toy_galaxy(size=64).save(image_path)
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT.format(repo=REPO_ROOT))
    env = {**os.environ, **hub_env}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(script), repo_id, str(image_path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"].startswith("transformers_modules.") and report["model"].endswith("GZLlavaForConditionalGeneration")
    assert report["base"] == "GZLlavaModel" and report["processor"] == "GZLlavaProcessor"
    assert isinstance(report["described"][0]["generated_text"], str) and report["described"][0]["generated_text"]
    assert report["answered"]
    # The remote-code model computes what the local one computes.
    import torch

    chat_text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there any sign of a bar?"}]}],
        add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[str(image_path)], text=[chat_text], return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits[0, -1, :8]
    torch.testing.assert_close(torch.tensor(report["last_logits"]), expected, rtol=1e-4, atol=1e-5)
