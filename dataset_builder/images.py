"""Find, fetch and verify each subject's image: encoded JPEG/PNG bytes, or a Reject saying why not.

Where an image comes from, in order: a local folder (files named by subject id or an alias such
as the iauname / objid, any of .jpg .jpeg .png .fits .fits.gz, in any sub-folder), a local path in
`Subject.image_ref`, then the URL from the Talk CSV `locations` column.

- JPEG and PNG are passed on unchanged once PIL has decoded them fully (which catches truncated
  files); other raster formats are re-encoded as PNG.
- FITS becomes an RGB PNG of exactly the pixels the model's processor gives at inference: it is read
  by `processing_gzllava.load_fits` (bands ordered blue -> red by their BANDn header names, g/r/z to
  B/G/R, Lupton et al. 2004 colour-preserving asinh stretch, north up), the one FITS reader of the
  project.
- Downloads run in threads, retry transient failures (connection errors, 429, 5xx) with
  exponential backoff, keep finished files in a cache folder (never fetched twice) and resume
  partial ones with an HTTP Range request. A host that keeps failing is marked down, so an offline
  run costs seconds, not retries x subjects: those subjects are counted "missing", never fatal.

Reject reasons (stage "image", kind "image") start with a category: "missing", "corrupt",
"too large", "too small" (under `MIN_IMAGE_SIDE` pixels a side, e.g. a 1x1 placeholder), "blank"
(every pixel the same value, or a FITS image without a finite pixel: all NaN or inf), "unsupported".
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from processing_gzllava import ImageInputError, load_fits

from .records import Reject, Subject

logger = logging.getLogger(__name__)

RASTER_SUFFIXES = (".jpg", ".jpeg", ".png")
FITS_SUFFIXES = (".fits.gz", ".fit.gz", ".fits", ".fit", ".fts")
_SUFFIXES = RASTER_SUFFIXES + FITS_SUFFIXES  # earlier wins when one subject has several files
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
MIN_IMAGE_SIDE = 16  # pixels: the smallest synthetic galaxy; anything smaller carries no morphology
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class ImageError(Exception):
    """An image that cannot be used; `category` is the Reject reason's prefix."""

    def __init__(self, category: str, detail: str):
        super().__init__(f"{category}: {detail}")
        self.category = category


class _Transient(Exception):
    """A download failure worth retrying."""


def _strip_suffix(name: str) -> tuple[str, str] | None:
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)], suffix
    return None


# --- decoding -------------------------------------------------------------------------------------


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
    parts = _strip_suffix(path.name)
    if parts is not None and parts[1] in FITS_SUFFIXES:
        return fits_to_png(path, str(path), max_pixels)
    return verify_raster(path.read_bytes(), str(path), max_pixels)


# --- the store --------------------------------------------------------------------------------------


class ImageStore:
    """Resolves and loads subject images (see the module docstring). Thread-safe; close() when done."""

    def __init__(
        self,
        image_dir: Path | None = None,
        cache_dir: Path | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
        *,
        max_pixels: int = 4096 * 4096,
        max_bytes: int = 50 * 2**20,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        offline: bool = False,
        host_failure_limit: int = 3,
    ):
        self.image_dir = Path(image_dir) if image_dir is not None else None
        if self.image_dir is not None and not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.image_dir}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.aliases = aliases or {}
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.offline = offline
        self.host_failure_limit = host_failure_limit
        self._index: dict[str, Path] | None = None
        self._lock = threading.Lock()
        self._host_failures: dict[str, int] = {}
        self._client = None
        self.downloads = 0  # files fetched over the network (cache hits excluded)

    # -- local files --

    def _local_index(self) -> dict[str, Path]:
        with self._lock:
            if self._index is None:
                index: dict[str, tuple[int, Path]] = {}
                if self.image_dir is not None:
                    for root, _, files in os.walk(self.image_dir):
                        for file in files:
                            parts = _strip_suffix(file)
                            if parts is None:
                                continue
                            rank = _SUFFIXES.index(parts[1].lower())
                            if parts[0] not in index or rank < index[parts[0]][0]:
                                index[parts[0]] = (rank, Path(root) / file)
                self._index = {key: path for key, (_, path) in index.items()}
                logger.info("image folder %s: %d images indexed", self.image_dir, len(self._index))
            return self._index

    def local_ids(self) -> set[str]:
        """The names (without suffix) of the images in the local folder: the ids it can serve."""
        return set(self._local_index())

    def resolve(self, subject: Subject) -> str | None:
        """Where this subject's image is: a local path or a URL (None: nowhere known)."""
        if self.image_dir is not None:
            index = self._local_index()
            for key in (subject.subject_id, *self.aliases.get(subject.subject_id, ())):
                if key in index:
                    return str(index[key])
        ref = subject.image_ref
        if ref and (ref.startswith(("http://", "https://")) or Path(ref).is_file()):
            return ref
        return None

    def load(self, subject: Subject) -> bytes | Reject:
        """Encoded image bytes for `subject`, or a Reject naming the file (or URL) and the reason."""
        ref = self.resolve(subject)
        try:
            if ref is None:
                tried = [subject.subject_id, *self.aliases.get(subject.subject_id, ())]
                where = f"in {self.image_dir}" if self.image_dir else "(no image folder given)"
                raise ImageError("missing", f"no image file for {', '.join(tried)} {where} and no image URL")
            if ref.startswith(("http://", "https://")):
                data, name = self._download(ref), ref
                parts = _strip_suffix(urlsplit(ref).path)
                if parts is not None and parts[1] in FITS_SUFFIXES:
                    return fits_to_png(data, name, self.max_pixels)
                return verify_raster(data, name, self.max_pixels)
            return encode_image_file(Path(ref), self.max_pixels)
        except ImageError as e:
            return Reject("image", "image", subject.subject_id, str(e), ref or "")

    # -- downloads --

    def _http(self):
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(timeout=self.timeout, follow_redirects=True,
                                            headers={"User-Agent": "gz-llava-dataset-builder"})
            return self._client

    def cache_path(self, url: str) -> Path | None:
        if self.cache_dir is None:
            return None
        suffix = (_strip_suffix(urlsplit(url).path) or ("", ".img"))[1]
        return self.cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:24]}{suffix}"

    def _host_down(self, host: str) -> bool:
        with self._lock:
            return self._host_failures.get(host, 0) >= self.host_failure_limit

    def _record(self, host: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._host_failures[host] = 0
            else:
                self._host_failures[host] = self._host_failures.get(host, 0) + 1
                if self._host_failures[host] == self.host_failure_limit:
                    logger.warning("image host %s failed %d downloads in a row: treating it as down",
                                   host, self.host_failure_limit)

    def _download(self, url: str) -> bytes:
        host = urlsplit(url).netloc
        target = self.cache_path(url)
        if target is not None and target.is_file():
            return target.read_bytes()
        if self.offline:
            raise ImageError("missing", f"{url}: offline, and not in the download cache")
        if self._host_down(host):
            raise ImageError("missing", f"{url}: host {host} is down (gave up after repeated failures)")
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                data = self._fetch_once(url, target)
                self._record(host, True)
                with self._lock:
                    self.downloads += 1
                return data
            except _Transient as e:
                last_error = str(e)
                logger.debug("download %s attempt %d failed: %s", url, attempt + 1, e)
        self._record(host, False)
        raise ImageError("missing", f"{url}: download failed after {self.retries + 1} attempts ({last_error})")

    def _fetch_once(self, url: str, target: Path | None) -> bytes:
        import httpx

        part = target.with_name(target.name + ".part") if target is not None else None
        offset = part.stat().st_size if part is not None and part.is_file() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        buffer = bytearray()
        try:
            with self._http().stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status in _RETRY_STATUS:
                    raise _Transient(f"HTTP {status}")
                if status == 416 and part is not None:  # our partial file is stale: start again
                    part.unlink(missing_ok=True)
                    raise _Transient("HTTP 416 (partial download discarded)")
                if status >= 400:
                    raise ImageError("missing", f"{url}: HTTP {status}")
                resume = False
                if status == 206 and offset:
                    m = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                    resume = bool(m and int(m.group(1)) == offset)
                    if not resume:
                        part.unlink(missing_ok=True)
                        raise _Transient("HTTP 206 for a different range (partial download discarded)")
                size = offset if resume else 0
                sink = open(part, "ab" if resume else "wb") if part is not None else None
                try:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise ImageError("too large", f"{url}: over {self.max_bytes} bytes")
                        if sink is not None:
                            sink.write(chunk)
                        else:
                            buffer.extend(chunk)
                finally:
                    if sink is not None:
                        sink.close()
        except httpx.TransportError as e:  # connection refused/reset, timeouts, truncated bodies
            raise _Transient(f"{type(e).__name__}: {e}") from None
        except ImageError:
            if part is not None:
                part.unlink(missing_ok=True)
            raise
        if part is None:
            return bytes(buffer)
        os.replace(part, target)  # atomic: a cached file is always complete
        return target.read_bytes()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ImageStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fetch_images(subjects: dict[str, Subject], store: ImageStore, workers: int = 8, progress: bool = True) -> list[Reject]:
    """Fill `Subject.image_bytes` (and `image_ref`) for subjects that have none; return the Rejects.

    Subjects are loaded concurrently (I/O bound: downloads, file reads, PIL decoding that releases
    the GIL); the Rejects come back in subject order, so runs are reproducible.
    """
    todo = [s for s in subjects.values() if s.image_bytes is None]
    outcome: dict[str, Reject] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(lambda s: (store.resolve(s), store.load(s)), s): s for s in todo}
        for future in tqdm(as_completed(futures), total=len(futures), desc="images", unit="img",
                           disable=not todo or not progress):
            subject = futures[future]
            ref, result = future.result()
            if isinstance(result, Reject):
                outcome[subject.subject_id] = result
            else:
                subject.image_bytes = result
                subject.image_ref = ref
    rejects = [outcome[s.subject_id] for s in todo if s.subject_id in outcome]
    if rejects:
        counts: dict[str, int] = {}
        for r in rejects:
            category = r.reason.split(":", 1)[0]
            counts[category] = counts.get(category, 0) + 1
        # progress=False: a caller fetching chunk by chunk reports the totals itself
        (logger.warning if progress else logger.debug)("images: %d of %d subjects without a usable image (%s)", len(rejects), len(todo),
                       ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return rejects
