"""Streaming writer of the Hub dataset layout: `data/<config>/<split>-00000-of-000NN.parquet` + rejects.

Rows are appended one at a time and flushed to parquet a row group at a time; a shard is closed when it
reaches `max_rows` rows or about `max_bytes` bytes and the next one is opened, so memory holds one
row group per (config, split), whatever the number of subjects. Shards get their final
`-of-000NN` names when the writer closes (the count is known only then).

The parquet files carry the `datasets.Features` in their schema metadata (the `huggingface` key that
`datasets` itself writes), so `load_dataset(folder, config)` restores `Image()` and the nested
`messages` without a loading script; image bytes are embedded in the parquet, not referenced.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from .records import Reject

logger = logging.getLogger(__name__)

DATA_DIR = "data"
REJECTS_FILE = "rejects.jsonl"
DEFAULT_MAX_ROWS = 5000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
# Row groups end at 1000 rows or ~16 MiB, whichever comes first: image rows give groups of a few hundred
# (datasets itself writes image datasets in 100-row groups so that the Hub viewer and streaming read
# small pieces), text-sized rows give 1000-row groups whose text columns compress well and keep the
# per-write overhead low.
DEFAULT_ROW_GROUP_ROWS = 1000
DEFAULT_ROW_GROUP_BYTES = 16 * 1024 * 1024


def row_features(vote_columns: Sequence[str]) -> datasets.Features:
    """The schema of every row of every config (the training script and the evaluation depend on it).

    `votes` is a struct with ALL canonical vote-fraction columns so the parquet schema is the same for
    every row and every shard; unknown fractions are null.
    """
    text_block = {"type": datasets.Value("string"), "text": datasets.Value("string")}
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "subject_id": datasets.Value("string"),
            "image": datasets.Image(),
            "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.List(text_block)}),
            "tags": datasets.List(datasets.Value("string")),
            "votes": {column: datasets.Value("float64") for column in vote_columns},
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "answer_fraction": datasets.Value("float64"),
            "source": datasets.Value("string"),
            "summary_backend": datasets.Value("string"),
            "truth": datasets.Value("string"),
        }
    )


class ShardedParquetWriter:
    """Parquet shards of one (config, split): `<directory>/<split>-<i>-of-<n>.parquet`.

    Takes rows (`write`) or arrow tables with the same schema (`write_table`, what a parallel build
    hands over); both end in the same row-group buffer, in the order given.
    """

    def __init__(
        self,
        directory: Path,
        split: str,
        features: datasets.Features,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    ) -> None:
        if max_rows < 1 or max_bytes < 1 or row_group_rows < 1 or row_group_bytes < 1:
            raise ValueError("shard limits must be positive")
        self.directory = Path(directory)
        self.split = split
        self.schema = features.arrow_schema  # carries the `huggingface` features metadata
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.row_group_rows = min(row_group_rows, max_rows)
        self.row_group_bytes = row_group_bytes
        self.num_rows = 0
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._pending_rows: list[dict[str, Any]] = []  # rows from `write`, not yet arrow
        self._buffer: list[pa.Table] = []  # the next row group
        self._buffer_rows = 0
        self._buffer_bytes = 0
        self._shard_rows = 0
        self._shard_bytes = 0

    def write(self, row: dict[str, Any]) -> None:
        self._pending_rows.append(row)
        if len(self._pending_rows) >= self.row_group_rows:
            self._convert_pending()

    def write_table(self, table: pa.Table) -> None:
        self._convert_pending()
        self._add(table)

    def _convert_pending(self) -> None:
        if self._pending_rows:
            table = pa.Table.from_pylist(self._pending_rows, schema=self.schema)
            self._pending_rows = []
            self._add(table)

    def _add(self, table: pa.Table) -> None:
        if table.schema != self.schema:
            table = table.cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            if self._shard_rows >= self.max_rows or (self._shard_rows and self._shard_bytes >= self.max_bytes):
                self._close_shard()
            room = min(self.max_rows - self._shard_rows, self.row_group_rows - self._buffer_rows)
            piece = table.slice(offset, room)
            # The byte limit, at the piece's average row size (the images dominate and vary little).
            if self._shard_bytes + piece.nbytes > self.max_bytes:
                fit = int((self.max_bytes - self._shard_bytes) // max(1.0, piece.nbytes / piece.num_rows))
                fit = max(fit, 0 if self._shard_rows else 1)  # an empty shard takes at least one row
                if fit < 1:
                    self._close_shard()
                    continue
                piece = piece.slice(0, fit)
            self._buffer.append(piece)
            self._buffer_rows += piece.num_rows
            self._buffer_bytes += piece.nbytes
            self._shard_rows += piece.num_rows
            self._shard_bytes += piece.nbytes
            self.num_rows += piece.num_rows
            offset += piece.num_rows
            if self._buffer_rows >= self.row_group_rows or self._buffer_bytes >= self.row_group_bytes:
                self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            part = self.directory / f".{self.split}-part-{len(self._parts):05d}.parquet.tmp"
            self._parts.append(part)
            self._writer = pq.ParquetWriter(part, self.schema, compression="zstd")
        table = pa.concat_tables(self._buffer)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._buffer = []
        self._buffer_rows = 0
        self._buffer_bytes = 0

    def _close_shard(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._shard_rows = 0
        self._shard_bytes = 0

    def close(self) -> list[Path]:
        """Close the last shard and give every shard its final `-of-N` name; returns the paths."""
        self._convert_pending()
        self._close_shard()
        total = len(self._parts)
        final = []
        for index, part in enumerate(self._parts):
            path = self.directory / f"{self.split}-{index:05d}-of-{total:05d}.parquet"
            part.replace(path)
            final.append(path)
        self._parts = []
        return final


class DatasetWriter:
    """Every (config, split) of one build, under `<out_dir>/data/<config>/`.

    shard_limits: `ShardedParquetWriter`'s max_rows, max_bytes, row_group_rows and row_group_bytes.
    """

    def __init__(self, out_dir: Path, features: datasets.Features, **shard_limits: int) -> None:
        self.out_dir = Path(out_dir)
        self.features = features
        self._limits = shard_limits
        self._writers: dict[tuple[str, str], ShardedParquetWriter] = {}
        self.files: dict[str, dict[str, list[Path]]] = {}

    def _writer(self, config: str, split: str) -> ShardedParquetWriter:
        writer = self._writers.get((config, split))
        if writer is None:
            writer = ShardedParquetWriter(self.out_dir / DATA_DIR / config, split, self.features, **self._limits)
            self._writers[(config, split)] = writer
        return writer

    def write(self, config: str, split: str, row: dict[str, Any]) -> None:
        self._writer(config, split).write(row)

    def write_table(self, config: str, split: str, table: pa.Table) -> None:
        if table.num_rows:
            self._writer(config, split).write_table(table)

    def close(self) -> dict[str, dict[str, int]]:
        """Finish every shard; returns {config: {split: rows}} (only splits that got rows)."""
        counts: dict[str, dict[str, int]] = {}
        for (config, split), writer in sorted(self._writers.items()):
            self.files.setdefault(config, {})[split] = writer.close()
            counts.setdefault(config, {})[split] = writer.num_rows
        self._writers.clear()
        return counts


class RejectLog:
    """`rejects.jsonl`, appended as rejects happen (held in memory too only with `keep=True`)."""

    def __init__(self, path: Path, *, keep: bool = False) -> None:
        self.path = Path(path)
        self.kept: list[Reject] = []  # filled only with keep=True (for the report)
        self._keep = keep
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self.by_stage_kind: Counter[tuple[str, str]] = Counter()
        self.by_reason: Counter[str] = Counter()

    def add(self, reject: Reject) -> None:
        if not reject.reason:
            raise ValueError(f"reject of {reject.kind} {reject.id!r} at stage {reject.stage!r} has no reason")
        self._file.write(json.dumps(reject.to_json(), ensure_ascii=False) + "\n")
        self.by_stage_kind[(reject.stage, reject.kind)] += 1
        self.by_reason[_reason_kind(reject.reason)] += 1
        if self._keep:
            self.kept.append(reject)

    def extend(self, rejects: Iterable[Reject]) -> None:
        for reject in rejects:
            self.add(reject)

    def count(self, kind: str) -> int:
        return sum(n for (_, k), n in self.by_stage_kind.items() if k == kind)

    def close(self) -> None:
        self._file.close()

    def summary(self) -> dict[str, Any]:
        return {
            "by_stage_and_kind": {f"{stage}/{kind}": n for (stage, kind), n in sorted(self.by_stage_kind.items())},
            "top_reasons": dict(self.by_reason.most_common(20)),
        }


def _reason_kind(reason: str) -> str:
    """The reason without its particulars, for counting: 'near duplicate of d-1-0 (Jaccard 0.91)' -> 'near duplicate'."""
    head = re.split(r"[:(]| of ", reason, maxsplit=1)[0]
    return re.sub(r"\d+", "N", head).strip()


def read_rejects(path: Path) -> list[Reject]:
    """The rejects of a build (extra fields some stages add, e.g. a cleaned-away comment's tags, dropped)."""
    names = {f.name for f in fields(Reject)}
    with Path(path).open(encoding="utf-8") as handle:
        return [Reject(**{k: v for k, v in json.loads(line).items() if k in names}) for line in handle if line.strip()]
