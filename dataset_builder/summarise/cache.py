"""On-disk cache of raw backend outputs, so an interrupted summarising run resumes where it stopped.

One sqlite file (stdlib `sqlite3`) with one row per generation, keyed by the sha256 of
(backend, model, generation settings, prompt, subject id). Each row is committed the moment its
output arrives, and sqlite commits are atomic, so killing the process at any point loses at most
the generations still in flight. The RAW model text is stored (not the parsed summary), so a
stricter validator later re-judges cached outputs without calling the model again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CACHE_FILENAME = "summaries.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    output TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def cache_key(backend: str, model: str, prompt: str, subject_id: str, settings: Mapping[str, Any] | None = None) -> str:
    """sha256 hex of the inputs that decide an output.

    `settings` holds the generation options that change the text (max tokens, temperature...):
    without them a rerun with a different budget would silently reuse outputs made with the old one.
    """
    payload = json.dumps([backend, model, dict(sorted((settings or {}).items())), prompt, subject_id], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class SummaryCache:
    """Persistent map cache key -> raw model output."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / CACHE_FILENAME
        try:
            # check_same_thread=False: backends may hand results over from worker threads; every
            # write still happens under sqlite's own lock, one statement per commit.
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise RuntimeError(f"summary cache {self.path} is not a usable sqlite database: {error}") from error

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The cached outputs among `keys` (missing keys are absent from the result)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):  # stay under sqlite's bound-parameter limit
            chunk = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT key, output FROM generations WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update(rows.fetchall())
        return found

    def get(self, key: str) -> str | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, *, backend: str, model: str, subject_id: str, output: str) -> None:
        """Store one output; committed before this returns (autocommit mode)."""
        self._db.execute(
            "INSERT OR REPLACE INTO generations (key, backend, model, subject_id, output, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key, backend, model, subject_id, output, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SummaryCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
