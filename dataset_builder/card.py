"""The dataset card (README.md) of a gz-talk-instruct build: YAML front matter + provenance, stats, usage.

The YAML `configs:` block is what makes the folder loadable without a script (datasets >= 3 reads it
from README.md): one entry per config, its splits pointing at `data/<config>/<split>-*`.

The `dataset_info:` block (one entry per config: features, each split's num_examples and num_bytes,
download_size, dataset_size; what `datasets`' own `push_to_hub` writes) describes the files actually
written. `datasets` names the cache of a local folder after the folder's name, the config and a hash
of the card's `configs` and `dataset_info` only (`LocalDatasetModuleFactory.get_module`: the data
files enter as their glob patterns, not as files), so without `dataset_info` a rebuild into the same
folder loaded the previous build's cached rows. With it, a rebuild whose row counts, arrow sizes or
parquet file sizes differ gets a new cache; only a rebuild with the same sizes in every split (in
practice the same files) reuses the old one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import yaml
from datasets.info import DatasetInfosDict

from .instructions import CONFIGS
from .privacy import redact_secrets
from .card_text import (
    CITATION,
    CONFIG_DESCRIPTIONS,
    SYNTHETIC_LICENCE_NOTE,
    TALK_LICENCE_NOTE,
    ZOONIVERSE_ACKNOWLEDGEMENT,
)
from .provenance import Provenance

CARD_FILE = "README.md"
DEFAULT_REPO_ID = "org/gz-talk-instruct"

def size_category(rows: int) -> str:
    """The Hub's size_categories bucket for a row count."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M"


SPLIT_ORDER = ("train", "validation", "test")
_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-\d+-of-\d+\.parquet$")  # writer.py's final shard names


def dataset_infos(out_dir: Path) -> dict[str, datasets.DatasetInfo]:
    """{config: DatasetInfo} of the shards under `<out_dir>/data/<config>/`, as `push_to_hub` records them.

    features: from the shards' `huggingface` schema metadata; per split, num_examples (rows) and
    num_bytes (arrow bytes, as `Dataset.data.nbytes`; read a row group at a time); download_size: the
    parquet files' bytes; dataset_size: the splits' num_bytes.
    """
    infos: dict[str, datasets.DatasetInfo] = {}
    data = Path(out_dir) / "data"
    for config_dir in sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else []:
        shards: dict[str, list[Path]] = {}
        for path in sorted(config_dir.iterdir()):
            match = _SHARD.match(path.name)
            if match and path.is_file():
                shards.setdefault(match["split"], []).append(path)
        if not shards:
            continue
        features: datasets.Features | None = None
        info = datasets.DatasetInfo(splits=datasets.SplitDict(), download_size=0, dataset_size=0)
        for split in sorted(shards, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s)):
            rows = nbytes = 0
            for path in shards[split]:
                parquet = pq.ParquetFile(path)
                if features is None:
                    features = datasets.Features.from_arrow_schema(parquet.schema_arrow)
                rows += parquet.metadata.num_rows
                nbytes += sum(parquet.read_row_group(i).nbytes for i in range(parquet.metadata.num_row_groups))
                info.download_size += os.path.getsize(path)
            info.splits.add(datasets.SplitInfo(name=split, num_bytes=nbytes, num_examples=rows))
            info.dataset_size += nbytes
        info.features = features
        infos[config_dir.name] = info
    return infos


def dataset_info_metadata(infos: Mapping[str, datasets.DatasetInfo]) -> Any:
    """The card's `dataset_info` value for `infos`, in `datasets`' own YAML form (a mapping for one
    config, a list for several)."""
    holder: dict[str, Any] = {}
    DatasetInfosDict(infos).to_dataset_card_data(holder)  # type: ignore[arg-type]  (only item access is used)
    return holder.get("dataset_info")


def card_metadata(split_counts: Mapping[str, Mapping[str, int]], provenance: Provenance, pretty_name: str,
                  infos: Mapping[str, datasets.DatasetInfo] | None = None) -> dict[str, Any]:
    configs = []
    for config in [c for c in CONFIGS if c in split_counts] + [c for c in split_counts if c not in CONFIGS]:
        splits = [s for s in ("train", "validation", "test") if split_counts[config].get(s)]
        if not splits:
            continue
        entry: dict[str, Any] = {
            "config_name": config,
            "data_files": [{"split": s, "path": f"data/{config}/{s}-*"} for s in splits],
        }
        if not configs:
            entry["default"] = True
        configs.append(entry)
    total = sum(sum(splits.values()) for splits in split_counts.values())
    metadata: dict[str, Any] = {"pretty_name": pretty_name}
    if provenance.synthetic:
        metadata["license"] = "cc0-1.0"
    else:
        metadata.update(license="other", license_name="zooniverse-user-agreement",
                        license_link="https://www.zooniverse.org/privacy")
    metadata.update(
        language=["en"],
        task_categories=["image-text-to-text", "visual-question-answering"],
        tags=["astronomy", "galaxies", "galaxy-zoo", "zooniverse", "citizen-science", "vision-language"]
        + (["synthetic"] if provenance.synthetic else []),
        size_categories=[size_category(total)],
    )
    if infos:
        metadata["dataset_info"] = dataset_info_metadata({c: i for c, i in infos.items() if c in split_counts})
    metadata["configs"] = configs
    return metadata


def split_sentence(split_rule: str | None) -> str:
    """How the card says the rows were split (Provenance.split_rule)."""
    same = "a galaxy is in the same split in every config, and never in two splits."
    if split_rule is None:
        return f"Split by subject (a hash of the subject id): {same}"
    return ("Split by galaxy with `gzllava.splits.split_of(id)`, the project's fixed real-galaxy split (train and "
            "test, no validation split; a GZ1 galaxy that has a GZ2 twin takes its twin's side), so every model "
            f"of the project is tested on the same galaxies: {same} This build: {split_rule}.")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _flat_numbers(stats: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar entries of a (nested) stats mapping as ('a.b', value) pairs, for a table."""
    out: list[tuple[str, Any]] = []
    for key, value in stats.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flat_numbers(value, prefix=f"{name}.")
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out.append((name, f"{value:.3g}" if isinstance(value, float) else value))
    return out


def render_card(
    split_counts: Mapping[str, Mapping[str, int]],
    provenance: Provenance,
    build_stats: Mapping[str, Any],
    report_stats: Mapping[str, Any] | None = None,
    *,
    repo_id: str = DEFAULT_REPO_ID,
    pretty_name: str = "gz-talk-instruct",
    infos: Mapping[str, datasets.DatasetInfo] | None = None,
) -> str:
    """README.md text: YAML front matter + body; `infos` (`dataset_infos(folder)`) fill `dataset_info`."""
    metadata = card_metadata(split_counts, provenance, pretty_name, infos)
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=1000)
    configs = [entry["config_name"] for entry in metadata["configs"]]
    example_config = "decision_tree" if "decision_tree" in configs else (configs[0] if configs else "description")

    split_rows = [
        (config, *(split_counts[config].get(s, 0) for s in ("train", "validation", "test")),
         sum(split_counts[config].values()))
        for config in configs
    ]
    body = [
        f"# {pretty_name}",
        "",
        "Instruction data for vision-language models about Galaxy Zoo galaxies: what volunteers said about a "
        "galaxy on Zooniverse Talk, and how they answered the Galaxy Zoo decision tree, turned into "
        "image + conversation rows. Built by `python -m dataset_builder` from the gz-llava repository.",
        "",
        "## Configs",
        "",
        *[f"- **{c}**: {CONFIG_DESCRIPTIONS.get(c, '')}" for c in configs],
        "",
        split_sentence(provenance.split_rule),
        "",
        _table(("config", "train", "validation", "test", "total"), split_rows) if split_rows else "_No rows._",
        "",
        "## Schema",
        "",
        "- `id`: `<config>-<subject_id>-<k>` (k: 0, or the decision-tree question key, or `walk`).",
        "- `subject_id`, `image` (`datasets.Image`, JPEG bytes embedded in the parquet).",
        "- `messages`: list of `{role, content: [{type: image|text, text}]}`. The first user turn starts with "
        "one `{\"type\": \"image\", \"text\": null}` placeholder that TRL (`prepare_multimodal_messages`) and "
        "chat templates fill from `image`; later turns are text only.",
        "- `tags`: Talk hashtags. `votes`: every Galaxy Zoo DECaLS vote-fraction column "
        "(`<question>_<answer>_fraction`), null when unknown.",
        "- `question`, `answer`, `answer_fraction`: the decision-tree question key, majority answer key and its "
        "vote fraction (decision_tree single-question rows; null elsewhere).",
        "- `source` (`synthetic`, `talk:<file>`), `summary_backend` (the summariser of description and "
        "conversation rows; `votes` for decision-tree rows, which use no summary), `truth` (synthetic galaxies: "
        "the generator's true answers as JSON, for evaluation against ground truth).",
        "",
        "## Provenance",
        "",
        _table(("", ""), [
            ("inputs", "; ".join(provenance.inputs)),
            ("synthetic", provenance.synthetic),
            ("builder version", provenance.builder_version),
            ("commit", provenance.commit or "unknown"),
            ("summariser", provenance.summariser + (f" ({provenance.summariser_model})" if provenance.summariser_model else "")),
            ("split (train, validation, test)", ", ".join(f"{f:g}" for f in provenance.split_fractions)),
            *([("seed", provenance.seed)] if provenance.seed is not None else []),
            # user:password@, tokens and keys never reach the card (privacy.redact_secrets)
            *([("command", f"`{redact_secrets(provenance.command)}`")] if provenance.command else []),
        ]),
        "",
        "## Statistics",
        "",
        _table(("build", "value"), _flat_numbers(build_stats)),
        "",
    ]
    if report_stats:
        body += [
            "Ingest and cleaning (from `reports/report.json`; plots in `reports/`):",
            "",
            _table(("report", "value"), _flat_numbers(report_stats)[:60]),
            "",
        ]
    body += [
        "Every input comment is either behind a row of this dataset or listed, with its reason, in "
        "`rejects.jsonl` (stage, kind, id, reason, source).",
        "",
        "## Licence",
        "",
        SYNTHETIC_LICENCE_NOTE if provenance.synthetic else TALK_LICENCE_NOTE,
        "",
        "## How to load",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{repo_id}", "{example_config}")',
        'row = ds["train"][0]',
        'row["image"]      # PIL.Image',
        'row["messages"]   # the conversation, image placeholder in the first user turn',
        "```",
        "",
        "A local build folder loads the same way: `load_dataset(\"path/to/folder\", \"decision_tree\")`.",
        "",
        "## How to train (TRL)",
        "",
        "`SFTTrainer` recognises the `image` + `messages` columns and uses its vision-language collator:",
        "",
        "```python",
        "from trl import SFTConfig, SFTTrainer",
        "",
        f'train = load_dataset("{repo_id}", "{example_config}", split="train")',
        "trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=\"out\"), train_dataset=train,",
        "                     processing_class=processor)",
        "trainer.train()",
        "```",
        "",
        "or the repository's `python train_sft.py --config recipes/<recipe>.yaml`.",
        "",
        "## Citation",
        "",
        "If you use this dataset, cite the Galaxy Zoo papers whose decision tree and data it uses:",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
        ZOONIVERSE_ACKNOWLEDGEMENT,
        "",
    ]
    return f"---\n{front}---\n\n" + "\n".join(body)


def write_card(out_dir: Path, *args: Any, **kwargs: Any) -> Path:
    """README.md of the folder `out_dir`, its `dataset_info` from the shards already there."""
    path = Path(out_dir) / CARD_FILE
    kwargs.setdefault("infos", dataset_infos(out_dir))
    path.write_text(render_card(*args, **kwargs), encoding="utf-8")
    return path


def update_dataset_info(out_dir: Path) -> Path:
    """Rewrite the card's `dataset_info` from the shards now in `out_dir` (after a pass that rewrote some,
    e.g. privacy.finalise_outputs); the rest of the card is kept as it is."""
    path = Path(out_dir) / CARD_FILE
    metadata = read_card_metadata(path)
    text = path.read_text(encoding="utf-8")
    body = text[text.index("\n---\n", 4) + len("\n---\n"):]
    configs = {entry["config_name"] for entry in metadata.get("configs") or []}
    infos = {config: info for config, info in dataset_infos(out_dir).items() if config in configs}
    updated = {key: value for key, value in metadata.items() if key not in ("dataset_info", "configs")}
    if infos:
        updated["dataset_info"] = dataset_info_metadata(infos)
    if "configs" in metadata:
        updated["configs"] = metadata["configs"]
    front = yaml.safe_dump(updated, sort_keys=False, allow_unicode=True, width=1000)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"---\n{front}---\n{body}", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_card_metadata(path: Path) -> dict[str, Any]:
    """The YAML front matter of a card (raises ValueError naming the file when it is missing or bad)."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise ValueError(f"{path}: no YAML front matter (--- ... ---)")
    front = text[4 : text.index("\n---\n", 4)]
    metadata = yaml.safe_load(front)
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: YAML front matter is not a mapping")
    return metadata


def dump_json(data: Any, path: Path) -> Path:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return Path(path)
