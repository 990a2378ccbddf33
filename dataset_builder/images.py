"""Find each subject's image and load it: encoded JPEG/PNG bytes, or a Reject saying why not.

Where an image comes from, in order: a local folder (files named by subject id or an alias such
as the iauname / objid, any of .jpg .jpeg .png .fits .fits.gz, in any sub-folder), a local path in
`Subject.image_ref`, then the URL from the Talk CSV `locations` column.

Fetching a URL (retries, cache, resume, hosts marked down) is `downloads.Downloader`'s job; turning
bytes or a file into a verified JPEG/PNG (FITS through `image_processing_gzllava.load_fits`) is
`image_encoding`'s. Reject reasons (stage "image", kind "image") start with the `ImageError` category.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from .downloads import Downloader
from .image_encoding import (
    FITS_SUFFIXES,
    IMAGE_SUFFIXES,
    ImageError,
    encode_image_file,
    fits_to_png,
    split_suffix,
    verify_raster,
)
from .records import Reject, Subject

logger = logging.getLogger(__name__)


class ImageStore:
    """Resolves and loads subject images (see the module docstring). Thread-safe; close() when done.

    cache_dir and download_options (max_bytes, timeout, retries, backoff, offline, host_failure_limit) are
    the `Downloader`'s, which fetches the URLs.
    """

    def __init__(
        self,
        image_dir: Path | None = None,
        cache_dir: Path | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
        *,
        max_pixels: int = 4096 * 4096,
        **download_options: Any,
    ):
        self.image_dir = Path(image_dir) if image_dir is not None else None
        if self.image_dir is not None and not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.image_dir}")
        self.aliases = aliases or {}
        self.max_pixels = max_pixels
        self.downloader = Downloader(cache_dir, **download_options)
        self._index: dict[str, Path] | None = None
        self._lock = threading.Lock()

    @property
    def downloads(self) -> int:
        """Files fetched over the network (cache hits excluded)."""
        return self.downloader.downloads

    def cache_path(self, url: str) -> Path | None:
        """Where the download cache keeps `url`'s file (None: no cache)."""
        return self.downloader.cache_path(url)

    # -- local files --

    def _local_index(self) -> dict[str, Path]:
        with self._lock:
            if self._index is None:
                index: dict[str, tuple[int, Path]] = {}
                if self.image_dir is not None:
                    for root, _, files in os.walk(self.image_dir):
                        for file in files:
                            parts = split_suffix(file)
                            if parts is None:
                                continue
                            rank = IMAGE_SUFFIXES.index(parts[1].lower())
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
                data, name = self.downloader.fetch(ref), ref
                parts = split_suffix(urlsplit(ref).path)
                if parts is not None and parts[1] in FITS_SUFFIXES:
                    return fits_to_png(data, name, self.max_pixels)
                return verify_raster(data, name, self.max_pixels)
            return encode_image_file(Path(ref), self.max_pixels)
        except ImageError as e:
            return Reject("image", "image", subject.subject_id, str(e), ref or "")

    def close(self) -> None:
        self.downloader.close()

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
