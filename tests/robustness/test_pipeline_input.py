"""Bad or unusual input to GZ-LLaVA through transformers' `pipeline` and a saved model folder (issue 8 items 5, 8, 11, 12).

The folders are written by `save_for_hub` (the same code path as training's export); the "image-to-text" pipeline
is the folder's own remote code, loaded as a user loads it (`trust_remote_code=True`).
"""

import io

import numpy as np
import pytest
import torch
from transformers import pipeline

import gzllava  # noqa: F401  (registers the Auto classes for local folders)
from gzllava.hub import save_for_hub
from gzllava.testing import ImageServer
from gzllava.tiny import tiny_model_and_processor, toy_galaxy
from image_processing_gzllava import load_image


fits = pytest.importorskip("astropy.io.fits")

QUESTIONS = [
    "Describe this galaxy.",
    "Is there any sign of a bar feature through the centre of the galaxy?",
    "How many spiral arms are there?",
    "Is the galaxy currently merging or is there any sign of tidal debris?",
]


def _cube(size: int = 32) -> np.ndarray:  # (3, H, W) g, r, z with a bright core and faint extended light
    y, x = np.mgrid[:size, :size] - size / 2
    radius = np.hypot(x, y)
    rng = np.random.default_rng(0)
    return np.stack([scale * (np.exp(-radius / 2) + 0.05 * np.exp(-radius / 10)) + rng.normal(0, 0.002, (size, size))
                     for scale in (1.0, 1.5, 2.0)]).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved tiny GZ-LLaVA whose processor was saved with the percentile stretch."""
    model, processor = tiny_model_and_processor()
    processor.stretch = "percentile"
    return save_for_hub(model, processor, tmp_path_factory.mktemp("pipe") / "repo")


@pytest.fixture(scope="module")
def describer(saved):
    return pipeline("image-to-text", model=str(saved), trust_remote_code=True)


@pytest.fixture(scope="module")
def fits_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("fits") / "cutout.fits"
    fits.PrimaryHDU(_cube()).writeto(path)
    return path


def _record_inputs(pipe, monkeypatch):
    """Every preprocessed model input of `pipe`, in call order."""
    seen = []
    original = pipe.preprocess

    def preprocess(*args, **kwargs):
        inputs = original(*args, **kwargs)
        seen.append({key: value for key, value in inputs.items() if isinstance(value, torch.Tensor)})
        return inputs

    monkeypatch.setattr(pipe, "preprocess", preprocess)
    return seen


def _pixels(processor, image):
    return processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]


def test_pipeline_reads_fits_with_the_saved_stretch(describer, fits_path, monkeypatch):
    assert describer.processor.stretch == "percentile"
    seen = _record_inputs(describer, monkeypatch)
    describer(str(fits_path), generate_kwargs={"max_new_tokens": 2})
    percentile = _pixels(describer.processor, load_image(fits_path, stretch="percentile"))
    asinh = _pixels(describer.processor, load_image(fits_path, stretch="asinh"))
    assert not torch.allclose(percentile, asinh)  # the two stretches do differ on this cutout
    torch.testing.assert_close(seen[0]["pixel_values"], percentile)


def test_pipeline_fits_url_gets_the_saved_stretch_and_a_404_names_the_url(describer, fits_path, monkeypatch):
    seen = _record_inputs(describer, monkeypatch)
    with ImageServer({"/cutout": (fits_path.read_bytes(), "application/fits")}) as server:
        describer(server.url("/cutout"), generate_kwargs={"max_new_tokens": 2})
        with pytest.raises(ValueError, match=rf"Cannot download image {server.url('/gone.jpg')}: HTTP 404"):
            describer(server.url("/gone.jpg"), generate_kwargs={"max_new_tokens": 2})
        # image + text through the stock image-text-to-text route of the same pipeline: same loader
        describer(images=server.url("/cutout"), text="Is there a bar?", generate_kwargs={"max_new_tokens": 2})
    expected = _pixels(describer.processor, load_image(fits_path, stretch="percentile"))
    torch.testing.assert_close(seen[0]["pixel_values"], expected)
    torch.testing.assert_close(seen[-1]["pixel_values"], expected)


def test_empty_prompt_is_an_error_not_the_default_question(describer):
    for empty in ("", "   "):
        with pytest.raises(ValueError, match=r"prompt is empty: pass a question, or leave prompt out"):
            describer(toy_galaxy(), prompt=empty, generate_kwargs={"max_new_tokens": 2})


def test_prompt_that_already_holds_the_image_placeholder_is_used_as_is(describer, monkeypatch):
    seen = _record_inputs(describer, monkeypatch)
    prompt = "USER: <image>\nIs there any sign of a bar?\nASSISTANT:"
    out = describer(toy_galaxy(), prompt=prompt, generate_kwargs={"max_new_tokens": 3})
    assert isinstance(out[0]["generated_text"], str)
    ids = seen[0]["input_ids"][0]
    image_token_id = describer.model.config.image_token_id
    assert int((ids == image_token_id).sum()) == 16  # one image, expanded once
    text = describer.processor.tokenizer.decode(ids[ids != image_token_id])
    assert text.count("USER:") == 1 and "Is there any sign of a bar?" in text  # not wrapped in a second chat turn


def test_saved_folder_pads_on_the_left(saved):
    import json

    assert json.loads((saved / "tokenizer_config.json").read_text())["padding_side"] == "left"


def test_training_collator_still_pads_on_the_right_with_a_saved_processor(saved):
    from transformers import AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    processor = AutoProcessor.from_pretrained(saved)
    assert processor.tokenizer.padding_side == "left"
    collator = DataCollatorForVisionLanguageModeling(processor=processor, assistant_only_loss=True)
    examples = [{"images": [toy_galaxy(seed)], "messages": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": [{"type": "text", "text": "No bar."}]}]}
        for seed, question in enumerate(QUESTIONS[:2])]
    batch = collator(examples)
    mask = batch["attention_mask"]
    assert mask[:, 0].all() and not mask[:, -1].all()  # TRL asks for right padding in each call; the saved side is not used
    assert (batch["labels"][mask == 0] == -100).all()


def test_batched_pipeline_answers_equal_one_by_one_answers(saved):
    chat = pipeline("image-text-to-text", model=str(saved))
    chats = [[{"role": "user", "content": [{"type": "image", "image": toy_galaxy(seed)}, {"type": "text", "text": q}]}]
             for seed, q in enumerate(QUESTIONS)]
    options = {"max_new_tokens": 6, "return_full_text": False, "generate_kwargs": {"do_sample": False}}
    batched = [out[0]["generated_text"] for out in chat(text=chats, batch_size=4, **options)]
    alone = [chat(text=conversation, **options)[0]["generated_text"] for conversation in chats]
    assert batched == alone
    assert len(set(alone)) > 1  # the answers depend on the input: the comparison is not vacuous


def test_seed_4bit_pattern_leaves_the_vision_tower_unquantised(saved):
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig

    pipe = pipeline("image-to-text", model=str(saved), trust_remote_code=True,
                    model_kwargs={"quantization_config": BitsAndBytesConfig(load_in_4bit=True)})
    kinds = {name: type(module).__name__ for name, module in pipe.model.named_modules()}
    assert {kind for name, kind in kinds.items() if name.startswith("model.vision_tower") and name.endswith("_proj")} == {"Linear"}
    assert kinds["model.multi_modal_projector.linear_1"] == "Linear" and kinds["lm_head"] == "Linear"
    assert kinds["model.language_model.layers.0.self_attn.q_proj"] == "Linear4bit"
    out = pipe(toy_galaxy(), prompt="USER: <image>\nWhat is the shape of this galaxy?\nASSISTANT:",
               generate_kwargs={"max_new_tokens": 3})
    assert isinstance(out[0]["generated_text"], str)


def test_png_bytes_and_arrays_go_through_the_pipeline(describer):
    png = io.BytesIO()
    toy_galaxy(size=40).save(png, format="PNG")
    for image in (png.getvalue(), np.asarray(toy_galaxy(size=40))):
        assert isinstance(describer(image, generate_kwargs={"max_new_tokens": 2})[0]["generated_text"], str)
    with pytest.raises(ValueError, match=r"below the minimum of 8x8"):
        describer(np.ones((2, 2), dtype=np.float32) * np.arange(2), generate_kwargs={"max_new_tokens": 2})
