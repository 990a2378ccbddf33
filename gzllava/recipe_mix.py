"""The real-galaxy recipe's training mix: the train sides of gz-talk-instruct builds in one dataset folder.

`mix_builds` leaves out the galaxies on the validation side of `gzllava.splits` (`holdout_rows`), caps each
build's rows, keeps the rows of the questions only one build answers beside its cap, repeats
a question's rarer answers (`balance_answers`) and samples named questions more or less often (`weight_questions`),
then writes parquet shards with a card that `load_dataset(folder, config)` reads, and records its settings
(`mix_settings.json`) so that a rerun with other settings is noticed (`settings_changed`). Used by `python -m
gzllava.real_recipe` (its `mix` stage).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path


logger = logging.getLogger("gzllava.recipe_mix")
CONFIGS = ("description", "decision_tree")


def balance_answers(rows, max_repeat: int, seed: int = 0):
    """decision_tree rows with each question's rarer answers repeated towards its most common answer's count.

    Per question (the `question` column; multi-turn walks, whose `question` is empty, are kept as they are), an
    answer with n rows gets min(n_max, max_repeat * n) rows: every row once, then repeats drawn at random. The
    confident-subset metrics are balanced accuracies, and with the plain mix the language model meets ~3.5 "not
    edge-on" galaxies per edge-on one and ~10 in-between per cigar-shaped one. `max_repeat` <= 1: unchanged.
    """
    import numpy as np

    if max_repeat <= 1 or "question" not in rows.column_names or "answer" not in rows.column_names:
        return rows
    groups: dict[tuple[str, str], list[int]] = {}
    keep: list[int] = []
    for index, (question, answer) in enumerate(zip(rows["question"], rows["answer"])):
        if question and answer:
            groups.setdefault((question, answer), []).append(index)
        else:
            keep.append(index)
    largest: dict[str, int] = {}
    for (question, _), members in groups.items():
        largest[question] = max(largest.get(question, 0), len(members))
    rng = np.random.default_rng(seed)
    for (question, _), members in sorted(groups.items()):
        wanted = min(largest[question], max_repeat * len(members))
        extra = rng.choice(members, size=wanted - len(members), replace=True).tolist() if wanted > len(members) else []
        keep += members + extra
    return rows.select(sorted(keep))


def weight_questions(rows, weights: dict[str, float], seed: int = 0):
    """decision_tree rows with each weighted question's rows sampled `weights[question]` times on average.

    A weight w keeps every row of that question floor(w) times and once more with probability w - floor(w) (so 0.5
    keeps about half, 4 repeats each row four times, 0 drops the question); other questions and the multi-turn walks
    (empty `question`) are kept once. Returns (rows, rows added, rows removed).
    """
    import numpy as np

    if not weights or "question" not in rows.column_names:
        return rows, 0, 0
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    added = removed = 0
    for index, question in enumerate(rows["question"]):
        weight = weights.get(question or "", 1.0)
        copies = int(weight) + int(rng.random() < weight - int(weight))
        keep += [index] * copies
        added, removed = added + max(copies - 1, 0), removed + (copies == 0)
    return rows.select(keep), added, removed


def holdout_rows(rows, validation_percent: int, twins: dict[str, str] | None = None):
    """`rows` without the galaxies on the validation side of `gzllava.splits`, and how many rows were left out.

    The validation side is `validation_percent` of the non-test galaxy ids (the side `train_clip.py` holds out as
    `train_holdout` and `evaluate_gzllava.py --split validation` scores); a GZ1 image takes its GZ2 twin's side
    (`twins`: GZ1 objid -> GZ2 GalaxyID). Rows need a `subject_id`; `validation_percent` 0 keeps every row.
    """
    from gzllava.splits import split_of

    if validation_percent <= 0:
        return rows, 0
    if "subject_id" not in rows.column_names:
        raise ValueError(f"holding out the validation side needs a subject_id column; the rows have "
                         f"{sorted(rows.column_names)}")
    twins = twins or {}
    keep = [i for i, subject in enumerate(rows["subject_id"])
            if split_of(twins.get(str(subject).strip(), subject), validation_percent=validation_percent) != "validation"]
    return rows.select(keep), len(rows) - len(keep)


SETTINGS_FILE = "mix_settings.json"  # beside the card: what the mix was made with, compared by `settings_changed`


def mix_settings(sources, max_rows: dict[str, int | None], seed: int = 0, balance_repeat: int = 1,
                 uncapped: dict[str, tuple[str, ...]] | None = None,
                 question_weights: dict[str, float] | None = None, validation_percent: int = 0) -> dict:
    """The arguments of `mix_builds` that decide its rows, as plain JSON (the sources by name: folders may move; the
    twins file is data, not a setting)."""
    return {"sources": sorted(sources), "max_rows": {k: max_rows.get(k) for k in sorted(sources)}, "seed": seed,
            "balance_repeat": balance_repeat,
            "uncapped": {k: sorted(v) for k, v in sorted((uncapped or {}).items())},
            "question_weights": {k: float(w) for k, w in sorted((question_weights or {}).items())},
            "validation_percent": validation_percent}


# what a mix made before a setting existed was made with (its settings file lacks the key)
SETTING_DEFAULTS = {"validation_percent": 0}


def settings_changed(out: Path, wanted: dict) -> list[str]:
    """The settings (`mix_settings`) whose recorded value in the mix at `out` differs from `wanted`, as
    `name: recorded -> wanted` lines; empty when they agree or when the mix predates the record."""
    recorded_file = out / SETTINGS_FILE
    if not recorded_file.exists():
        return []
    recorded = json.loads(recorded_file.read_text())
    return [f"{key}: {recorded.get(key, SETTING_DEFAULTS.get(key))} -> {value}" for key, value in wanted.items()
            if recorded.get(key, SETTING_DEFAULTS.get(key)) != value]


def mix_builds(sources: dict[str, Path], out: Path, max_rows: dict[str, int | None], seed: int = 0,
               balance_repeat: int = 1, uncapped: dict[str, tuple[str, ...]] | None = None,
               question_weights: dict[str, float] | None = None, validation_percent: int = 0,
               twins: dict[str, str] | None = None) -> Path:
    """The `train` split of each build, per config, capped at `max_rows[source]` rows, shuffled, as one dataset
    folder (parquet shards + a README whose `configs:` YAML `load_dataset(out, config)` reads).

    Only `train` is taken: the builds put real galaxies on the side `gzllava.splits` gives them, so no test
    galaxy reaches training. `validation_percent` > 0: the validation side's galaxies are left out too
    (`holdout_rows`, with `twins`), counted in the card as "<source> validation side left out", so that the language
    model can be compared on galaxies neither it nor its tower trained on. Rows keep their `source` column (which
    build they came from). `balance_repeat` > 1:
    decision_tree rows of rarer answers are repeated (`balance_answers`), counted in the card as "answer repeats".
    `uncapped[source]`: decision-tree questions whose rows of that source are all kept, outside its cap (the
    questions only that source answers), counted in the card as "<source> (uncapped)". `question_weights`: after the
    answer repeats, each named question's rows are sampled that many times on average (`weight_questions`), counted
    in the card as "question weights".
    """
    import yaml
    from datasets import concatenate_datasets, load_dataset
    from datasets.utils.logging import disable_progress_bar

    from dataset_builder.card import dataset_info_metadata, dataset_infos

    disable_progress_bar()  # one line per config in the log instead of a bar per parquet file
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for config in CONFIGS:
        parts = []
        for name, folder in sources.items():
            rows = load_dataset(str(folder), config, split="train").shuffle(seed=seed)
            rows, held_out = holdout_rows(rows, validation_percent, twins)
            kept = set((uncapped or {}).get(name, ())) if config == "decision_tree" else set()
            extra = None
            if kept:
                asks = [question in kept for question in rows["question"]]
                extra = rows.select([i for i, asked in enumerate(asks) if asked])
                rows = rows.select([i for i, asked in enumerate(asks) if not asked])
            cap = max_rows.get(name)
            if cap is not None and len(rows) > cap:
                rows = rows.select(range(cap))
            for part, label in ((rows, name), (extra, f"{name} (uncapped)")):
                if part is None:
                    continue
                if parts and part.features != parts[0].features:
                    part = part.cast(parts[0].features)
                parts.append(part)
                counts.setdefault(config, {})[label] = len(part)
            if held_out:
                counts[config][f"{name} validation side left out"] = held_out
        mixed = concatenate_datasets(parts)
        if config == "decision_tree":
            before = len(mixed)
            mixed = balance_answers(mixed, balance_repeat, seed)
            if len(mixed) > before:
                counts[config]["answer repeats"] = len(mixed) - before
            mixed, added, removed = weight_questions(mixed, question_weights or {}, seed)
            if added or removed:
                counts[config]["question weights"] = f"+{added} / -{removed}"
        mixed = mixed.shuffle(seed=seed)
        target = out / "data" / config
        target.mkdir(parents=True, exist_ok=True)
        mixed.to_parquet(str(target / "train-00000-of-00001.parquet"))
        logger.info("mixed %s: %s", config, counts[config])
    # `dataset_info` (rows and bytes per split) as the builder's cards have it: `datasets` keys the cache of a
    # local folder on its name and its card's YAML only, so without it a new mix in a folder of the same name
    # (outputs/real/mixed after a change of caps) loaded the previous mix's cached rows.
    metadata = {"configs": [{"config_name": config, "data_files": [
        {"split": "train", "path": f"data/{config}/train-*.parquet"}]} for config in CONFIGS],
        "dataset_info": dataset_info_metadata(dataset_infos(out))}
    table = "\n".join(f"| {config} | " + " | ".join(f"{name}: {n}" for name, n in per.items()) + " |"
                      for config, per in counts.items())
    settings = mix_settings(sources, max_rows, seed, balance_repeat, uncapped, question_weights, validation_percent)
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=1) + "\n")
    (out / "README.md").write_text(
        f"---\n{yaml.safe_dump(metadata, sort_keys=False)}---\n# Mixed training set of the real-galaxy recipe\n\n"
        "The `train` splits of these gz-talk-instruct builds (real galaxies on the train side of gzllava.splits"
        + (f", less its {validation_percent}% validation side" if validation_percent > 0 else "") + "):\n\n"
        + "\n".join(f"- {name}: {folder}" for name, folder in sources.items())
        + "\n\n| config | rows per source |\n|---|---|\n" + table + "\n")
    return out
