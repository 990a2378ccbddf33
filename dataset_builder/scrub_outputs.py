"""The last step of a build: `finalise_outputs` scrubs every text the build wrote (parquet rows,
rejects.jsonl, build_stats.json, reports/, README.md) with a `privacy.Scrubber`, in place, and counts what
it removed, so a volunteer identity that got past the cleaner and the summariser is still taken out.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .privacy import Scrubber, identities_from_export

logger = logging.getLogger(__name__)

_REJECT_FIELDS_KEPT = ("stage", "kind", "id")  # our own labels and input ids: not free text


def _replace_file(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".privacy-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _scrub_jsonl(path: Path, scrubber: Scrubber) -> int:
    before = scrubber.redactions
    lines: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            record = {k: (v if k in _REJECT_FIELDS_KEPT else scrubber.scrub_json(v)) for k, v in record.items()}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    if scrubber.redactions != before:
        _replace_file(path, "".join(lines))
    return scrubber.redactions - before


def _scrub_json(path: Path, scrubber: Scrubber) -> int:
    before = scrubber.redactions
    data = scrubber.scrub_json(json.loads(path.read_text(encoding="utf-8")))
    if scrubber.redactions != before:
        indent_sorted = path.name == "build_stats.json"
        text = json.dumps(data, indent=2, sort_keys=indent_sorted, ensure_ascii=False, default=str) + "\n"
        _replace_file(path, text)
    return scrubber.redactions - before


def _scrub_text_file(path: Path, scrubber: Scrubber) -> int:
    before = scrubber.redactions
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    out = [scrubber.scrub(line) if line.strip() else line for line in lines]
    if scrubber.redactions != before:
        _replace_file(path, "\n".join(out))
    return scrubber.redactions - before


def _scrub_parquet(path: Path, scrubber: Scrubber) -> int:
    """Rows of one shard whose message texts or tags need scrubbing are rewritten; others untouched.

    The texts are pulled out with arrow (messages -> content -> text, one flat string column), so a
    shard with nothing to scrub costs one read of its text columns, not a Python walk of every row.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [c for c in ("messages", "tags") if c in pq.read_schema(path).names]
    if not columns:
        return 0
    table = pq.read_table(path, columns=columns)
    suspects: set[int] = set()
    if "messages" in columns:
        messages = table.column("messages").combine_chunks()
        turn_rows = pa.compute.list_parent_indices(messages).to_numpy()
        turns = messages.flatten()
        contents = turns.field("content")
        block_turns = pa.compute.list_parent_indices(contents).to_numpy()
        texts = contents.flatten().field("text").to_pylist()
        for block, text in enumerate(texts):
            if text and scrubber.needs(text):
                suspects.add(int(turn_rows[block_turns[block]]))
    if "tags" in columns:
        for row, tags in enumerate(table.column("tags").to_pylist()):
            if tags and any(scrubber.needs(t) for t in tags):
                suspects.add(row)
    if not suspects:
        return 0
    full = pq.read_table(path)
    metadata = full.schema.metadata
    rows = full.to_pylist()
    before = scrubber.redactions
    for row in suspects:
        record = rows[row]
        for turn in record.get("messages") or []:
            for block in turn.get("content") or []:
                if block.get("text"):
                    block["text"] = scrubber.scrub(block["text"])
        if record.get("tags"):
            record["tags"] = [t for t in (scrubber.scrub(t) for t in record["tags"]) if t]
    fixed = pa.Table.from_pylist(rows, schema=full.schema).replace_schema_metadata(metadata)
    tmp = path.with_name(path.name + ".privacy-tmp")
    pq.write_table(fixed, tmp, compression="zstd")  # as writer.py writes shards
    os.replace(tmp, path)
    return scrubber.redactions - before


def _output_files(out_dir: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted((out_dir / "data").rglob("*.parquet")):
        yield "parquet", path
    for name in ("rejects.jsonl",):
        if (out_dir / name).is_file():
            yield "jsonl", out_dir / name
    for path in [out_dir / "build_stats.json", *sorted((out_dir / "reports").glob("*.json"))]:
        if path.is_file():
            yield "json", path
    for path in [*sorted((out_dir / "reports").glob("*.md")), out_dir / "README.md"]:
        if path.is_file():
            yield "text", path


def finalise_outputs(out_dir: Path, identity_sources: Iterable[Path | None] = (), *,
                     identities: Iterable[str] | None = None, comments_scrubbed_at_ingest: int | None = None
                     ) -> dict[str, Any]:
    """The last step of a build: scrub every text the build wrote, in place; return what was removed.

    identity_sources: the Talk (and tags) exports, whose identity columns give the logins and ids that
    must not appear anywhere; or `identities`, when the build already read them (`identities_from_export`).
    comments_scrubbed_at_ingest: how many comments the cleaner took a known identity out of (recorded).
    The counts go into build_stats.json under "privacy" (no removed text is recorded). A non-zero count
    for `data/` means a form got past the cleaner and the summariser.
    """
    out_dir = Path(out_dir)
    scrubber = Scrubber(identities if identities is not None else identities_from_export(*identity_sources))
    handlers = {"parquet": _scrub_parquet, "jsonl": _scrub_jsonl, "json": _scrub_json, "text": _scrub_text_file}
    by_file: Counter[str] = Counter()
    for kind, path in _output_files(out_dir):
        removed = handlers[kind](path, scrubber)
        if removed:
            by_file[path.relative_to(out_dir).as_posix()] = removed
    summary = {"texts_scrubbed": sum(by_file.values()), "by_file": dict(sorted(by_file.items())),
               "known_identities": len(scrubber.identities)}
    if comments_scrubbed_at_ingest is not None:
        summary["comments_scrubbed_at_ingest"] = comments_scrubbed_at_ingest
    stats_path = out_dir / "build_stats.json"
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        stats["privacy"] = summary
        _replace_file(stats_path, json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n")
    leaked_rows = sum(n for name, n in by_file.items() if name.startswith("data/"))
    if leaked_rows:
        logger.warning("privacy: %d row texts still held an identity after cleaning and were scrubbed", leaked_rows)
    return summary
