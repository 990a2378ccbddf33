"""GZ-LLaVA image processing: every image input an astronomer has -> an RGB PIL image, and pixel standardisation.

The pixel half of the GZ-LLaVA processor (`processing_gzllava.py` expands the image tokens and holds the chat
template; resizing and normalising are the wrapped CLIP/SigLIP image processor's). It reads PIL images in any mode,
numpy/torch arrays, file paths, http(s) URLs, raw bytes and FITS cutouts (by suffix, content type or signature; bands
found on either end of a cube, ordered by their BANDn/FILTERn header names, shown north up), stretching raw data
(`stretch_to_uint8`). This is the one image reader of the project: the dataset builder, the evaluation, the chat app
and the processor call `load_image` / `load_fits`, so a FITS cutout gives the same pixels at build time, in evaluation
and at inference. Every refusal is one `ImageInputError` line naming the image: corrupt or truncated files, HTTP
errors, downloads over `timeout` seconds or `max_bytes`, images above `max_pixels` (from the header, before decoding)
or below `min_size`, complex data, and data with nothing to show (all NaN/inf, or constant).

Over 400 lines on purpose: it ships as one remote-code file beside the model (a Hub repo holds flat files), and the
readers share their size checks and band handling.
"""

import gzip
import io
import os
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


try:  # FITS support is an optional extra (`pip install gz-llava[fits]`)
    from astropy.io import fits
except ImportError:
    fits = None

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fz")
FITS_CONTENT_TYPES = ("application/fits", "image/fits", "application/x-fits", "image/x-fits")
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192
DEFAULT_MIN_IMAGE_SIZE = 8  # pixels per side: smaller images carry nothing a vision tower can use
DEFAULT_URL_TIMEOUT = 30.0  # seconds for a whole image download
DEFAULT_MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
MAX_BANDS = 16  # a cube axis this short or shorter is a band axis
STRETCHES = ("lupton", "asinh", "percentile")
DEFAULT_STRETCH = "lupton"
LUPTON_SOFTENING = 0.1  # fraction of the bright end (99.5th percentile) where asinh turns from linear to logarithmic
_WAVELENGTH_ORDER = {band: rank for rank, band in enumerate("ugrizy")}  # blue -> red


class ImageInputError(ValueError):
    """An image that cannot be used, with one line naming it and what was expected.

    `category` sorts the refusal for callers that count them (the dataset builder's Reject reasons): "corrupt",
    "too large", "too small", "blank" (nothing to show), "missing" (a download that failed) or "unsupported".
    """

    def __init__(self, message: str, category: str = "unsupported"):
        super().__init__(message)
        self.category = category


def _describe(image, name):
    return name or (str(image) if isinstance(image, (str, os.PathLike)) else type(image).__name__)


def _fill_non_finite(data: np.ndarray, name: str = "data") -> np.ndarray:
    """Refuse data with nothing to show (no finite value, or one constant value); NaN/inf pixels become the sky (median)."""
    finite = np.isfinite(data)
    if not finite.any():
        raise ImageInputError(f"Image {name} has no finite pixel values (all NaN or infinite): nothing to show.", "blank")
    values = data[finite]
    low, high = values.min(), values.max()
    if low == high:
        raise ImageInputError(f"Image {name} is constant (every finite pixel is {low:g}): nothing to show; check the file.",
                              "blank")
    return data if finite.all() else np.where(finite, data, np.median(values))


def _lupton(data: np.ndarray) -> np.ndarray:
    """Colour-preserving asinh stretch (Lupton et al. 2004) of (H, W) or (H, W, C) data -> floats in [0, 1].

    Each channel's sky (its median) goes to 0; the mean intensity I is stretched as astropy's
    `AsinhStretch(a=LUPTON_SOFTENING)` of I / (its 99.5th percentile), and every channel is scaled by the same
    factor, so colours (band ratios) survive; a pixel brighter than 1 in some channel is scaled down as a whole
    (saturation keeps the hue) instead of clipped.
    """
    rgb = data[..., None] if data.ndim == 2 else data  # (H, W, C)
    rgb = rgb - np.median(rgb, axis=(0, 1), keepdims=True)
    intensity = rgb.mean(axis=-1, keepdims=True)  # (H, W, 1)
    peak = np.percentile(intensity, 99.5)
    if not peak > 0:
        peak = float(intensity.max()) if intensity.max() > 0 else 1.0
    scaled = np.clip(intensity / peak, 1e-12, None)
    a = LUPTON_SOFTENING
    factor = np.arcsinh(np.clip(scaled, 0.0, 1.0) / a) / np.arcsinh(1.0 / a) / scaled
    pixels = np.clip(rgb / peak * factor, 0.0, None)
    pixels /= np.maximum(pixels.max(axis=-1, keepdims=True), 1.0)
    return pixels[..., 0] if data.ndim == 2 else pixels


def stretch_to_uint8(data: np.ndarray, method: str = DEFAULT_STRETCH, name: str = "data") -> np.ndarray:
    """Map float data (H, W) or (H, W, C) to uint8 with an astronomical stretch, jointly over channels.

    `lupton` (default): Lupton et al. (2004) colour-preserving asinh of the summed intensity (`_lupton`);
    `asinh`: sky-subtracted arcsinh of each value on a joint scale (what folders saved before `lupton` existed use);
    `percentile`: linear between the 0.5th and 99.5th percentiles. NaN/inf pixels are set to the sky level;
    data with no finite value or a single constant value is refused (`ImageInputError`, naming `name`).
    """
    if method not in STRETCHES:
        raise ValueError(f"Unknown stretch {method!r}: expected one of {', '.join(map(repr, STRETCHES))}.")
    data = _fill_non_finite(np.asarray(data, dtype=np.float64), name)
    if method == "lupton":
        scaled = _lupton(data)
    elif method == "percentile":
        low, high = np.percentile(data, [0.5, 99.5])
        scaled = (data - low) / max(high - low, 1e-12)
    elif method == "asinh":
        sky = np.median(data)
        signal = data - sky
        scale = max(np.percentile(signal, 99.5), 1e-12)
        softening = 0.1  # fraction of the bright end where the stretch turns from linear to logarithmic
        scaled = np.arcsinh(signal / (softening * scale)) / np.arcsinh(1.0 / softening)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class LoadOptions:
    """How images are read: the stretch for raw data, size limits, and URL download limits."""

    stretch: str = DEFAULT_STRETCH
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    min_size: int = DEFAULT_MIN_IMAGE_SIZE
    timeout: float = DEFAULT_URL_TIMEOUT
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES


def _check_dims(width: int, height: int, label: str, options: LoadOptions) -> None:
    """Size limits, checked from headers/shapes before any pixel is decoded or stretched."""
    if width * height > options.max_pixels:
        raise ImageInputError(
            f"Image {label} is {width}x{height} pixels, above the limit of {options.max_pixels} "
            "(max_image_pixels); cut it out or resize it first.",
            "too large",
        )
    if min(width, height) < options.min_size:
        raise ImageInputError(
            f"Image {label} is {width}x{height} pixels, below the minimum of {options.min_size}x{options.min_size} "
            "(min_image_size).",
            "too small",
        )


def _band_axis(shape: tuple, label: str) -> int:
    """The band axis of a 3-D cube: 0 for (bands, H, W) (the FITS/numpy-from-FITS order), 2 for (H, W, bands)."""
    first, last = shape[0], shape[2]
    if first <= MAX_BANDS and first <= min(shape[1:]):
        return 0
    if last <= MAX_BANDS and last < min(shape[:2]):
        return 2
    raise ImageInputError(
        f"Image {label} has shape {tuple(shape)}: expected (H, W), (bands, H, W) or (H, W, bands) with at most "
        f"{MAX_BANDS} bands."
    )


def _order_bands(data: np.ndarray, names: list | None) -> np.ndarray:
    """(C, H, W) bands -> bluest first, by their filter names when every band has one of u g r i z y (else as stored).

    Named cubes of more than 3 bands keep g, r, z (else g, r, i) when they have them, as the Galaxy Zoo DECaLS colours.
    """
    if not names or len(names) != data.shape[0] or not all(n in _WAVELENGTH_ORDER for n in names):
        return data
    order = sorted(range(len(names)), key=lambda i: _WAVELENGTH_ORDER[names[i]])
    if len(order) > 3:
        for wanted in ("grz", "gri"):
            if all(band in names for band in wanted):
                order = [names.index(band) for band in wanted]
                break
    return data[order]


def _band_names(header, count: int) -> list:
    """Filter names of a cube's bands from its header: BANDn (0-based, Legacy Survey cutouts) or FILTERn (1-based)."""
    names = []
    for i in range(count):
        value = header.get(f"BAND{i}") or header.get(f"FILTER{i + 1}")
        names.append(str(value).strip().lower() if value is not None else None)
    return names


def _bands_to_rgb(data: np.ndarray, stretch: str, label: str = "data", names: list | None = None) -> Image.Image:
    """(H, W) grey or (C, H, W) bands, bluest first (g, r, z as in DECaLS), -> RGB with the reddest band in R.

    `names`: the bands' filter names (reorders them blue -> red, see `_order_bands`). More than 3 bands otherwise: the
    bluest, middle and reddest are used (e.g. u, r, z of ugriz); 2 bands: their mean is the middle.
    """
    if data.ndim == 3:
        data = _order_bands(data, names)
    if data.ndim == 2:
        return Image.fromarray(stretch_to_uint8(data, stretch, label)).convert("RGB")
    if data.ndim != 3 or data.shape[0] < 1:
        raise ImageInputError(f"Image {label}: expected a (H, W) image or a (bands, H, W) cube, got shape {data.shape}.",
                              "unsupported")
    count = data.shape[0]
    if count == 1:
        bands = np.repeat(data, 3, axis=0)
    elif count == 2:  # two bands: the missing middle one is their mean
        bands = np.stack([data[0], data.mean(axis=0), data[1]])
    else:
        bands = data[[0, count // 2, count - 1]] if count > 3 else data
    rgb = stretch_to_uint8(np.transpose(bands[::-1], (1, 2, 0)), stretch, label)  # (H, W, 3): z->R, r->G, g->B
    return Image.fromarray(rgb, mode="RGB")


def _squeezed_shape(shape: tuple) -> tuple:
    """Drop length-1 axes beyond the last two (FITS cubes often carry (1, 1, H, W))."""
    shape = tuple(shape)
    while len(shape) > 2 and 1 in shape[:-2]:
        index = shape[:-2].index(1)
        shape = shape[:index] + shape[index + 1 :]
    return shape


def _read_fits(source, label: str, options: LoadOptions) -> Image.Image:
    """The first image HDU, north up (FITS row 0 is the bottom of the sky image), bands ordered by their header names;
    its size is checked from the header before the data is read. `source`: a path, or the bytes of a (gzipped) file."""
    if fits is None:
        raise ImportError(f"Reading the FITS file {label} needs astropy: pip install 'gz-llava[fits]'.")
    if isinstance(source, (bytes, bytearray)):
        gzipped = bytes(source[:2]) == b"\x1f\x8b"  # astropy only sniffs gzip in files it opens by name
        source = io.BytesIO(source)
        if gzipped:
            source = gzip.GzipFile(fileobj=source)  # decompressed as read: the header is checked before the data
    try:
        with fits.open(source, memmap=False) as hdul:
            hdu, shape = None, ()
            for candidate in hdul:
                if not isinstance(candidate, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
                    continue
                shape = _squeezed_shape(candidate.shape)  # numpy order, from the header: nothing read yet
                if len(shape) >= 2:
                    hdu = candidate
                    break
            if hdu is None:
                raise ImageInputError(f"Cannot read FITS image {label}: no image HDU with 2 or 3 axes.", "unsupported")
            if len(shape) > 3:
                raise ImageInputError(f"Cannot read FITS image {label}: image HDU of shape {shape}; expected 2 or 3 axes.",
                                      "unsupported")
            axis = _band_axis(shape, label) if len(shape) == 3 else None
            height, width = (shape[1], shape[2]) if axis == 0 else shape[:2]
            _check_dims(width, height, label, options)
            data = np.asarray(hdu.data, dtype=np.float32).reshape(shape)
            names = _band_names(hdu.header, shape[axis]) if axis is not None else None
    except ImageInputError:
        raise
    except (OSError, ValueError, TypeError, KeyError, EOFError, zlib.error) as error:
        raise ImageInputError(f"Cannot read FITS image {label}: {error}", "corrupt") from error
    if axis == 2:
        data = np.moveaxis(data, 2, 0)  # (H, W, bands) -> (bands, H, W)
    return _bands_to_rgb(np.flip(data, axis=-2), options.stretch, label, names)  # rows flipped: north up


def _pil_to_rgb(image: Image.Image, stretch: str, label: str = "image") -> Image.Image:
    """Every PIL mode to a sensible RGB image: transparency over black sky, high bit depths stretched, CMYK converted."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit data: a plain convert would clip to white
        data = np.asarray(image, dtype=np.float64)
        return _bands_to_rgb(data, "percentile", label)  # display-ready pictures in more bits: a linear stretch
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "RGBA", "PA", "La", "RGBa"):
        background = Image.new("RGB", image.size, (0, 0, 0))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


_http_clients = {}


def _client():
    """One HTTP client per process (connection pool and TLS context built once; never shared across a fork)."""
    if os.getpid() not in _http_clients:
        import httpx

        _http_clients[os.getpid()] = httpx.Client(follow_redirects=True)
    return _http_clients[os.getpid()]


def _download(url: str, options: LoadOptions) -> tuple[bytes, str]:
    """(body, content type) of an image URL, within `options.timeout` seconds and `options.max_bytes` bytes."""
    import httpx

    deadline = time.monotonic() + options.timeout
    chunks, size = [], 0
    try:
        with _client().stream("GET", url, timeout=options.timeout) as response:
            if response.status_code >= 400:
                raise ImageInputError(f"Cannot download image {url}: HTTP {response.status_code} {response.reason_phrase}.",
                                      "missing")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > options.max_bytes:
                raise ImageInputError(
                    f"Cannot download image {url}: {int(declared)} bytes, above the limit of {options.max_bytes} "
                    "(max_download_bytes).",
                    "too large",
                )
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > options.max_bytes:
                    raise ImageInputError(
                        f"Cannot download image {url}: more than {options.max_bytes} bytes (max_download_bytes).",
                        "too large",
                    )
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("download too slow")
                chunks.append(chunk)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    except httpx.TimeoutException as error:
        raise ImageInputError(f"Cannot download image {url}: no complete answer within {options.timeout:g} s (url_timeout).",
                              "missing") from error
    except httpx.HTTPError as error:
        raise ImageInputError(f"Cannot download image {url}: {error}", "missing") from error
    return b"".join(chunks), content_type


def _is_fits(data: bytes, hint: str = "", content_type: str = "") -> bool:
    return data[:9] == b"SIMPLE  =" or content_type in FITS_CONTENT_TYPES or hint.lower().endswith(FITS_SUFFIXES)


def load_image(
    image,
    name: str | None = None,
    stretch: str = DEFAULT_STRETCH,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    min_size: int = DEFAULT_MIN_IMAGE_SIZE,
    timeout: float = DEFAULT_URL_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
):
    """A PIL RGB image from a PIL image, numpy/torch array, path, http(s) URL, bytes or FITS file/bytes/URL.

    Raises `ImageInputError` (a ValueError) naming the image for corrupt or truncated data, HTTP errors and slow or
    oversized downloads, images outside [min_size, max_pixels] (checked from headers before decoding), unknown band
    layouts, complex data, and data with nothing to show (all NaN/inf, constant).
    """
    options = LoadOptions(stretch, max_pixels, min_size, timeout, max_bytes)
    return _load(image, _describe(image, name), options)


def load_fits(
    source,
    name: str | None = None,
    stretch: str = DEFAULT_STRETCH,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    min_size: int = DEFAULT_MIN_IMAGE_SIZE,
) -> Image.Image:
    """A FITS cutout (path, or the bytes of a plain or gzipped file) as a PIL RGB image, exactly as `load_image` reads it;
    for callers that know the data is FITS from a file name the bytes alone do not show (`.fits.gz` bytes)."""
    options = LoadOptions(stretch, max_pixels, min_size)
    label = _describe(source, name)
    return _check_size(_read_fits(str(source) if isinstance(source, Path) else source, label, options), label, options)


def _load(image, label: str, options: LoadOptions) -> Image.Image:
    if isinstance(image, Path):
        image = str(image)
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        data, content_type = _download(image, options)
        return _load_bytes(data, label, options, fits_file=_is_fits(data, urlsplit(image).path, content_type))
    if isinstance(image, str):
        if not os.path.isfile(image):
            raise FileNotFoundError(f"Image file not found: {image}")
        if image.lower().endswith(FITS_SUFFIXES):
            return _check_size(_read_fits(image, label, options), label, options)
        return _check_size(_pil_to_rgb(_open_pil(image, label, options), options.stretch, label), label, options)
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        return _load_bytes(data, label, options, fits_file=_is_fits(data))
    if isinstance(image, dict) and ("bytes" in image or "path" in image):  # a datasets.Image() cell, undecoded
        source = image.get("bytes") or image.get("path")
        return _load(source, label if label != "dict" else _describe(source, image.get("path")), options)
    if isinstance(image, Image.Image):
        _check_dims(image.width, image.height, label, options)
        return _check_size(_pil_to_rgb(image, options.stretch, label), label, options)
    if hasattr(image, "detach"):  # torch tensor; numpy has no bfloat16
        image = image.detach().cpu()
        image = (image.float() if image.is_floating_point() else image).numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"Unsupported image type {type(image).__name__} for {label}: expected PIL, numpy, torch, path, URL or bytes.")
    return _check_size(_array_to_pil(image, label, options), label, options)


def _load_bytes(data: bytes, label: str, options: LoadOptions, fits_file: bool) -> Image.Image:
    if fits_file:
        return _check_size(_read_fits(data, label, options), label, options)
    return _check_size(_pil_to_rgb(_open_pil(io.BytesIO(data), label, options), options.stretch, label), label, options)


def _check_size(image: Image.Image, label: str, options: LoadOptions) -> Image.Image:
    _check_dims(image.width, image.height, label, options)
    return image


def _open_pil(source, label: str, options: LoadOptions) -> Image.Image:
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: the size is checked here, against max_image_pixels
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
        _check_dims(image.width, image.height, label, options)  # the header gives the size: refuse before decoding a bomb
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageInputError(f"Cannot read image {label}: {error}", "too large") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageInputError(f"Cannot read image {label}: corrupt, truncated or not an image ({error})", "corrupt") from error
    return ImageOps.exif_transpose(image)


def _array_to_pil(array: np.ndarray, label: str, options: LoadOptions) -> Image.Image:
    """(H, W), (H, W, C) or (C, H, W) arrays; uint8 RGB(A) used as is, [0, 1] float RGB scaled, anything else stretched."""
    if array.dtype.kind not in "biuf":
        raise ImageInputError(f"Image array {label} has dtype {array.dtype}: expected real numbers (uint8, int, float or bool).",
                              "unsupported")
    if array.ndim not in (2, 3):
        raise ImageInputError(f"Image array {label} has shape {array.shape}: expected (H, W), (H, W, C) or (C, H, W).",
                              "unsupported")
    if array.ndim == 3:
        array = np.moveaxis(array, _band_axis(array.shape, label), -1)  # (H, W, C)
    _check_dims(array.shape[1], array.shape[0], label, options)  # before any pixel work (0x0, 1x1, huge)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    channels = array.shape[-1] if array.ndim == 3 else 1
    if array.dtype == np.uint8 and channels in (1, 3, 4):
        return Image.fromarray(array)
    if array.dtype.kind == "b":
        array = array.astype(np.float32)
    rgb_like = channels in (1, 3, 4)
    if rgb_like and array.dtype.kind == "f" and np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0:
        return Image.fromarray((array * 255.0 + 0.5).astype(np.uint8))
    if channels in (3, 4):  # an RGB(A) picture in its own channel order
        return Image.fromarray(stretch_to_uint8(array[..., :3], options.stretch, label))
    if channels == 1:
        return _bands_to_rgb(array, options.stretch, label)
    return _bands_to_rgb(np.moveaxis(array, -1, 0), options.stretch, label)  # other band counts, bluest first


def standardize_pixels(pixel_values):
    """(N, C, H, W) pixel values (an array, a tensor, or a list of (C, H, W) arrays) -> each image at zero mean and
    unit variance: galaxy cutouts are mostly dark sky, which an untrained vision tower cannot learn from as is."""
    if isinstance(pixel_values, (list, tuple)):  # no return_tensors: a list of (C, H, W) arrays
        pixel_values = np.stack([np.asarray(p) for p in pixel_values])
    flat = pixel_values.reshape(pixel_values.shape[0], -1)
    mean = flat.mean(1).reshape(-1, *[1] * (pixel_values.ndim - 1))
    std = flat.std(1).reshape(-1, *[1] * (pixel_values.ndim - 1))
    return (pixel_values - mean) / (std + 1e-6)


__all__ = ["DEFAULT_STRETCH", "FITS_SUFFIXES", "ImageInputError", "LoadOptions", "STRETCHES", "load_fits", "load_image",
           "standardize_pixels", "stretch_to_uint8"]
