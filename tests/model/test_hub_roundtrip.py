"""Saved and pushed GZ-LLaVA repositories, loaded in a fresh Python process that cannot import this project.

Only the remote code saved with the model can then define the config, model, processor and pipeline. Three writers
must give such a repository: `gzllava.hub.save_for_hub`/`push_to_hub` (with a model card), transformers' own
`model.save_pretrained` + `processor.save_pretrained`, and transformers' own `model.push_to_hub`.
"""

import json
import os
import subprocess
import sys
import textwrap

from pathlib import Path

import pytest
import torch

from gzllava.hub import CUSTOM_PIPELINES, REMOTE_CODE_FILES, push_to_hub, save_for_hub
from gzllava.tiny import toy_galaxy
from processing_gzllava import chat_prompt


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Make this project unimportable: drop its checkout from sys.path and the editable-install finder.
UNIMPORTABLE = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    repo = {repo!r}
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != repo]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "") + repr(f)]
    for name in ("configuration_gzllava", "modeling_gzllava", "image_processing_gzllava", "processing_gzllava",
                 "pipeline_gzllava", "gzllava"):
        assert importlib.util.find_spec(name) is None, f"{{name}} is importable"
    """
)

# A plain save_pretrained folder: the model and processor through the Auto classes, the last position's logits.
FOLDER_SCRIPT = UNIMPORTABLE + textwrap.dedent(
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder, image_path, text = sys.argv[1], sys.argv[2], sys.argv[3]
    model = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(images=[image_path], text=[text], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
    resaved = os.path.join(os.path.dirname(folder), "resaved")  # the remote-code classes save a repository too
    model.save_pretrained(resaved)
    processor.save_pretrained(resaved)
    reader = sys.modules[type(processor).__module__].load_image  # the pixel work: the folder's image_processing module
    print(json.dumps({{"model": type(model).__module__ + "." + type(model).__name__, "processor": type(processor).__name__,
                      "image_reader": reader.__module__ + "." + reader.__name__,
                      "padding_side": processor.tokenizer.padding_side, "last_logits": logits[:8].tolist(),
                      "resaved_files": sorted(os.listdir(resaved)),
                      "resaved_config": json.load(open(os.path.join(resaved, "config.json")))}}))
    """
)

USER_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    # Make this project unimportable: drop its checkout from sys.path and the editable-install finder.
    repo = {repo!r}
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != repo]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "") + repr(f)]
    for name in ("configuration_gzllava", "modeling_gzllava", "image_processing_gzllava", "processing_gzllava",
                 "pipeline_gzllava", "gzllava"):
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
        processor(images=[toy_galaxy()], text=[chat_prompt(processor, "Bar?")], truncation=True, max_length=8,
                  return_tensors="pt")
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

    inputs = processor(images=[str(image_path)], text=[_chat_text(processor)], return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits[0, -1, :8]
    torch.testing.assert_close(torch.tensor(report["last_logits"]), expected, rtol=1e-4, atol=1e-5)


def _chat_text(processor):
    """The prompt of the fresh-process scripts' chat (which cannot import the project's `user_turn`)."""
    return chat_prompt(processor, "Is there any sign of a bar?")


def test_plain_save_pretrained_writes_a_complete_remote_code_repository(tmp_path, tiny_resampler):
    model, processor = tiny_resampler
    folder = tmp_path / "plain"
    model.save_pretrained(folder)
    live_side = processor.tokenizer.padding_side
    processor.tokenizer.padding_side = "right"  # as a training collator leaves it
    try:
        processor.save_pretrained(folder)
        assert processor.tokenizer.padding_side == "right"  # saving did not change the live processor
    finally:
        processor.tokenizer.padding_side = live_side
    names = {path.name for path in folder.iterdir()}
    assert set(REMOTE_CODE_FILES) <= names  # transformers copied the module files and their relative imports
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_gzllava.GZLlavaConfig",
        "AutoModel": "modeling_gzllava.GZLlavaModel",
        "AutoModelForImageTextToText": "modeling_gzllava.GZLlavaForConditionalGeneration",
    }
    assert config["custom_pipelines"] == CUSTOM_PIPELINES
    assert json.loads((folder / "processor_config.json").read_text())["auto_map"] == {
        "AutoProcessor": "processing_gzllava.GZLlavaProcessor"}
    assert json.loads((folder / "tokenizer_config.json").read_text())["padding_side"] == "left"
    for name in REMOTE_CODE_FILES:  # the repository's code is the project's, byte for byte
        assert (folder / name).read_bytes() == (Path(REPO_ROOT) / name).read_bytes(), name


def test_the_bare_model_saves_the_same_repository(tmp_path, tiny_mlp):
    model, _ = tiny_mlp
    model.model.save_pretrained(tmp_path / "base")  # GZLlavaModel (AutoModel) on its own
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_gzllava.GZLlavaModel"
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageTextToText"}
    assert set(REMOTE_CODE_FILES) <= {path.name for path in (tmp_path / "base").iterdir()}  # the pipeline's imports too


def test_plain_save_pretrained_folder_loads_in_a_fresh_process_with_equal_logits(tmp_path, tiny_mlp):
    model, processor = tiny_mlp
    folder = tmp_path / "plain"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    image_path = tmp_path / "galaxy.png"
    toy_galaxy(size=64).save(image_path)
    script = tmp_path / "load.py"
    script.write_text(FOLDER_SCRIPT.format(repo=REPO_ROOT))
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    text = _chat_text(processor)
    result = subprocess.run([sys.executable, str(script), str(folder), str(image_path), text], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"].startswith("transformers_modules.") and report["model"].endswith("GZLlavaForConditionalGeneration")
    assert report["processor"] == "GZLlavaProcessor" and report["padding_side"] == "left"
    assert report["image_reader"].startswith("transformers_modules.")
    assert report["image_reader"].endswith("image_processing_gzllava.load_image")
    assert set(REMOTE_CODE_FILES) <= set(report["resaved_files"])
    assert report["resaved_config"]["auto_map"] == json.loads((folder / "config.json").read_text())["auto_map"]
    assert report["resaved_config"]["custom_pipelines"] == CUSTOM_PIPELINES
    inputs = processor(images=[str(image_path)], text=[text], return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits[0, -1, :8]
    torch.testing.assert_close(torch.tensor(report["last_logits"]), expected)  # float32 defaults: equal up to rounding


@pytest.mark.integration
def test_transformers_push_to_hub_then_every_user_call_in_a_fresh_process(tmp_path, hub_server, hub_env, hub_repo_id,
                                                                         tiny_mlp):
    model, processor = tiny_mlp
    model.push_to_hub(hub_repo_id)  # transformers' own writers, no gzllava.hub
    processor.push_to_hub(hub_repo_id)
    image_path = tmp_path / "galaxy.jpg"
    toy_galaxy(size=64).save(image_path)
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT.format(repo=REPO_ROOT))
    env = {**os.environ, **hub_env}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(script), hub_repo_id, str(image_path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"].endswith("GZLlavaForConditionalGeneration") and report["base"] == "GZLlavaModel"
    assert isinstance(report["described"][0]["generated_text"], str) and report["described"][0]["generated_text"]
    assert report["answered"]
    inputs = processor(images=[str(image_path)], text=[_chat_text(processor)], return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits[0, -1, :8]
    torch.testing.assert_close(torch.tensor(report["last_logits"]), expected, rtol=1e-4, atol=1e-5)


def test_save_pretrained_with_push_to_hub_uploads_the_remote_code(tmp_path, hub_server, hub_repo_id, tiny_mlp):
    """`save_pretrained(..., push_to_hub=True)` uploads only files written during the call: the code must be among them."""
    from huggingface_hub import HfApi

    model, _ = tiny_mlp
    model.save_pretrained(tmp_path / "local", push_to_hub=True, repo_id=hub_repo_id)
    files = set(HfApi().list_repo_files(hub_repo_id))
    assert {"config.json", "model.safetensors", "configuration_gzllava.py", "modeling_gzllava.py",
            "pipeline_gzllava.py"} <= files, files
    assert not model.is_remote_code()  # registered for the save only
