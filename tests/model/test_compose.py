"""Composing a new GZ-LLaVA from a vision tower and a causal LM leaves the language model unchanged."""


import pytest
import torch

from gzllava.compose import compose_gzllava
from gzllava.tiny import tiny_language_model, tiny_tokenizer, tiny_vision_tower


@pytest.mark.parametrize("projector_type, delimiters", [("mlp2x_gelu", False), ("resampler", True)])
def test_text_only_logits_equal_the_language_model_alone(projector_type, delimiters):
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    original_vocab = len(tokenizer)
    lm = tiny_language_model(original_vocab).eval()
    text = "Is there any sign of a spiral arm pattern?"
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        reference = lm(ids).logits.clone()

    model, processor = compose_gzllava(tiny_vision_tower(), lm, tokenizer=tokenizer, projector_type=projector_type,
                                       num_query_tokens=4, resampler_num_heads=4, use_image_delimiters=delimiters)
    added = ["<image>"] + (["<boi>", "<eoi>"] if delimiters else [])
    assert all(tokenizer.convert_tokens_to_ids(t) >= original_vocab for t in added)
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<image>")
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    with torch.no_grad():
        composed = model.eval()(input_ids=ids).logits
    assert torch.equal(composed[..., :original_vocab], reference)
    assert processor.chat_template and "{% generation %}" in processor.chat_template


def test_pad_token_added_when_the_tokenizer_has_none():
    tokenizer = tiny_tokenizer()
    tokenizer.pad_token = None
    lm = tiny_language_model(len(tokenizer))
    model, processor = compose_gzllava(tiny_vision_tower(), lm, tokenizer=tokenizer)
    assert processor.tokenizer.pad_token == "<pad>" or processor.tokenizer.pad_token is not None
    assert model.generation_config.pad_token_id == processor.tokenizer.pad_token_id


def test_tied_embeddings_stay_tied():
    tokenizer = tiny_tokenizer()
    lm = tiny_language_model(len(tokenizer), tie_word_embeddings=True)
    model, _ = compose_gzllava(tiny_vision_tower(), lm, tokenizer=tokenizer)
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_a_dual_encoder_or_unknown_checkpoint_is_refused(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from gzllava.compose import load_vision_tower

    tiny = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    clip = CLIPModel(CLIPConfig(text_config={**tiny, "vocab_size": 99}, vision_config={**tiny, "image_size": 32, "patch_size": 8}))
    clip.save_pretrained(tmp_path / "clip")
    tower = load_vision_tower(str(tmp_path / "clip"))  # a full CLIP checkpoint gives its vision tower
    assert type(tower).__name__ == "CLIPVisionModel"
    torch.testing.assert_close(tower.embeddings.patch_embedding.weight, clip.vision_model.embeddings.patch_embedding.weight)
    with pytest.raises(ValueError, match="Pass the vision tower, not the dual encoder CLIPModel"):
        compose_gzllava(clip, tiny_language_model(600), tokenizer=tiny_tokenizer())
    tiny_language_model(50).save_pretrained(tmp_path / "llama")
    with pytest.raises(ValueError, match="'llama' checkpoint; GZ-LLaVA needs a CLIP or SigLIP"):
        load_vision_tower(str(tmp_path / "llama"))


def _smollm2_gguf():
    from gzllava.smollm2 import smollm2_gguf

    pytest.importorskip("gguf")
    try:
        return smollm2_gguf()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.mark.integration
def test_compose_with_real_smollm2_keeps_its_text_logits():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    vocab = lm.config.vocab_size
    ids = tokenizer("A barred spiral galaxy with two arms.", return_tensors="pt").input_ids
    with torch.no_grad():
        reference = lm(ids).logits.clone()
    model, processor = compose_gzllava(tiny_vision_tower(hidden_size=64), lm, tokenizer=tokenizer)
    with torch.no_grad():
        logits = model.eval()(input_ids=ids).logits[..., :vocab]
    # The composed lm_head has more rows (the added <image> token), so the matmul may be blocked differently on
    # another CPU: equal up to float32 rounding (CI saw 3e-5 on logits of size ~20), and the same next tokens.
    torch.testing.assert_close(logits, reference, rtol=0, atol=1e-4)
    assert torch.equal(logits.argmax(-1), reference.argmax(-1))
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id


def test_a_composed_model_has_the_compose_settings_defaults():
    from dataclasses import fields

    from gzllava.compose import ComposeSettings

    tokenizer = tiny_tokenizer()
    model, processor = compose_gzllava(tiny_vision_tower(), tiny_language_model(len(tokenizer)), tokenizer=tokenizer)
    defaults = ComposeSettings()
    assert {setting.name for setting in fields(defaults)} == {
        "projector_type", "num_query_tokens", "use_image_delimiters", "vision_feature_layer",
        "vision_feature_select_strategy", "vision_feature_views", "image_standardization", "default_prompt",
    }
    for name in ("projector_type", "num_query_tokens", "use_image_delimiters", "vision_feature_layer",
                 "vision_feature_views"):
        assert getattr(model.config, name) == getattr(defaults, name), name
    assert defaults.vision_feature_select_strategy is None
    assert model.config.vision_feature_select_strategy == processor.vision_feature_select_strategy == "default"  # CLIP
    assert processor.image_standardization == defaults.image_standardization
    assert processor.default_prompt == defaults.default_prompt
    assert processor.boi_token is None and model.config.boi_token_id is None


def test_keywords_override_the_settings_and_the_others_reach_the_config():
    from gzllava.compose import ComposeSettings

    tokenizer = tiny_tokenizer()
    settings = ComposeSettings(projector_type="resampler", num_query_tokens=8, image_standardization=True)
    model, processor = compose_gzllava(tiny_vision_tower(), tiny_language_model(len(tokenizer)), tokenizer=tokenizer,
                                       settings=settings, num_query_tokens=3, resampler_num_heads=4,
                                       vision_feature_select_strategy="full", default_prompt="Classify.")
    assert model.config.projector_type == "resampler"  # from settings
    assert model.config.num_query_tokens == processor.num_query_tokens == 3  # the keyword wins
    assert model.config.resampler_num_heads == 4  # not a setting: a GZLlavaConfig field
    assert model.config.vision_feature_select_strategy == processor.vision_feature_select_strategy == "full"
    assert processor.image_standardization and processor.default_prompt == "Classify."
    assert settings.num_query_tokens == 8  # the caller's settings are not changed


def test_settings_of_the_wrong_type_are_refused():
    tokenizer = tiny_tokenizer()
    with pytest.raises(TypeError, match="settings must be a ComposeSettings, not dict"):
        compose_gzllava(tiny_vision_tower(), tiny_language_model(len(tokenizer)), tokenizer=tokenizer,
                        settings={"projector_type": "linear"})
