"""LLaVA compatibility both ways: llava-hf checkpoints load into GZ-LLaVA; GZ-LLaVA exports to plain llava."""

import pytest
import torch
from transformers import AutoProcessor, LlavaConfig, LlavaForConditionalGeneration
from safetensors import safe_open

from gzllava.llava_export import save_as_llava
from gzllava.tiny import tiny_model_and_processor, toy_galaxy
from processing_gzllava import DEFAULT_PROMPT, chat_prompt, user_turn
from modeling_gzllava import GZLlavaForConditionalGeneration


def stock_llava(gz_model):
    """A random stock llava with the same shapes as the tiny GZ-LLaVA."""
    torch.manual_seed(7)
    config = LlavaConfig(
        vision_config=gz_model.config.vision_config.to_dict(),
        text_config=gz_model.config.text_config.to_dict(),
        image_token_index=gz_model.config.image_token_id,
    )
    return LlavaForConditionalGeneration(config).eval()


@pytest.mark.parametrize("save_original_format", [True, False], ids=["legacy-keys", "new-keys"])
def test_llava_hf_checkpoint_loads_with_no_missing_or_unexpected_keys_and_identical_logits(tmp_path, tiny_mlp, save_original_format):
    gz_model, processor = tiny_mlp
    llava = stock_llava(gz_model)
    llava.save_pretrained(tmp_path, save_original_format=save_original_format)
    keys = set(safe_open(tmp_path / "model.safetensors", "pt").keys())
    legacy = "language_model.lm_head.weight" in keys
    assert legacy == save_original_format  # both on-disk layouts really are exercised

    loaded, info = GZLlavaForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    inputs = processor(images=[toy_galaxy()], text=[chat_prompt(processor)], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded.eval()(**inputs).logits, llava(**inputs).logits)


@pytest.mark.parametrize("projector_type, delimiters", [("linear", False), ("mlp2x_gelu", False), ("mlp2x_gelu", True)])
def test_export_to_plain_llava_gives_identical_logits(tmp_path, projector_type, delimiters):
    model, processor = tiny_model_and_processor(projector_type, use_image_delimiters=delimiters)
    save_as_llava(model, processor, tmp_path)
    llava, info = LlavaForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    llava_processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(llava_processor).__name__ == "LlavaProcessor"

    ours = processor(images=[toy_galaxy()], text=[chat_prompt(processor)], return_tensors="pt")
    theirs = llava_processor(images=[toy_galaxy()], text=[llava_processor.apply_chat_template(
        user_turn(DEFAULT_PROMPT), add_generation_prompt=True, tokenize=False)], return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])  # same expansion, delimiters included
    with torch.no_grad():
        assert torch.equal(model(**ours).logits, llava.eval()(**theirs).logits)


def test_resampler_export_is_refused_with_a_reason(tmp_path, tiny_resampler):
    model, processor = tiny_resampler
    with pytest.raises(ValueError, match="resampler.*no llava-hf equivalent"):
        save_as_llava(model, processor, tmp_path)


def test_an_eight_view_model_is_refused_by_the_llava_export_with_a_reason(tmp_path):
    from gzllava.export.errors import ExportError
    from gzllava.export.llava import export_llava

    model, processor = tiny_model_and_processor(vision_feature_views=8)
    with pytest.raises(ExportError, match=r"vision_feature_views=8 has no llava-hf equivalent.*vision_feature_views: 1 "
                                          r"to run it in vLLM\.$"):
        export_llava(model, processor, tmp_path / "out")
    assert not (tmp_path / "out").exists()
