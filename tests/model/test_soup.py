"""`python -m gzllava.soup`: the weighted mean of GZ-LLaVA fine-tunes of one start, saved as a Hub-ready folder;
ingredients that are not fine-tunes of one start (another vision tower, another architecture) are refused in one line."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForImageTextToText

from gzllava.hub import save_for_hub
from gzllava.registration import register_gzllava
from gzllava.soup import main
from gzllava.tiny import tiny_model_and_processor, toy_galaxy
from processing_gzllava import chat_prompt


def _fine_tune(model, seed: int):
    """The model with every projector and language-model weight moved (as an instruct run would), tower unchanged."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "vision_tower" not in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return model


@pytest.fixture(scope="module")
def ingredients(tmp_path_factory):
    """Two fine-tunes of one tiny start, saved: (folder A, folder B, state dict A, state dict B)."""
    root = tmp_path_factory.mktemp("soup")
    folders, states = [], []
    for seed in (1, 2):
        model, processor = tiny_model_and_processor("mlp2x_gelu", seed=0)
        _fine_tune(model, seed)
        folders.append(str(save_for_hub(model, processor, root / f"ft{seed}")))
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return folders[0], folders[1], states[0], states[1]


def _load(folder):
    register_gzllava()
    return AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()


def test_the_soup_is_the_mean_of_the_ingredients_and_a_working_model(ingredients, tmp_path, capsys):
    a, b, sd_a, sd_b = ingredients
    assert main(["--model_name_or_path", f"{a},{b}", "--output_dir", str(tmp_path / "soup")]) == 0
    assert "wrote the soup of 2 models" in capsys.readouterr().out
    soup = _load(tmp_path / "soup")
    moved = 0
    for key, tensor in soup.state_dict().items():
        torch.testing.assert_close(tensor, (sd_a[key] + sd_b[key]) / 2)
        moved += not torch.equal(sd_a[key], sd_b[key])
    assert moved > 0  # the ingredients differ, so the mean is neither of them
    from processing_gzllava import GZLlavaProcessor  # noqa: F401  (the saved processor loads beside it)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tmp_path / "soup")
    inputs = processor(images=[toy_galaxy()], text=[chat_prompt(processor, "Bar?")], return_tensors="pt")
    out = soup.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3
    card = (tmp_path / "soup" / "README.md").read_text()
    assert "model_soup" in card and "Wortsman" in card and "ft1" in card and "ft2" in card


def _tied_fine_tune(seed: int):
    """A tiny GZ-LLaVA whose language model ties its output layer to its input embeddings (as SmolLM2 does), moved."""
    from gzllava.compose import compose_gzllava
    from gzllava.tiny import TINY_SETTINGS, tiny_language_model, tiny_tokenizer, tiny_vision_tower

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    model, processor = compose_gzllava(tiny_vision_tower(), tiny_language_model(len(tokenizer), tie_word_embeddings=True),
                                       tokenizer=tokenizer, settings=TINY_SETTINGS, projector_type="mlp2x_gelu", seed=0)
    return _fine_tune(model.eval(), seed), processor


def test_tied_weights_are_averaged_once(tmp_path):
    folders, states = [], []
    for seed in (1, 2):
        model, processor = _tied_fine_tune(seed)
        out_embeddings = model.get_output_embeddings().weight
        assert out_embeddings.data_ptr() == model.get_input_embeddings().weight.data_ptr()  # tied
        folders.append(str(save_for_hub(model, processor, tmp_path / f"tied{seed}")))
        states.append(out_embeddings.detach().clone())
    assert main(["--model_name_or_path", ",".join(folders), "--output_dir", str(tmp_path / "soup")]) == 0
    soup = _load(tmp_path / "soup")
    torch.testing.assert_close(soup.get_output_embeddings().weight, (states[0] + states[1]) / 2)
    torch.testing.assert_close(soup.get_input_embeddings().weight, (states[0] + states[1]) / 2)


def test_weights_are_normalised_and_recorded(ingredients, tmp_path):
    a, b, sd_a, sd_b = ingredients
    assert main(["--model_name_or_path", f"{a},{b}", "--weights", "3,1", "--output_dir", str(tmp_path / "soup")]) == 0
    soup = _load(tmp_path / "soup")
    key = next(k for k in sd_a if "multi_modal_projector" in k)
    torch.testing.assert_close(soup.state_dict()[key], 0.75 * sd_a[key] + 0.25 * sd_b[key])
    card = (tmp_path / "soup" / "README.md").read_text()
    training = json.loads(card.split("```json\n")[1].split("\n```")[0])
    assert training["model_soup"]["weights"] == [0.75, 0.25]


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_another_vision_tower_is_refused_naming_the_model(ingredients, tmp_path, capsys):
    a = ingredients[0]
    model, processor = tiny_model_and_processor("mlp2x_gelu", seed=5)  # another start: another random tower
    other = save_for_hub(model, processor, tmp_path / "other-start")
    assert main(["--model_name_or_path", f"{a},{other}", "--output_dir", str(tmp_path / "soup")]) == 2
    line = _error_line(capsys)
    assert str(other) in line and "vision tower" in line and "one start" in line
    assert not (tmp_path / "soup").exists()


def test_another_architecture_is_refused(ingredients, tmp_path, capsys):
    a = ingredients[0]
    model, processor = tiny_model_and_processor("linear", seed=0)
    other = save_for_hub(model, processor, tmp_path / "linear")
    assert main(["--model_name_or_path", f"{a},{other}", "--output_dir", str(tmp_path / "soup")]) == 2
    assert "config differs" in _error_line(capsys)


@pytest.mark.parametrize("args, named", [
    (["--model_name_or_path", "{a}"], "at least two models"),
    (["--model_name_or_path", "{a},{a}", "--weights", "1,0"], "--weights 1.0,0.0"),
    (["--model_name_or_path", "{a},{a}", "--weights", "1"], "one per model"),
    (["--model_name_or_path", "{a},outputs/no/such/model"], "outputs/no/such/model: no such model folder"),
])
def test_bad_input_is_one_line_naming_it(ingredients, tmp_path, capsys, args, named):
    a = ingredients[0]
    argv = [arg.format(a=a) for arg in args] + ["--output_dir", str(tmp_path / "soup")]
    assert main(argv) == 2
    assert named in _error_line(capsys)


def test_weights_that_are_not_numbers_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model_name_or_path", "a,b", "--weights", "half,half", "--output_dir", "o"])
    assert exit_info.value.code == 2
    assert "--weights half,half" in capsys.readouterr().err
