"""The end of a run: LoRA merged into the full-precision base, the adapter alone, the card, resumable checkpoints."""

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from gzllava.hub import REMOTE_CODE_FILES
from gzllava.tiny import toy_galaxy
from processing_gzllava import chat_prompt
from gzllava.training import prepare_training, run_training, save_trained_model, train


QLORA = ["--stage", "instruct", "--use_peft", "true", "--load_in_4bit", "true", "--use_bnb_nested_quant", "true",
         "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0"]
STEPS = ["--max_steps", "3", "--learning_rate", "0.01", "--warmup_steps", "0", "--dataset_config", "description",
         "--max_length", "100", "--logging_steps", "1"]


@pytest.fixture(scope="module")
def qlora_run(instruct_folder, make_args, tmp_path_factory):
    run = prepare_training(*make_args(instruct_folder, tmp_path_factory.mktemp("qlora"), *QLORA, *STEPS,
                                      "--hub_model_id", "org/gz-llava-test"))
    train(run)
    return run, save_trained_model(run)


def test_lora_is_merged_into_the_full_precision_base(qlora_run):
    run, folder = qlora_run
    output = Path(run.training_args.output_dir)
    exported = AutoModelForImageTextToText.from_pretrained(folder)
    base = AutoModelForImageTextToText.from_pretrained(output / "composed-base")
    adapter = load_file(output / "adapter" / "adapter_model.safetensors")
    scaling = 8 / 4
    for layer in range(2):
        for proj in ("self_attn.q_proj", "mlp.down_proj"):
            prefix = f"base_model.model.model.language_model.layers.{layer}.{proj}"
            delta = adapter[f"{prefix}.lora_B.weight"].float() @ adapter[f"{prefix}.lora_A.weight"].float() * scaling
            assert delta.abs().max() > 0  # LoRA learned something
            name = f"model.language_model.layers.{layer}.{proj}.weight"
            merged, original = exported.get_parameter(name), base.get_parameter(name)
            assert merged.dtype == torch.float32
            torch.testing.assert_close(merged, original + delta, rtol=0, atol=1e-6)
    # Real float weights on disk: no 4-bit leftovers (packed uint8 weights, quant states).
    with safe_open(folder / "model.safetensors", "pt") as weights:
        assert not [k for k in weights.keys() if "quant" in k or "absmax" in k]
        assert all(weights.get_slice(k).get_dtype() in ("F32", "I64") for k in weights.keys())


def test_trained_projector_is_in_the_export(qlora_run):
    run, folder = qlora_run
    exported = AutoModelForImageTextToText.from_pretrained(folder)
    trained = dict(run.trainer.model.named_parameters())
    for name in ("linear_1.weight", "linear_2.bias"):
        expected = trained[f"base_model.model.model.multi_modal_projector.modules_to_save.default.{name}"]
        original = trained[f"base_model.model.model.multi_modal_projector.original_module.{name}"]
        assert not torch.equal(expected, original)  # it did train
        torch.testing.assert_close(exported.model.multi_modal_projector.get_parameter(name), expected.float())


def test_export_is_a_hub_repo_with_card_curve_and_metrics(qlora_run):
    run, folder = qlora_run
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "modeling_gzllava.py", "processing_gzllava.py", "pipeline_gzllava.py",
            "processor_config.json", "tokenizer.json", "chat_template.jinja", "README.md", "training_curve.png"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageTextToText"] == "modeling_gzllava.GZLlavaForConditionalGeneration"
    card = (folder / "README.md").read_text()
    assert "org/gz-llava-test" in card and "![training loss](training_curve.png)" in card
    assert '"recipe": {' in card and "tiny_cpu_align.yaml" in card and '"stage": "instruct"' in card
    assert '"settings": {' in card and '"learning_rate": 0.001' in card  # the recipe as written...
    assert '"learning_rate": 0.01' in card  # ...and the effective value after the command-line override
    assert '"load_in_4bit": true' in card and '"dropped_overlong": 2' in card
    assert "| train_loss |" in card and "| dropped_overlong_train | 2 |" in card
    # A card meant to be pushed: the recipe relative to the project, no local absolute path anywhere.
    assert '"path": "recipes/tiny_cpu_align.yaml"' in card
    summary = (folder / "training_summary.json").read_text()
    for local in (str(Path(run.training_args.output_dir).parent), str(Path(__file__).resolve().parents[2]), "/home/"):
        assert local not in card and local not in summary, local
    assert (folder / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The user's calls work on the folder.
    model = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert not hasattr(processor, "augment")  # the trainer's collator augments; the processor never does
    inputs = processor(images=[toy_galaxy()], text=[chat_prompt(processor)], return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 3


def test_adapter_only_export(instruct_folder, make_args, tmp_path):
    folder = run_training(*make_args(instruct_folder, tmp_path, *QLORA, *STEPS[:2], "--dataset_config", "description",
                                     "--max_length", "100", "--save_adapter_only", "true"))
    names = {path.name for path in folder.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "processor_config.json"} <= names
    assert "model.safetensors" not in names
    with safe_open(folder / "adapter_model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    assert any("multi_modal_projector.linear_1.weight" in k for k in keys)  # the projector travels with the adapter
    assert all("vision_tower" not in k for k in keys)
    base = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == "<local>/composed-base"  # peft's absolute local path, made portable for the Hub
    card = (folder / "README.md").read_text()
    assert "adapter (and the trained projector) for `<local>/composed-base`" in card and str(tmp_path) not in card
    # save_for_hub wrote it: the remote code beside the adapter (transformers' own copy, not a hand-made one), no
    # config.json (the folder is no full model), and the user's calls load the processor and the adapter.
    assert set(REMOTE_CODE_FILES) <= names and "config.json" not in names
    for name in REMOTE_CODE_FILES:
        assert (folder / name).read_bytes() == (Path(__file__).resolve().parents[2] / name).read_bytes(), name
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(processor).__name__ == "GZLlavaProcessor" and processor.tokenizer.padding_side == "left"
    base = AutoModelForImageTextToText.from_pretrained(tmp_path / "composed-base")
    adapted = PeftModel.from_pretrained(base, folder)
    inputs = processor(images=[toy_galaxy()], text=[chat_prompt(processor)], return_tensors="pt")
    assert adapted.generate(**inputs, max_new_tokens=2, do_sample=False).shape[1] == inputs["input_ids"].shape[1] + 2


def test_checkpoints_use_the_model_parameter_names_so_trainer_resume_restores_them(instruct_folder, make_args, tmp_path):
    """transformers' Trainer resumes with a plain load_state_dict: llava's legacy on-disk names would all be ignored."""
    run = prepare_training(*make_args(instruct_folder, tmp_path, *STEPS, "--save_strategy", "steps", "--save_steps", "3"))
    train(run)
    checkpoint = tmp_path / "checkpoint-3"
    with safe_open(checkpoint / "model.safetensors", "pt") as weights:
        assert set(weights.keys()) == set(run.trainer.model.state_dict().keys())
    # ...and from_pretrained still reads them.
    reloaded = AutoModelForImageTextToText.from_pretrained(checkpoint)
    torch.testing.assert_close(reloaded.model.multi_modal_projector.linear_1.weight,
                               run.trainer.model.model.multi_modal_projector.linear_1.weight)
