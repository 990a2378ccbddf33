"""Fetching: image URLs -> bytes, with retries, a download cache, resumed partial files and a size cap.

Transient failures (connection errors, 429, 5xx) are retried with exponential backoff; finished files
are kept in a cache folder (never fetched twice) and partial ones resumed with an HTTP Range request. A
host that keeps failing is marked down, so an offline run costs seconds, not retries x subjects. Every
failure is an `ImageError` ("missing", "too large") that the image store turns into a Reject.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from .image_encoding import ImageError, split_suffix

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class _Transient(Exception):
    """A download failure worth retrying."""


class Downloader:
    """Fetches image URLs (see the module docstring). Thread-safe; close() when done."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        max_bytes: int = 50 * 2**20,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        offline: bool = False,
        host_failure_limit: int = 3,
    ):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.offline = offline
        self.host_failure_limit = host_failure_limit
        self._lock = threading.Lock()
        self._host_failures: dict[str, int] = {}
        self._client = None
        self.downloads = 0  # files fetched over the network (cache hits excluded)

    def _http(self):
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(timeout=self.timeout, follow_redirects=True,
                                            headers={"User-Agent": "gz-llava-dataset-builder"})
            return self._client

    def cache_path(self, url: str) -> Path | None:
        """Where the cache keeps `url`'s file (None: no cache)."""
        if self.cache_dir is None:
            return None
        suffix = (split_suffix(urlsplit(url).path) or ("", ".img"))[1]
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

    def fetch(self, url: str) -> bytes:
        """The bytes at `url` (from the cache when there); ImageError when they cannot be had."""
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
