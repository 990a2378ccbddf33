"""GZ-LLaVA processor: galaxy images + chat text -> model inputs.

Like transformers' `LlavaProcessor`, it alone expands each `<image>` placeholder into the number of
image tokens the model's projector produces (patches, or the resampler's queries, optionally wrapped
in begin/end-of-image tokens). On top of that it reads the images astronomers actually have: PIL
images in any mode, numpy/torch arrays, file paths, raw bytes and FITS cutouts, with clear errors for
corrupt files and absurdly large images, optional per-image standardisation of the pixel values
(galaxy cutouts are mostly dark sky) and random 90-degree rotations/flips for training.
"""

import io
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from transformers.processing_utils import ProcessorMixin


try:  # FITS support is an optional extra (`pip install gz-llava[fits]`)
    from astropy.io import fits
except ImportError:
    fits = None


FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fz")
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192
DEFAULT_PROMPT = "Describe this galaxy's morphology."

# llava-1.5 style turns. `{% generation %}` marks what the assistant says, so TRL's assistant-only loss
# (return_assistant_tokens_mask) trains on the answers only; the leading space sits inside the marker so
# the first answer token is counted.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}"
    "{%- set blocks = [{'type': 'text', 'text': message['content']}] -%}"
    "{%- else -%}{%- set blocks = message['content'] -%}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- for block in blocks if block['type'] == 'text' -%}{{ block['text'] }}{%- endfor -%}{{ '\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ 'USER: ' }}"
    "{%- for block in blocks -%}"
    "{%- if block['type'] == 'image' -%}{{ '<image>\n' }}"
    "{%- elif block['type'] == 'text' -%}{{ block['text'] }}{%- endif -%}"
    "{%- endfor -%}{{ '\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ 'ASSISTANT:' }}{% generation %}"
    "{%- for block in blocks if block['type'] == 'text' -%}{{ ' ' + block['text'] }}{%- endfor -%}"
    "{{ eos_token }}{% endgeneration %}{{ '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)


def _describe(image, name):
    return name or (str(image) if isinstance(image, (str, os.PathLike)) else type(image).__name__)


def stretch_to_uint8(data: np.ndarray, method: str = "asinh") -> np.ndarray:
    """Map float data (H, W) or (H, W, C) to uint8 with an astronomical stretch, jointly over channels.

    `asinh`: sky-subtracted arcsinh stretch (Lupton et al. 2004), keeps faint arms and bright cores;
    `percentile`: linear between the 0.5th and 99.5th percentiles.
    """
    data = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if method == "percentile":
        low, high = np.percentile(data, [0.5, 99.5])
        scaled = (data - low) / max(high - low, 1e-12)
    elif method == "asinh":
        sky = np.median(data)
        signal = data - sky
        scale = max(np.percentile(signal, 99.5), 1e-12)
        softening = 0.1  # fraction of the bright end where the stretch turns from linear to logarithmic
        scaled = np.arcsinh(signal / (softening * scale)) / np.arcsinh(1.0 / softening)
    else:
        raise ValueError(f"Unknown stretch {method!r}: expected 'asinh' or 'percentile'.")
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _bands_to_rgb(data: np.ndarray, stretch: str) -> Image.Image:
    """(H, W) grey or (C, H, W) bands, bluest first (g, r, z as in DECaLS), -> RGB with the reddest band in R."""
    if data.ndim == 2:
        return Image.fromarray(stretch_to_uint8(data, stretch)).convert("RGB")
    if data.ndim != 3 or data.shape[0] < 1:
        raise ValueError(f"expected a (H, W) image or a (bands, H, W) cube, got shape {data.shape}")
    bands = data[:3]
    if bands.shape[0] == 1:
        bands = np.repeat(bands, 3, axis=0)
    elif bands.shape[0] == 2:  # two bands: the missing middle one is their mean
        bands = np.stack([bands[0], bands.mean(axis=0), bands[1]])
    rgb = stretch_to_uint8(np.transpose(bands[::-1], (1, 2, 0)), stretch)  # (H, W, 3): z->R, r->G, g->B
    return Image.fromarray(rgb, mode="RGB")


def _read_fits(source, name: str, stretch: str) -> Image.Image:
    if fits is None:
        raise ImportError(f"Reading the FITS file {name} needs astropy: pip install 'gz-llava[fits]'.")
    source = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with fits.open(source, memmap=False) as hdul:
            hdu = next((h for h in hdul if getattr(h, "data", None) is not None and h.data.ndim >= 2), None)
            if hdu is None:
                raise ValueError("no image HDU")
            data = np.asarray(hdu.data, dtype=np.float64)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"Cannot read FITS image {name}: {error}") from error
    return _bands_to_rgb(np.squeeze(data) if data.ndim > 3 else data, stretch)


def _pil_to_rgb(image: Image.Image, stretch: str) -> Image.Image:
    """Every PIL mode to a sensible RGB image: transparency over black sky, high bit depths stretched, CMYK converted."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit data: a plain convert would clip to white
        return _bands_to_rgb(np.asarray(image, dtype=np.float64), "percentile" if stretch == "asinh" else stretch)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "RGBA", "PA", "La", "RGBa"):
        background = Image.new("RGB", image.size, (0, 0, 0))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def load_image(image, name: str | None = None, stretch: str = "asinh", max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
    """A PIL RGB image from a PIL image, numpy/torch array, path, URL, bytes or FITS file/bytes.

    Raises ValueError naming the image for corrupt or truncated data and for images above `max_pixels`.
    """
    label = _describe(image, name)
    if isinstance(image, Path):
        image = str(image)
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        from transformers.image_utils import load_image as load_url

        image = load_url(image)
    elif isinstance(image, str):
        if not os.path.isfile(image):
            raise FileNotFoundError(f"Image file not found: {image}")
        if image.lower().endswith(FITS_SUFFIXES):
            return _check_size(_read_fits(image, label, stretch), label, max_pixels)
        image = _open_pil(image, label, max_pixels)
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if data[:9] == b"SIMPLE  =":
            return _check_size(_read_fits(data, label, stretch), label, max_pixels)
        image = _open_pil(io.BytesIO(data), label, max_pixels)
    elif isinstance(image, dict) and ("bytes" in image or "path" in image):  # a datasets.Image() cell, undecoded
        return load_image(image.get("bytes") or image.get("path"), name or image.get("path"), stretch, max_pixels)
    elif not isinstance(image, Image.Image):
        if hasattr(image, "detach"):  # torch tensor; numpy has no bfloat16
            image = image.detach().cpu()
            image = (image.float() if image.is_floating_point() else image).numpy()
        if not isinstance(image, np.ndarray):
            raise TypeError(f"Unsupported image type {type(image).__name__} for {label}: expected PIL, numpy, torch, path or bytes.")
        image = _array_to_pil(image, stretch)
    return _check_size(_pil_to_rgb(image, stretch), label, max_pixels)


def _check_size(image: Image.Image, label: str, max_pixels: int) -> Image.Image:
    if image.width * image.height > max_pixels:
        raise ValueError(
            f"Image {label} is {image.width}x{image.height} pixels, above the limit of {max_pixels} "
            "(max_image_pixels); cut it out or resize it first."
        )
    return image


def _open_pil(source, label: str, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(source)
        _check_size(image, label, max_pixels)  # the header gives the size: refuse before decoding a bomb
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"Cannot read image {label}: corrupt, truncated or not an image ({error})") from error
    return ImageOps.exif_transpose(image)


def _array_to_pil(array: np.ndarray, stretch: str) -> Image.Image:
    """(H, W), (H, W, C) or (C, H, W) arrays; uint8 used as is, [0, 1] floats scaled, anything else stretched."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"Unsupported image array shape {array.shape}: expected (H, W), (H, W, C) or (C, H, W).")
    if array.dtype == np.uint8:
        return Image.fromarray(array)
    if np.issubdtype(array.dtype, np.floating) and np.nanmin(array) >= 0.0 and np.nanmax(array) <= 1.0:
        return Image.fromarray((array * 255.0 + 0.5).astype(np.uint8))
    if array.ndim == 3:
        array = array[..., :3]
    return Image.fromarray(stretch_to_uint8(array, stretch))


def random_rot90_flip(image: Image.Image, rng: random.Random) -> Image.Image:
    """One of the 8 symmetries of the square: galaxies have no preferred orientation on the sky."""
    image = image.rotate(90 * rng.randrange(4), expand=True)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


class GZLlavaProcessor(ProcessorMixin):
    r"""
    An image processor (CLIP or SigLIP) and a tokenizer with the GZ-LLaVA chat template.

    Args:
        patch_size (`int`): the vision tower's patch size (patch projectors).
        vision_feature_select_strategy (`str`): `"default"` drops the CLS token, `"full"` keeps it (as the model's config).
        num_additional_image_tokens (`int`): tokens the vision tower adds to the patches (CLS: 1).
        num_query_tokens (`int`, *optional*): set for the resampler projector: every image becomes this many tokens.
        image_token / boi_token / eoi_token (`str`): the placeholder and the optional begin/end-of-image delimiters.
        image_standardization (`bool`): standardise each image's pixel values (zero mean, unit variance) after the image
            processor; needed to learn from dark-sky cutouts with an untrained vision tower.
        stretch (`str`): `"asinh"` or `"percentile"` for FITS and high-bit-depth images.
        max_image_pixels (`int`): images with more pixels are refused (no decompression bombs).
        default_prompt (`str`): the question asked when a pipeline gets an image and no text.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        chat_template=None,
        patch_size=None,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        num_query_tokens=None,
        image_token="<image>",
        boi_token=None,
        eoi_token=None,
        image_standardization=False,
        stretch="asinh",
        max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
        default_prompt=DEFAULT_PROMPT,
        **kwargs,
    ):
        self.patch_size = patch_size
        self.vision_feature_select_strategy = vision_feature_select_strategy
        self.num_additional_image_tokens = num_additional_image_tokens
        self.num_query_tokens = num_query_tokens
        self.image_token = image_token
        self.boi_token = boi_token
        self.eoi_token = eoi_token
        self.image_standardization = image_standardization
        self.stretch = stretch
        self.max_image_pixels = max_image_pixels
        self.default_prompt = default_prompt
        self.augment = False  # random rot90/flip; switched on for training only, never saved
        self._rng = random.Random(0)
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"The tokenizer has no {image_token!r} token: compose the model with gzllava.compose to add it.")
        if patch_size is None and num_query_tokens is None:
            raise ValueError("GZLlavaProcessor needs patch_size (patch projectors) or num_query_tokens (resampler).")
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHAT_TEMPLATE)

    def num_image_tokens(self, height: int, width: int) -> int:
        """`<image>` tokens for one image of the processed size (without boi/eoi)."""
        if self.num_query_tokens is not None:
            return self.num_query_tokens
        count = (height // self.patch_size) * (width // self.patch_size) + self.num_additional_image_tokens
        return count - 1 if self.vision_feature_select_strategy == "default" else count

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        height, width = image_inputs["pixel_values"][image_idx].shape[-2:]
        tokens = self.image_token * self.num_image_tokens(height, width)
        return f"{self.boi_token}{tokens}{self.eoi_token}" if self.boi_token else tokens

    def _load(self, images):
        """Nested lists of any supported image input -> the same nesting of RGB PIL images."""
        if isinstance(images, (list, tuple)):
            return [self._load(image) for image in images]
        image = load_image(images, stretch=self.stretch, max_pixels=self.max_image_pixels)
        return random_rot90_flip(image, self._rng) if self.augment else image

    def __call__(self, images=None, text=None, **kwargs):
        if images is not None:
            images = self._load(images)
            texts = [text] if isinstance(text, str) else text
            if texts is not None and isinstance(images, list) and len(images) == len(texts):
                for index, (sample_images, sample_text) in enumerate(zip(images, texts)):
                    n_images = len(sample_images) if isinstance(sample_images, list) else 1
                    n_placeholders = sample_text.count(self.image_token)
                    if isinstance(sample_images, list) and n_images != n_placeholders:
                        raise ValueError(
                            f"Sample {index} has {n_images} image(s) but {n_placeholders} {self.image_token} "
                            "placeholder(s) in its text: each image needs exactly one placeholder."
                        )
        # ProcessorMixin refuses a truncation that cuts image tokens ("Mismatch in `image` token count ...").
        inputs = super().__call__(images=images, text=text, **kwargs)
        if images is not None and "pixel_values" in inputs and self.image_standardization:
            inputs["pixel_values"] = self._standardize(inputs["pixel_values"])
        return inputs

    @staticmethod
    def _standardize(pixel_values):  # (N, C, H, W): each image to zero mean, unit variance
        if isinstance(pixel_values, (list, tuple)):  # no return_tensors: a list of (C, H, W) arrays
            pixel_values = np.stack([np.asarray(p) for p in pixel_values])
        flat = pixel_values.reshape(pixel_values.shape[0], -1)
        mean = flat.mean(1).reshape(-1, *[1] * (pixel_values.ndim - 1))
        std = flat.std(1).reshape(-1, *[1] * (pixel_values.ndim - 1))
        return (pixel_values - mean) / (std + 1e-6)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values"]


__all__ = ["GZLlavaProcessor", "load_image", "stretch_to_uint8", "random_rot90_flip", "CHAT_TEMPLATE"]
