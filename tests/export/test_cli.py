"""`python -m gzllava.export`: bad input exits 2 with one line and writes nothing; `llava` writes a runnable folder."""

from __future__ import annotations

import pytest
import torch

from gzllava.export.__main__ import main
from gzllava.hub import save_for_hub
from gzllava.tiny import tiny_model_and_processor, toy_galaxy
from processing_gzllava import chat_prompt


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_missing_model_folder(tmp_path, capsys):
    assert main(["gguf", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "nope: no such model folder" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_folder_without_tokenizer(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "gzllava"}')
    assert main(["llava", str(tmp_path / "model"), str(tmp_path / "out")]) == 2
    assert "no tokenizer" in _one_error_line(capsys)


def test_existing_output_is_refused_without_overwrite(tiny_folder, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["ollama", str(tiny_folder), str(tmp_path / "out")]) == 2
    assert "already exists: pass --overwrite" in _one_error_line(capsys)
    assert list((tmp_path / "out").iterdir()) == []


def test_resampler_model_is_refused_before_writing(tmp_path, capsys):
    save_for_hub(*tiny_model_and_processor("resampler", num_query_tokens=4), tmp_path / "resampler")
    assert main(["gguf", str(tmp_path / "resampler"), str(tmp_path / "out"), "--converter", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "resampler" in line and "llama.cpp" in line and "mlp2x_gelu" in line
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["resampler"]  # no staging folder left behind


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="no such model folder"):
        main(["--debug", "gguf", str(tmp_path / "nope"), str(tmp_path / "out")])


def test_llava_export_runs_in_plain_transformers_with_the_same_logits(tiny, tiny_folder, tmp_path, capsys):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    assert main(["llava", str(tiny_folder), str(tmp_path / "llava")]) == 0
    assert "wrote" in capsys.readouterr().out
    out = tmp_path / "llava"
    readme = (out / "README.md").read_text()
    assert "vllm serve" in readme and "--chat-template" in readme
    llava = LlavaForConditionalGeneration.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    model, ours = tiny
    image = toy_galaxy()
    inputs = processor(images=image, text=chat_prompt(ours, "Is there a bar?"), return_tensors="pt")
    reference = ours(images=image, text=chat_prompt(ours, "Is there a bar?"), return_tensors="pt")
    assert torch.equal(inputs["input_ids"], reference["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(llava(**inputs).logits, model(**reference).logits)
