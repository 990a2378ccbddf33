"""Bad input to the GZ-LLaVA processor and model: each class gets one clear error naming what is at fault.

One test per input class of issue 8 (items 5, 6, 10, 12): image URLs (slow, dripping, 404, huge, oversized, FITS),
FITS and arrays (header sizes, band axis, NaN/inf/constant, tiny, empty, complex), config, checkpoint files and
model calls. Tiny models from gzllava.tiny; URLs are served by a loopback http.server thread.
"""

import io
import json
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import gzllava  # noqa: F401  (registers the Auto classes)
from gzllava.hub import save_for_hub
from gzllava.testing import ImageServer
from gzllava.tiny import tiny_model_and_processor, toy_galaxy
from processing_gzllava import chat_prompt
from modeling_gzllava import GZLlavaForConditionalGeneration
from image_processing_gzllava import ImageInputError, load_image


fits = pytest.importorskip("astropy.io.fits")


def _fits_bytes(data) -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32)).writeto(buffer)
    return buffer.getvalue()


def _galaxy_cube(bands: int = 3, size: int = 24, seed: int = 0) -> np.ndarray:  # (bands, H, W)
    rng = np.random.default_rng(seed)
    cube = rng.normal(0.0, 0.01, (bands, size, size))
    y, x = np.mgrid[:size, :size] - size / 2
    for band in range(bands):
        cube[band] += (band + 1) * np.exp(-np.hypot(x, y) / 3.0)
    return cube.astype(np.float32)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header says width x height, with no pixel data: only a decoder would notice it is empty."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def tiny_mlp():
    return tiny_model_and_processor("mlp2x_gelu")


@pytest.fixture
def image():
    return toy_galaxy()


@pytest.fixture(scope="module")
def server():
    png = io.BytesIO()
    toy_galaxy(size=32).save(png, format="PNG")
    cube = _fits_bytes(_galaxy_cube())
    files = {
        "/galaxy.png": (png.getvalue(), "image/png"),
        "/huge.png": (_png_header_only(12000, 12000), "image/png"),
        "/big.bin": (b"\0" * 300_000, "application/octet-stream", False),  # no Content-Length: capped while streaming
        "/big-declared.bin": (b"\0" * 300_000, "application/octet-stream"),
        "/cutout.fits": (cube, "application/octet-stream"),  # FITS by suffix
        "/cutout": (cube, "application/fits"),  # FITS by content type (as the Legacy Survey cutout service answers)
    }
    with ImageServer(files) as running:
        yield running


# --- image URLs (issue 8 item 5) ---------------------------------------------------------------------------------


def test_url_that_never_answers_times_out_naming_the_url(server):
    url = server.url("/slow")
    start = time.monotonic()
    with pytest.raises(ImageInputError, match=rf"Cannot download image {url}: no complete answer within 0.5 s"):
        load_image(url, timeout=0.5)
    assert time.monotonic() - start < 5


def test_url_that_drips_bytes_forever_stops_at_the_timeout(server):
    start = time.monotonic()
    with pytest.raises(ImageInputError, match=r"/drip: no complete answer within 1 s"):
        load_image(server.url("/drip"), timeout=1.0)
    assert time.monotonic() - start < 5


def test_url_404_names_the_url_and_the_http_status(server):
    url = server.url("/missing.png")
    with pytest.raises(ImageInputError, match=rf"Cannot download image {url}: HTTP 404 Not Found"):
        load_image(url)


def test_url_of_a_huge_png_is_refused_from_its_header_before_decoding(server):
    # The file holds no pixel data: any decoding attempt would fail as "truncated"; the size check must come first.
    with pytest.raises(ImageInputError, match=r"huge\.png is 12000x12000 pixels, above the limit of 67108864"):
        load_image(server.url("/huge.png"))


def test_url_body_above_the_byte_cap_is_refused_while_streaming(server):
    for path in ("/big.bin", "/big-declared.bin"):
        with pytest.raises(ImageInputError, match=rf"{path}: .*above the limit of 100000|{path}: more than 100000 bytes"):
            load_image(server.url(path), max_bytes=100_000)


def test_fits_url_is_read_as_fits_by_suffix_or_content_type(server, tmp_path):
    path = tmp_path / "cutout.fits"
    path.write_bytes(_fits_bytes(_galaxy_cube()))
    expected = np.asarray(load_image(path, stretch="percentile"))
    for route in ("/cutout.fits", "/cutout"):
        assert np.array_equal(np.asarray(load_image(server.url(route), stretch="percentile")), expected), route


def test_processor_applies_its_url_limits(server):
    _, processor = tiny_model_and_processor()
    processor.url_timeout = 0.5
    with pytest.raises(ImageInputError, match=r"/slow: no complete answer within 0.5 s"):
        processor(images=[server.url("/slow")], text=[chat_prompt(processor)], return_tensors="pt")
    inputs = processor(images=[server.url("/galaxy.png")], text=[chat_prompt(processor)], return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 32, 32)


# --- FITS and arrays (issue 8 items 6 and 10) ----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_fits_size_is_checked_from_the_header_before_reading_the_data(tmp_path):
    header = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": 9000, "NAXIS2": 9000})
    path = tmp_path / "wide-field.fits"
    path.write_bytes(header.tostring().encode())  # a header promising 9000x9000 floats, and no data at all
    start = time.monotonic()
    with pytest.raises(ImageInputError, match=r"wide-field\.fits is 9000x9000 pixels, above the limit of 1000000"):
        load_image(path, max_pixels=1_000_000)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("layout", ["bands first", "bands last"])
def test_five_band_cubes_keep_their_image_shape(tmp_path, layout):
    cube = _galaxy_cube(bands=5, size=40)  # (5, H, W), u g r i z
    data = cube if layout == "bands first" else np.transpose(cube, (1, 2, 0))  # (H, W, 5)
    path = tmp_path / "ugriz.fits"
    fits.PrimaryHDU(data).writeto(path)
    north_up = cube[:, ::-1]  # a FITS file is shown north up (its row 0 is the bottom); an array as it is stored
    from_file = np.asarray(load_image(path))
    from_array = np.asarray(load_image(north_up if layout == "bands first" else np.transpose(north_up, (1, 2, 0))))
    assert from_file.shape == (40, 40, 3) and from_array.shape == (40, 40, 3)
    assert np.array_equal(from_file, from_array)
    assert np.array_equal(from_file, np.asarray(load_image(north_up)))  # the same picture whichever axis holds the bands


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("all NaN", np.full((16, 16), np.nan), "no finite pixel values"),
        ("all inf", np.full((3, 16, 16), np.inf), "no finite pixel values"),
        ("constant", np.full((16, 16), 7.5), r"is constant \(every finite pixel is 7.5\)"),
        ("1x1", np.ones((1, 1)), r"is 1x1 pixels, below the minimum of 8x8"),
        ("0x0", np.zeros((0, 0)), r"is 0x0 pixels, below the minimum of 8x8"),
        ("complex", np.ones((16, 16), dtype=np.complex64), r"has dtype complex64: expected real numbers"),
        ("4-D", np.ones((2, 2, 16, 16)), r"has shape \(2, 2, 16, 16\): expected"),
    ],
)
def test_arrays_with_nothing_to_show_are_refused_by_name(name, data, message):
    with pytest.raises(ImageInputError, match=rf"Image (array )?cutout-7 .*{message}|Image (array )?cutout-7 {message}"):
        load_image(data, name="cutout-7")


def test_non_finite_fits_is_refused_naming_the_file_and_partial_nans_become_sky(tmp_path):
    path = tmp_path / "blank.fits"
    fits.PrimaryHDU(np.full((3, 16, 16), np.nan, dtype=np.float32)).writeto(path)
    with pytest.raises(ImageInputError, match=r"blank\.fits has no finite pixel values"):
        load_image(path)
    cube = _galaxy_cube(size=32)
    cube[:, :4, :4] = np.nan  # a masked corner
    rgb = np.asarray(load_image(cube))
    sky = np.median(rgb[20:, 20:])
    assert abs(float(np.median(rgb[:4, :4])) - sky) < 30  # sky-like, not black or white
    assert rgb[16, 16].mean() > 150  # the galaxy is still there


def test_tiny_pil_image_is_refused():
    with pytest.raises(ImageInputError, match=r"Image Image is 1x1 pixels, below the minimum of 8x8"):
        load_image(Image.new("RGB", (1, 1), (200, 10, 10)))


# --- configs, checkpoint files and model calls (issue 8 items 10 and 12) -------------------------------------------


def test_unknown_projector_activation_is_named_at_construction_and_when_loading(tmp_path, tiny_saved):
    from configuration_gzllava import GZLlavaConfig
    from transformers import AutoConfig

    with pytest.raises(ValueError, match=r"GZLlavaConfig: invalid projector_hidden_act='nope'; expected an activation"):
        GZLlavaConfig(projector_hidden_act="nope")
    config = json.loads((tiny_saved / "config.json").read_text())
    config["projector_hidden_act"] = "nope"
    folder = tmp_path / "bad-act"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"invalid projector_hidden_act='nope'"):
        AutoConfig.from_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_saved(tmp_path_factory):
    model, processor = tiny_model_and_processor()
    return save_for_hub(model, processor, tmp_path_factory.mktemp("tiny") / "repo")


def _copy_folder(source, destination):
    import shutil

    shutil.copytree(source, destination)
    return destination


def test_truncated_safetensors_file_is_named(tmp_path, tiny_saved):
    folder = _copy_folder(tiny_saved, tmp_path / "truncated")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5])
    with pytest.raises(OSError, match=rf"Cannot read the weights file {weights}: .*truncated or not a safetensors file"):
        GZLlavaForConditionalGeneration.from_pretrained(folder)


def test_checkpoint_without_projector_weights_is_an_error(tmp_path, tiny_saved):
    from safetensors.torch import load_file, save_file

    folder = _copy_folder(tiny_saved, tmp_path / "no-projector")
    weights = folder / "model.safetensors"
    tensors = {key: value for key, value in load_file(weights).items() if "multi_modal_projector" not in key}
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=rf"{folder}: the checkpoint has no weights for 4 vision-tower/projector .*multi_modal_projector"):
        GZLlavaForConditionalGeneration.from_pretrained(folder)
    from modeling_gzllava import GZLlavaModel

    with pytest.raises(ValueError, match=r"no weights for 4 vision-tower/projector"):
        GZLlavaModel.from_pretrained(folder)


def test_image_tokens_without_pixel_values_are_an_error(tiny_mlp, image):
    model, processor = tiny_mlp
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    with pytest.raises(ValueError, match=r"input_ids hold 16 image token\(s\) .* but no pixel_values"):
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    with pytest.raises(ValueError, match=r"no pixel_values"):
        model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=2)
    text_only = processor.tokenizer("Describe a spiral galaxy.", return_tensors="pt")
    with torch.no_grad():
        assert model(**text_only).logits.shape[1] == text_only["input_ids"].shape[1]  # text alone still works


def test_plain_4bit_config_leaves_vision_tower_projector_and_head_unquantised(tiny_saved, image):
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True)
    quantized = GZLlavaForConditionalGeneration.from_pretrained(tiny_saved, quantization_config=config)
    kinds = {name: type(module).__name__ for name, module in quantized.named_modules()}
    vision_kinds = {kind for name, kind in kinds.items() if name.startswith("model.vision_tower") and name.endswith("_proj")}
    assert vision_kinds == {"Linear"}
    assert kinds["model.multi_modal_projector.linear_1"] == "Linear" and kinds["lm_head"] == "Linear"
    assert kinds["model.language_model.layers.0.self_attn.q_proj"] == "Linear4bit"
    assert config.llm_int8_skip_modules is None  # the caller's config is not modified
    # An explicit skip list is the user's choice and is kept as given.
    custom = GZLlavaForConditionalGeneration.from_pretrained(
        tiny_saved, quantization_config=BitsAndBytesConfig(load_in_4bit=True, llm_int8_skip_modules=["lm_head"]))
    assert any(type(module).__name__ == "Linear4bit" for module in custom.model.vision_tower.modules())
