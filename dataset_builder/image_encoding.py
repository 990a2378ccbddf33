"""Conversion: image bytes or a local file -> verified, encoded JPEG/PNG bytes, or an `ImageError` saying why not.

- JPEG and PNG are passed on unchanged once PIL has decoded them fully (which catches truncated
  files); other raster formats are re-encoded as PNG.
- FITS becomes an RGB PNG of exactly the pixels the model's processor gives at inference: it is read
  by `image_processing_gzllava.load_fits` (bands ordered blue -> red by their BANDn header names, g/r/z to
  B/G/R, Lupton et al. 2004 colour-preserving asinh stretch, north up), the one FITS reader of the
  project.

Error categories (a Reject reason's prefix): "missing", "corrupt", "too large", "too small" (under
`MIN_IMAGE_SIDE` pixels a side, e.g. a 1x1 placeholder), "blank" (every pixel the same value, or a FITS
image without a finite pixel: all NaN or inf), "unsupported".
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from image_processing_gzllava import ImageInputError, load_fits

RASTER_SUFFIXES = (".jpg", ".jpeg", ".png")
FITS_SUFFIXES = (".fits.gz", ".fit.gz", ".fits", ".fit", ".fts")
IMAGE_SUFFIXES = RASTER_SUFFIXES + FITS_SUFFIXES  # earlier wins when one subject has several files
MIN_IMAGE_SIDE = 16  # pixels: the smallest synthetic galaxy; anything smaller carries no morphology


class ImageError(Exception):
    """An image that cannot be used; `category` is the Reject reason's prefix."""

    def __init__(self, category: str, detail: str):
        super().__init__(f"{category}: {detail}")
        self.category = category


def split_suffix(name: str) -> tuple[str, str] | None:
    """(stem, image suffix) of a file name or URL path; None when it has no image suffix."""
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)], suffix
    return None


def verify_raster(data: bytes, name: str, max_pixels: int) -> bytes:
    """`data` if it is a complete JPEG/PNG of at most `max_pixels`; other formats re-encoded as PNG."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError("too large", f"{name}: {width}x{height} pixels, the cap is {max_pixels}")
                _check_size(width, height, name)
                image.load()  # decodes every pixel: a truncated file fails here, not later in training
                if _constant(image):
                    raise ImageError("blank", f"{name}: every pixel has the same value {image.getpixel((0, 0))} "
                                              f"({image.mode})")
                if image.format in ("JPEG", "PNG"):
                    return data
                out = io.BytesIO()
                image.convert("RGB").save(out, format="PNG")
                return out.getvalue()
    except Image.DecompressionBombError as e:
        raise ImageError("too large", f"{name}: {e}") from None
    except UnidentifiedImageError:
        raise ImageError("corrupt", f"{name}: not an image PIL can read") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for broken/truncated data
        raise ImageError("corrupt", f"{name}: {e}") from None


def _constant(image: Image.Image) -> bool:
    """Every pixel the same value. The middle row answers for almost every real image (a full
    `getextrema` costs ~60% of a 424 px JPEG decode); only when it is flat is the whole image checked."""
    width, height = image.size
    for region in (image.crop((0, height // 2, width, height // 2 + 1)), image):
        extrema = region.getextrema()  # (min, max), or one pair per band
        bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
        if any(low != high for low, high in bands):
            return False
    return True


def _check_size(width: int, height: int, name: str) -> None:
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageError("too small", f"{name}: {width}x{height} pixels, need at least {MIN_IMAGE_SIDE} a side")


def fits_to_png(source: Path | bytes, name: str, max_pixels: int) -> bytes:
    """An RGB PNG of a FITS image (path, or the bytes of a plain or gzipped file), read as the processor reads it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns about each oddity of a broken header; we reject instead
            image = load_fits(source, name=name, stretch="lupton", max_pixels=max_pixels, min_size=MIN_IMAGE_SIDE)
    except ImageInputError as e:
        raise ImageError(e.category, str(e)) from None
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def encode_image_file(path: Path, max_pixels: int) -> bytes:
    """Encoded JPEG/PNG bytes for a local image file (FITS converted); ImageError otherwise."""
    if not path.is_file():
        raise ImageError("missing", f"{path}: no such file")
    parts = split_suffix(path.name)
    if parts is not None and parts[1] in FITS_SUFFIXES:
        return fits_to_png(path, str(path), max_pixels)
    return verify_raster(path.read_bytes(), str(path), max_pixels)
