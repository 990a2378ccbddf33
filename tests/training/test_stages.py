"""What each stage trains: align the projector; instruct QLoRA on the LM only + the projector; full the LM too."""

import re

import pytest
import torch

from gzllava.tiny import tiny_model_and_processor
from gzllava.training import prepare_training, train
from gzllava.training.stages import lora_target_regex


STEPS = ["--max_steps", "2", "--learning_rate", "0.01", "--warmup_steps", "0", "--dataset_config", "description",
         "--max_length", "100"]


def snapshot(model):
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def changed(before, model):
    return {name for name, param in model.named_parameters() if not torch.equal(before[name], param.detach())}


def test_align_trains_the_projector_and_nothing_else(instruct_folder, make_args, tmp_path):
    run = prepare_training(*make_args(instruct_folder, tmp_path, *STEPS))
    before = snapshot(run.trainer.model)
    train(run)
    updated = changed(before, run.trainer.model)
    assert updated and all(".multi_modal_projector." in name for name in updated)
    assert {n for n, p in run.trainer.model.named_parameters() if p.requires_grad} == updated
    assert all(p.dtype == torch.float32 for p in run.trainer.model.model.multi_modal_projector.parameters())


def test_full_trains_projector_language_model_and_head_but_not_the_vision_tower(instruct_folder, make_args, tmp_path):
    run = prepare_training(*make_args(instruct_folder, tmp_path, *STEPS, "--stage", "full"))
    before = snapshot(run.trainer.model)
    train(run)
    updated = changed(before, run.trainer.model)
    assert any(".multi_modal_projector." in name for name in updated)
    assert any(".language_model.layers." in name for name in updated)
    assert "lm_head.weight" in updated
    assert not any(".vision_tower." in name for name in updated)


def test_instruct_is_qlora_on_the_language_model_with_the_projector_in_full(instruct_folder, make_args, tmp_path):
    import bitsandbytes as bnb

    run = prepare_training(*make_args(
        instruct_folder, tmp_path, *STEPS, "--stage", "instruct", "--use_peft", "true", "--load_in_4bit", "true",
        "--use_bnb_nested_quant", "true", "--lora_r", "4", "--lora_alpha", "8",
    ))
    model = run.trainer.model
    kinds = {name: module for name, module in model.named_modules()}
    lm_linear = [n for n, m in kinds.items() if ".language_model.layers." in n and n.endswith("q_proj.base_layer")]
    assert lm_linear and all(isinstance(kinds[n], bnb.nn.Linear4bit) for n in lm_linear)
    quant_state = kinds[lm_linear[0]].weight.quant_state
    assert quant_state.quant_type == "nf4" and quant_state.nested  # double quantisation
    # LoRA only inside the language model: CLIP's q_proj/k_proj/v_proj/out_proj and the projector get none.
    lora_modules = [n for n in kinds if n.endswith("lora_A")]
    assert lora_modules and all(".language_model.layers." in n for n in lora_modules)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for n, m in kinds.items() if ".vision_tower." in n)

    before = snapshot(model)
    train(run)
    updated = changed(before, model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == updated  # every trainable parameter really learns
    assert {n for n in trainable if "multi_modal_projector" in n} and all(
        "multi_modal_projector.modules_to_save" in n or "lora_" in n for n in trainable)
    projector = [p for n, p in model.named_parameters() if "multi_modal_projector.modules_to_save" in n]
    assert projector and all(p.dtype == torch.float32 for p in projector)  # TRL's bf16 cast undone
    assert not any(".vision_tower." in n or "lm_head" in n for n in updated)


def test_lora_regex_matches_language_model_linears_only():
    model, _ = tiny_model_and_processor()
    pattern = lora_target_regex(model, ["q_proj", "v_proj"])
    matched = [name for name, _ in model.named_modules() if re.fullmatch(pattern, name)]
    assert matched == [f"model.language_model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    everything = lora_target_regex(model, None)
    matched = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if re.fullmatch(everything, name)}
    assert matched == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert "model.vision_tower.encoder.layers.0.self_attn.q_proj" in dict(model.named_modules())  # CLIP has one too
    with pytest.raises(ValueError, match=r"\['qkv_proj'\] are not linear layers of the language model"):
        lora_target_regex(model, ["qkv_proj"])


def test_extra_modules_trained_in_full_keep_their_precision_under_qlora(instruct_folder, make_args, tmp_path):
    """TRL casts a quantised model's trainable parameters to bf16: right for LoRA, not for modules trained in full."""
    run = prepare_training(*make_args(
        instruct_folder, tmp_path, *STEPS, "--stage", "instruct", "--use_peft", "true", "--load_in_4bit", "true",
        "--lora_r", "4", "--lora_alpha", "8", "--lora_modules_to_save", "lm_head",
    ))
    model = run.trainer.model
    head = {n: p for n, p in model.named_parameters() if "lm_head.modules_to_save" in n}
    assert head and all(p.dtype == torch.float32 and p.requires_grad for p in head.values())
    assert {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.bfloat16}  # adapters as in QLoRA
    before = snapshot(model)
    train(run)
    assert set(head) <= changed(before, model)
