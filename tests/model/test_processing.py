"""GZLlavaProcessor: every image input a user has, token expansion per projector, chat template, clear errors."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gzllava.tiny import toy_galaxy
from image_processing_gzllava import load_image, stretch_to_uint8
from processing_gzllava import chat_prompt


def test_expands_image_tokens_for_patches_and_for_the_resampler_with_delimiters(tiny_mlp, tiny_resampler, image):
    model, processor = tiny_mlp
    ids = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")["input_ids"][0].tolist()
    assert ids.count(model.config.image_token_id) == 16

    model, processor = tiny_resampler
    ids = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")["input_ids"][0].tolist()
    tokenizer = processor.tokenizer
    boi, eoi = tokenizer.convert_tokens_to_ids("<boi>"), tokenizer.convert_tokens_to_ids("<eoi>")
    start = ids.index(boi)
    assert ids[start + 1 : start + 5] == [model.config.image_token_id] * 4 and ids[start + 5] == eoi
    assert ids.count(model.config.image_token_id) == 4


def test_every_pil_mode_becomes_a_sensible_rgb_image():
    grey = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))
    modes = {
        "L": Image.fromarray(grey),
        "LA": Image.merge("LA", [Image.fromarray(grey), Image.new("L", (32, 32), 255)]),
        "P": Image.fromarray(grey).convert("P"),
        "RGBA": Image.fromarray(np.dstack([grey] * 3 + [np.full_like(grey, 255)])),
        "I;16": Image.fromarray(grey.astype(np.uint16) * 200),
        "F": Image.fromarray(grey.astype(np.float32) * 1e-3),
        "CMYK": Image.fromarray(np.dstack([grey] * 3)).convert("CMYK"),
        "1": Image.fromarray(grey).convert("1"),
    }
    for mode, picture in modes.items():
        assert picture.mode == mode
        rgb = np.asarray(load_image(picture))
        assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8, mode
        # The gradient survives: left is darker than right (a plain convert of I;16 or F would be all white).
        if mode != "1":
            assert rgb[:, :4].mean() < rgb[:, -4:].mean() - 50, mode


def test_transparency_goes_over_black_sky():
    rgba = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    assert np.asarray(load_image(rgba)).max() == 0


def test_arrays_tensors_paths_and_bytes(tmp_path):
    galaxy = toy_galaxy(size=40)
    array = np.asarray(galaxy)
    path = tmp_path / "galaxy.png"
    galaxy.save(path)
    jpeg = io.BytesIO()
    galaxy.save(jpeg, format="JPEG", quality=95)
    inputs = {
        "uint8 HWC": array,
        "float CHW in [0, 1]": array.transpose(2, 0, 1) / 255.0,
        "torch CHW": torch.from_numpy(array.transpose(2, 0, 1).copy()),
        "path str": str(path),
        "pathlib": path,
        "png bytes": path.read_bytes(),
        "jpeg bytes": jpeg.getvalue(),
        "datasets cell": {"bytes": path.read_bytes(), "path": None},
    }
    for name, value in inputs.items():
        rgb = np.asarray(load_image(value))
        assert rgb.shape == (40, 40, 3), name
        assert np.abs(rgb.astype(int) - array).mean() < 3, name


def test_raw_float_data_is_stretched():
    data = np.random.default_rng(0).normal(100.0, 1.0, (16, 16))
    data[6:10, 6:10] += 500.0  # a bright source on the sky
    rgb = np.asarray(load_image(data))
    assert rgb[7, 7].mean() > 200 and np.median(rgb) < 60


@pytest.mark.parametrize("method", ["lupton", "asinh", "percentile"])
def test_stretches_map_sky_dark_and_sources_bright(method):
    data = np.random.default_rng(1).normal(0.0, 1.0, (64, 64))
    data[30:34, 30:34] = 200.0
    out = stretch_to_uint8(data, method)
    assert out.dtype == np.uint8 and out[31, 31] == 255 and np.median(out) < 128


def test_fits_cutouts_three_bands_and_single_band(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    rng = np.random.default_rng(2)
    cube = rng.normal(0.0, 0.01, (3, 24, 24)).astype(np.float32)  # g, r, z
    cube[2, 10:14, 10:14] += 5.0  # bright only in z -> red
    fits.PrimaryHDU(cube).writeto(tmp_path / "cutout.fits")
    rgb = np.asarray(load_image(tmp_path / "cutout.fits"))
    assert rgb.shape == (24, 24, 3)
    assert rgb[12, 12, 0] > 200 and rgb[12, 12, 2] < 100  # z maps to red, g to blue
    single = tmp_path / "single.fits"
    fits.PrimaryHDU(cube[1]).writeto(single)
    assert np.asarray(load_image(single.read_bytes())).shape == (24, 24, 3)  # FITS bytes are recognised too


def test_the_processor_never_augments(tiny_mlp, image):
    """Training augments in gzllava.training.augmentation (resumable); the processor has no switch of its own."""
    _, processor = tiny_mlp
    text = [chat_prompt(processor)]
    seen = {processor(images=[image], text=text, return_tensors="pt")["pixel_values"].numpy().tobytes() for _ in range(8)}
    assert len(seen) == 1
    assert not hasattr(processor, "augment") and "augment" not in processor.to_dict()


def test_image_standardization_gives_zero_mean_unit_variance_per_image():
    from gzllava.tiny import tiny_model_and_processor

    _, processor = tiny_model_and_processor(image_standardization=True)
    pixels = processor(images=[toy_galaxy(1), toy_galaxy(2)], text=[chat_prompt(processor)] * 2, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixels.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(pixels.std(dim=(1, 2, 3)), torch.ones(2), atol=1e-3, rtol=0)


def test_chat_template_marks_only_assistant_turns_for_the_loss(tiny_mlp, image):
    _, processor = tiny_mlp
    # As TRL's vision collator calls it: the image inside the message, assistant mask requested.
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Is there a bar?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "No bar."}]},
    ]
    out = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    if isinstance(ids[0], list):
        ids, mask = ids[0], mask[0]
    answer = processor.tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert answer.strip() == "No bar." + processor.tokenizer.eos_token
    assert "Is there a bar?" not in answer


def test_number_of_images_must_match_the_placeholders(tiny_mlp):
    _, processor = tiny_mlp
    with pytest.raises(ValueError, match=r"1 <image> tokens and 2 images"):
        processor(images=[toy_galaxy(1), toy_galaxy(2)], text=[chat_prompt(processor)], return_tensors="pt")
    with pytest.raises(ValueError, match=r"Sample 1 has 2 image\(s\) but 1 <image> placeholder"):
        processor(images=[[toy_galaxy(1)], [toy_galaxy(2), toy_galaxy(3)]], text=[chat_prompt(processor)] * 2,
                  return_tensors="pt")


def test_max_length_that_would_cut_image_tokens_is_an_error(tiny_mlp, image):
    _, processor = tiny_mlp
    with pytest.raises(ValueError, match=r"Mismatch in `image` token count.*text=\[16\].*truncation"):
        processor(images=[image], text=[chat_prompt(processor)], truncation=True, max_length=8, return_tensors="pt")


def test_corrupt_or_truncated_image_bytes_name_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    good = io.BytesIO()
    toy_galaxy().save(good, format="JPEG")
    path.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(ValueError, match=r"Cannot read image .*broken\.jpg: corrupt, truncated"):
        load_image(path)
    with pytest.raises(ValueError, match=r"Cannot read image bytes"):
        load_image(b"definitely not an image")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")


def test_absurdly_large_images_are_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (3000, 3000)).save(path)
    with pytest.raises(ValueError, match=r"huge\.png is 3000x3000 pixels, above the limit of 1000000"):
        load_image(path, max_pixels=1_000_000)


def test_lupton_stretch_keeps_colours_that_a_per_value_asinh_washes_out():
    data = np.zeros((64, 64, 3))
    colour = np.array([4.0, 2.0, 1.0])  # R:G:B of both sources
    data[4:8, 4:8] = colour * 10.0  # bright
    data[40:44, 40:44] = colour  # faint
    lupton = stretch_to_uint8(data, "lupton").astype(float)
    for pixel in (lupton[5, 5], lupton[41, 41]):
        assert pixel[0] == 255 and abs(pixel[1] / pixel[0] - 0.5) < 0.01 and abs(pixel[2] / pixel[0] - 0.25) < 0.01, pixel
    asinh = stretch_to_uint8(data, "asinh").astype(float)[5, 5]
    assert asinh[2] / max(asinh[0], 1.0) > 0.5  # per-value asinh: the bright source turns towards white
    with pytest.raises(ValueError, match=r"Unknown stretch 'log': expected one of 'lupton', 'asinh', 'percentile'"):
        stretch_to_uint8(data, "log")


def test_fits_bands_follow_their_header_names_and_north_is_up(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    sky = np.zeros((3, 16, 16), dtype=np.float32)  # g, r, z; FITS row 0 is the bottom of the sky
    sky[2, 12:16, 0:4] = 50.0  # z (red) blob: top-left on the sky
    sky[0, 0:4, 12:16] = 50.0  # g (blue) blob: bottom-right
    pictures = []
    for order in ("grz", "zrg", "rzg"):
        header = fits.Header([(f"BAND{i}", band) for i, band in enumerate(order)])
        path = tmp_path / f"{order}.fits"
        fits.PrimaryHDU(sky[["grz".index(band) for band in order]], header=header).writeto(path)
        pictures.append(np.asarray(load_image(path)))
    assert all(np.array_equal(pictures[0], other) for other in pictures[1:])  # the same picture however stored
    rgb = pictures[0].astype(int)  # (H, W, 3), row 0 = top
    assert rgb[1, 1, 0] > 200 and rgb[1, 1, 2] < 30  # z -> R, north up
    assert rgb[14, 14, 2] > 200 and rgb[14, 14, 0] < 30  # g -> B


def test_saved_stretch_keeps_its_meaning_and_new_processors_use_lupton(tiny_mlp, tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    _, processor = tiny_mlp
    assert processor.stretch == "lupton"
    rng = np.random.default_rng(3)
    cube = rng.normal(0.0, 0.05, (3, 24, 24)).astype(np.float32)
    cube[:, 8:16, 8:16] += np.array([1.0, 2.0, 6.0], dtype=np.float32)[:, None, None]
    path = tmp_path / "cutout.fits"
    fits.PrimaryHDU(cube).writeto(path)
    processor.save_pretrained(tmp_path / "old")
    config = tmp_path / "old" / "processor_config.json"
    config.write_text(config.read_text().replace('"stretch": "lupton"', '"stretch": "asinh"'))  # a folder saved before lupton
    old = type(processor).from_pretrained(tmp_path / "old")
    assert old.stretch == "asinh"
    asinh, lupton = np.asarray(old.load_image(path)), np.asarray(processor.load_image(path))
    assert np.array_equal(asinh, np.asarray(load_image(path, stretch="asinh")))
    assert not np.array_equal(asinh, lupton)
    with pytest.raises(ValueError, match=r"stretch='log': expected one of 'lupton', 'asinh', 'percentile'"):
        type(processor)(processor.image_processor, processor.tokenizer, patch_size=16, stretch="log")
