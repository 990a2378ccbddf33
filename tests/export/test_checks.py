"""What llama.cpp cannot run is refused before anything is written, with the reason and the way out."""

from __future__ import annotations

import json

import pytest

from gzllava.export.chat_template import MEDIA_MARKER, gguf_chat_template
from gzllava.export.checks import check_llama_cpp_compatible, gpt2_style_pre_tokenizer
from gzllava.export.errors import ExportError
from gzllava.export.gguf_export import export_gguf, parse_types
from gzllava.tiny import tiny_model_and_processor
from processing_gzllava import user_turn


def test_the_tiny_mlp_model_is_runnable(tiny):
    assert check_llama_cpp_compatible(*tiny) is None


@pytest.mark.parametrize("kwargs, words", [
    (dict(projector_type="resampler"), ["resampler", "llama.cpp", "Ollama", "mlp2x_gelu"]),
    (dict(use_image_delimiters=True), ["<boi>/<eoi>", "llama.cpp", "Ollama", "mlp2x_gelu"]),
    (dict(projector_type="linear"), ["linear", "GELU", "mlp2x_gelu"]),
    (dict(vision="siglip"), ["siglip_vision_model", "CLIP"]),
    (dict(vision_feature_select_strategy="full"), ["'full'", "CLS"]),
    (dict(vision_feature_views=8), ["vision_feature_views 8", "llama.cpp", "vision_feature_views: 1"]),
])
def test_unrunnable_models_are_refused_with_the_reason(kwargs, words, tmp_path):
    model, processor = tiny_model_and_processor(**kwargs)
    with pytest.raises(ExportError) as error:
        export_gguf(model, processor, tmp_path / "out", converter_dir=tmp_path / "never-used")
    for word in words:
        assert word in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_a_language_model_llama_cpp_cannot_read_from_llava_is_refused(tiny):
    model, processor = tiny
    model.config.text_config.model_type = "qwen2"
    try:
        with pytest.raises(ExportError, match="'qwen2'.*Llama"):
            check_llama_cpp_compatible(model, processor)
    finally:
        model.config.text_config.model_type = "llama"


def test_missing_chat_template_is_refused(tiny):
    model, processor = tiny
    template, processor.chat_template = processor.chat_template, None
    try:
        with pytest.raises(ExportError, match="chat_template"):
            check_llama_cpp_compatible(model, processor)
    finally:
        processor.chat_template = template


def test_an_existing_output_folder_needs_overwrite(tiny, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists.*--overwrite"):
        export_gguf(*tiny, tmp_path / "out", converter_dir=tmp_path / "never-used")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_types_are_validated():
    assert parse_types("f16, q8_0,f16") == ["f16", "q8_0"]
    with pytest.raises(ExportError, match="q3_k.*expected"):
        parse_types("f16,q3_k")


def test_the_gguf_template_puts_the_media_marker_where_transformers_puts_image_tokens(tiny):
    _, processor = tiny
    template = gguf_chat_template(processor.chat_template)
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.add_extension("jinja2.ext.loopcontrols")
    # llama-cpp-python's mtmd handler turns image parts into text parts holding the marker, then renders
    messages = [{"role": "user", "content": [{"type": "text", "text": MEDIA_MARKER},
                                             {"type": "text", "text": "Is there a bar?"}]}]
    rendered = env.from_string(template.replace("{% generation %}", "").replace("{% endgeneration %}", "")).render(
        messages=messages, add_generation_prompt=True, eos_token="</s>")
    reference = processor.apply_chat_template(user_turn("Is there a bar?"), add_generation_prompt=True, tokenize=False)
    assert rendered == reference.replace("<image>", MEDIA_MARKER)


def test_gpt2_style_pre_tokenizer(tiny, tmp_path):
    _, processor = tiny
    processor.tokenizer.save_pretrained(tmp_path)
    assert gpt2_style_pre_tokenizer(tmp_path / "tokenizer.json")
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    assert not gpt2_style_pre_tokenizer(tmp_path / "tokenizer.json")
    assert not gpt2_style_pre_tokenizer(tmp_path / "missing.json")
