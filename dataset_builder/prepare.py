"""The per-subject work of a build: image -> summary -> instruction rows, a chunk of subjects at a time.

This part depends on nothing but the subjects of its chunk, so `build.py` can run it in worker
processes (the template summariser and the row templates are pure Python: two processes use the two
cores of the target machine). It also computes each row's curation fingerprint (length, validator,
duplicate hashes, MinHash), so the main process only does what must see every row in order: the
duplicate look-ups (`Curator.decide`) and the parquet writers.

A `ChunkPreparer` is picklable before first use: it builds its summariser and image store lazily,
in whichever process calls it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from .curate import RowFingerprint, RowFingerprinter
from .instructions import answered_path, full_votes, label_rows, rows_for
from .records import Reject, Subject, Summary

TEXT_CONFIGS = ("description", "conversation")


@dataclass
class PreparedSubject:
    """What one subject gave besides its rows: the rejects on the way, each with its cause category."""

    subject_id: str
    had_image: bool
    image_key: str | None = None  # content hash of the image: the same image under two ids is one sample
    rejects: list[tuple[str, Reject]] = field(default_factory=list)  # (cause category, reject)


@dataclass
class ConfigBatch:
    """The rows of one config for a chunk, already arrow (converting is half the cost of writing)."""

    table: pa.Table  # schema `writer.row_features(...)`, rows in subject order
    row_ids: list[str]
    subject_ids: list[str]
    fingerprints: list[RowFingerprint]


@dataclass
class PreparedChunk:
    subjects: list[PreparedSubject]
    batches: dict[str, ConfigBatch]
    seconds: dict[str, float]  # time per stage in the process that prepared the chunk


@dataclass(frozen=True)
class ImageStoreSpec:
    """How to open an `ImageStore` (the store itself holds locks and an HTTP client: not picklable)."""

    image_dir: Path | None = None
    cache_dir: Path | None = None
    offline: bool = False

    def open(self) -> Any:
        from .images import ImageStore

        return ImageStore(image_dir=self.image_dir, cache_dir=self.cache_dir, offline=self.offline)


@dataclass(frozen=True)
class SummariserSpec:
    name: str
    options: dict[str, Any]

    def open(self) -> Any:
        from .summarise import get_summariser

        return get_summariser(self.name, show_progress=False, **self.options)


class ChunkPreparer:
    """Callable: list of subjects -> PreparedChunk. Picklable until first called."""

    def __init__(
        self,
        configs: Sequence[str],
        images: ImageStoreSpec | Any,
        summariser: SummariserSpec | None,
        fingerprinter: RowFingerprinter,
        schema: pa.Schema,
        image_threads: int = 8,
    ) -> None:
        self.configs = tuple(configs)
        self.fingerprinter = fingerprinter
        self.schema = schema
        self.images = images  # an ImageStoreSpec, or a ready store object (resolve/load) that pickles
        self.summariser_spec = summariser if any(c in TEXT_CONFIGS for c in self.configs) else None
        self.image_threads = image_threads
        self._store: Any = None
        self._summariser: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None, "_summariser": None}

    def _open(self) -> None:
        if self._store is None:
            self._store = self.images.open() if isinstance(self.images, ImageStoreSpec) else self.images
        if self._summariser is None and self.summariser_spec is not None:
            self._summariser = self.summariser_spec.open()

    @property
    def summariser_model(self) -> str | None:
        self._open()
        return getattr(self._summariser, "model", None)

    def close(self) -> None:
        if self._summariser is not None:
            self._summariser.close()
        if self._store is not None and isinstance(self.images, ImageStoreSpec):
            self._store.close()
        self._store = self._summariser = None

    def __call__(self, chunk: list[Subject]) -> PreparedChunk:
        from .images import fetch_images

        self._open()
        seconds: dict[str, float] = {}
        prepared = {s.subject_id: PreparedSubject(s.subject_id, had_image=False) for s in chunk}

        start = time.perf_counter()
        todo = {s.subject_id: s for s in chunk}
        for reject in fetch_images(todo, self._store, workers=self.image_threads, progress=False):
            prepared[reject.id].rejects.append(("no image", reject))
        with_image = [s for s in chunk if s.image_bytes is not None]
        seconds["images"] = time.perf_counter() - start

        start = time.perf_counter()
        summaries: dict[str, Summary | Reject] = {}
        to_summarise = [s for s in with_image if getattr(s, "labels", None) is None]  # class labels: no summary
        if self._summariser is not None and to_summarise:
            summaries = dict(zip((s.subject_id for s in to_summarise), self._summariser.summarise(to_summarise)))
        seconds["summarise"] = time.perf_counter() - start

        start = time.perf_counter()
        rows: dict[str, list[dict[str, Any]]] = {config: [] for config in self.configs}
        fingerprints: dict[str, list[RowFingerprint]] = {config: [] for config in self.configs}
        for subject in with_image:
            self._rows(subject, summaries.get(subject.subject_id), prepared[subject.subject_id], rows, fingerprints)
        for config in self.configs:
            self.fingerprinter.sign_all(config, rows[config], fingerprints[config])
        seconds["instructions"] = time.perf_counter() - start

        start = time.perf_counter()
        batches = {
            config: ConfigBatch(
                table=pa.Table.from_pylist(rows[config], schema=self.schema),
                row_ids=[row["id"] for row in rows[config]],
                subject_ids=[row["subject_id"] for row in rows[config]],
                fingerprints=fingerprints[config],
            )
            for config in self.configs
            if rows[config]
        }
        seconds["to arrow"] = time.perf_counter() - start
        return PreparedChunk(list(prepared.values()), batches, seconds)

    def _rows(
        self,
        subject: Subject,
        summary: Summary | Reject | None,
        out: PreparedSubject,
        rows_by_config: dict[str, list[dict[str, Any]]],
        fingerprints: dict[str, list[RowFingerprint]],
    ) -> None:
        out.had_image = True
        out.image_key = hashlib.blake2b(subject.image_bytes, digest_size=16).hexdigest()
        labels = getattr(subject, "labels", None)  # a class-label catalogue's subject (catalogue_input.py)
        if labels is not None:
            for config in self.configs:
                rows, rejects = label_rows(config, subject, labels)
                fingerprints[config] += [self.fingerprinter(config, row, image_key=out.image_key, sign=False)
                                         for row in rows]
                rows_by_config[config] += rows
                out.rejects += [(f"{config} row rejected", reject) for reject in rejects]
            return
        if isinstance(summary, Reject):
            out.rejects.append(("summary rejected", summary))
            summary = None
        path = answered_path(subject.votes)  # one walk of the tree, shared by the configs
        votes = full_votes(subject.votes)
        summary_text = "\n".join([summary.description, *summary.visible_features]) if summary is not None else None
        source_text = None
        if summary is not None and self.fingerprinter.validator is not None:
            from .summarise import summary_source_text

            source_text = summary_source_text(subject)
        for config in self.configs:
            rows, rejects = rows_for(config, subject, summary, path, votes)
            from_summary = config in TEXT_CONFIGS
            for row in rows:
                fingerprints[config].append(self.fingerprinter(
                    config, row, image_key=out.image_key, summary_text=summary_text if from_summary else None,
                    source_text=source_text if from_summary else None, sign=False))
            rows_by_config[config] += rows
            out.rejects += [(f"{config} row rejected", reject) for reject in rejects]


# Worker-process side of a multiprocessing pool (spawn: nothing inherited but these arguments).
_WORKER_PREPARER: ChunkPreparer | None = None


def init_worker(preparer: ChunkPreparer) -> None:
    global _WORKER_PREPARER
    _WORKER_PREPARER = preparer


def prepare_in_worker(chunk: list[Subject]) -> PreparedChunk:
    assert _WORKER_PREPARER is not None, "init_worker was not run in this process"
    return _WORKER_PREPARER(chunk)
