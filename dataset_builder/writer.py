"""Streaming writer of the Hub dataset layout: `data/<config>/<split>-00000-of-000NN.parquet` + rejects.

Rows are appended one at a time and flushed to parquet in small row groups; a shard is closed when it
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
# datasets writes image datasets with 100-row row groups (config.DEFAULT_MAX_BATCH_SIZE for images):
# small enough for the Hub viewer and for streaming, large enough for the text columns to compress.
DEFAULT_ROW_GROUP_ROWS = 100


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


def _row_size(row: dict[str, Any]) -> int:
    """Approximate bytes of a row in the parquet: the image dominates, the texts are the rest."""
    image = row.get("image") or {}
    size = len(image.get("bytes") or b"")
    for message in row["messages"]:
        size += sum(len(block.get("text") or "") for block in message["content"])
    return size + 64 * len(row.get("votes") or ()) + 256


class ShardedParquetWriter:
    """Parquet shards of one (config, split): `<directory>/<split>-<i>-of-<n>.parquet`."""

    def __init__(
        self,
        directory: Path,
        split: str,
        features: datasets.Features,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        if max_rows < 1 or max_bytes < 1 or row_group_rows < 1:
            raise ValueError("shard limits must be positive")
        self.directory = Path(directory)
        self.split = split
        self.schema = features.arrow_schema  # carries the `huggingface` features metadata
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.row_group_rows = min(row_group_rows, max_rows)
        self.num_rows = 0
        self._parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._buffer: list[dict[str, Any]] = []
        self._shard_rows = 0
        self._shard_bytes = 0

    def write(self, row: dict[str, Any]) -> None:
        size = _row_size(row)
        if self._shard_rows and (self._shard_rows >= self.max_rows or self._shard_bytes + size > self.max_bytes):
            self._close_shard()
        self._buffer.append(row)
        self._shard_rows += 1
        self._shard_bytes += size
        self.num_rows += 1
        if len(self._buffer) >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            part = self.directory / f".{self.split}-part-{len(self._parts):05d}.parquet.tmp"
            self._parts.append(part)
            self._writer = pq.ParquetWriter(part, self.schema, compression="zstd")
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        self._writer.write_table(table, row_group_size=len(self._buffer))
        self._buffer.clear()

    def _close_shard(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._shard_rows = 0
        self._shard_bytes = 0

    def close(self) -> list[Path]:
        """Close the last shard and give every shard its final `-of-N` name; returns the paths."""
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
    """Every (config, split) of one build, under `<out_dir>/data/<config>/`."""

    def __init__(
        self,
        out_dir: Path,
        features: datasets.Features,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.features = features
        self._limits = {"max_rows": max_rows, "max_bytes": max_bytes, "row_group_rows": row_group_rows}
        self._writers: dict[tuple[str, str], ShardedParquetWriter] = {}
        self.files: dict[str, dict[str, list[Path]]] = {}

    def write(self, config: str, split: str, row: dict[str, Any]) -> None:
        writer = self._writers.get((config, split))
        if writer is None:
            writer = ShardedParquetWriter(
                self.out_dir / DATA_DIR / config, split, self.features, **self._limits
            )
            self._writers[(config, split)] = writer
        writer.write(row)

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
    with Path(path).open(encoding="utf-8") as handle:
        return [Reject(**json.loads(line)) for line in handle if line.strip()]
