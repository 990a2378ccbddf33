"""GZLlavaConfig: LLaVA field names, projector choices, and construction-time validation."""

import pytest
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, CLIPVisionConfig, LlamaConfig, Phi3Config, Qwen2Config, SiglipVisionConfig

from configuration_gzllava import GZLlavaConfig


VISION = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)
TEXT = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   vocab_size=100, pad_token_id=0)


def make(**kwargs):
    return GZLlavaConfig(vision_config=VISION.to_dict(), text_config=TEXT.to_dict(), image_token_id=99, **kwargs)


def test_keeps_llava_field_names_and_defaults_to_the_llava15_projector():
    config = make()
    for name in ("image_token_id", "image_token_index", "projector_hidden_act", "vision_feature_layer",
                 "vision_feature_select_strategy", "image_seq_length", "multimodal_projector_bias"):
        assert hasattr(config, name), name
    assert config.projector_type == "mlp2x_gelu"
    assert config.image_token_index == config.image_token_id == 99
    assert config.image_seq_length == 16  # (32 / 8)^2 patches, CLS dropped by the "default" strategy


def test_image_seq_length_follows_the_projector():
    assert make(projector_type="resampler", num_query_tokens=10, resampler_num_heads=4).image_seq_length == 10
    assert make(vision_feature_select_strategy="full").image_seq_length == 17  # CLS kept


@pytest.mark.parametrize("text_config", [Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, vocab_size=100),
                                         Phi3Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, vocab_size=100)])
def test_any_causal_lm_text_config(text_config):
    config = GZLlavaConfig(vision_config=VISION, text_config=text_config, image_token_id=5)
    assert config.text_config.model_type == text_config.model_type


def test_round_trips_through_dict_and_autoconfig(tmp_path):
    config = make(projector_type="resampler", num_query_tokens=8, resampler_num_heads=4)
    config.save_pretrained(tmp_path)
    import gzllava  # noqa: F401  registers "gzllava" with AutoConfig

    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, GZLlavaConfig)
    assert (
        {k: v for k, v in loaded.to_dict().items() if k != "_name_or_path"}
        == {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}
    )


def test_siglip_vision_needs_the_full_strategy():
    siglip = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)
    config = GZLlavaConfig(vision_config=siglip, text_config=TEXT, image_token_id=5, vision_feature_select_strategy="full")
    assert config.image_seq_length == 16
    with pytest.raises(ValueError, match="vision_feature_select_strategy='default'.*siglip_vision_model"):
        GZLlavaConfig(vision_config=siglip, text_config=TEXT, image_token_id=5)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"projector_type": "qformer"}, "projector_type='qformer'"),
        ({"vision_feature_select_strategy": "cls"}, "vision_feature_select_strategy='cls'"),
        ({"vision_feature_layer": 7}, "vision_feature_layer=7"),
        ({"vision_feature_layer": []}, "vision_feature_layer=[]"),
        ({"projector_type": "resampler", "num_query_tokens": 0}, "num_query_tokens=0"),
        ({"projector_type": "resampler", "resampler_num_heads": 5}, "resampler_num_heads=5"),
        ({"use_image_delimiters": True}, "use_image_delimiters=True"),
        ({"image_token_id": 100}, "image_token_id=100"),
        ({"boi_token_id": -1}, "boi_token_id=-1"),
    ],
)
def test_invalid_values_fail_at_construction_naming_field_and_value(kwargs, field):
    base = {"vision_config": VISION.to_dict(), "text_config": TEXT.to_dict(), "image_token_id": 99}
    # Our checks say "invalid <field>=<value>"; LlavaConfig's own typed fields raise huggingface_hub's
    # StrictDataclassError, which names the field and the value too.
    with pytest.raises((ValueError, StrictDataclassError)) as error:
        GZLlavaConfig(**{**base, **kwargs})
    name, value = field.split("=", 1)
    assert name in str(error.value) and value.strip("'") in str(error.value)


def test_unsupported_vision_tower_is_refused():
    with pytest.raises(ValueError, match="vision_config.model_type='llama'"):
        GZLlavaConfig(vision_config=TEXT.to_dict(), text_config=TEXT.to_dict(), image_token_id=5)
