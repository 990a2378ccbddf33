"""gz-talk-instruct (or any image + `messages` dataset) for SFT: loading, checks, and the over-long filter.

TRL's vision collator truncates at `max_length`, and a truncation that cuts image tokens leaves more image
features than `<image>` tokens ("Image features and image tokens do not match", the commonest LLaVA
fine-tuning failure). So every sample's full length, image tokens included, is computed here BEFORE
training, from the chat template and the projector's image-token count, and over-long samples are
dropped with a count (or the run stops, with `overlong: error`). Nothing is truncated afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import datasets
from datasets import Dataset, load_dataset
from trl import ScriptArguments, SFTConfig

from .arguments import GZLlavaArguments


logger = logging.getLogger(__name__)

IMAGE_COLUMNS = ("image", "images")
MESSAGES = "messages"
SHOWN_IDS = 5


@dataclass
class SplitReport:
    split: str
    samples: int
    dropped_overlong: int
    longest_tokens: int
    kept_longest_tokens: int


@dataclass
class PreparedData:
    train: Dataset
    eval: Dataset | None
    reports: list[SplitReport]

    def as_dict(self) -> dict:
        return {report.split: asdict(report) for report in self.reports}


def load_splits(script_args: ScriptArguments, with_eval: bool) -> tuple[Dataset, Dataset | None]:
    """The train split (and the eval split when evaluating), with errors that name the dataset."""
    name = script_args.dataset_name
    configs = [c.strip() for c in (script_args.dataset_config or "").split(",") if c.strip()] or [None]
    wanted = [script_args.dataset_train_split] + ([script_args.dataset_test_split] if with_eval else [])
    parts: dict[str, list[Dataset]] = {split: [] for split in wanted}
    for config in configs:  # "description,decision_tree": the configs' rows concatenated, as in LLaVA's mixtures
        label = f"{name!r}" + (f" (config {config!r})" if config else "")
        try:
            dataset = load_dataset(name, config)
        except (FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as error:
            raise ValueError(f"Dataset {label} not found: {error}") from error
        except ValueError as error:  # an unknown config name, an empty folder
            raise ValueError(f"Dataset {label} cannot be loaded: {error}") from error
        for split in wanted:
            if split not in dataset:
                raise ValueError(f"Dataset {label} has no split {split!r}; it has {list(dataset)}.")
            parts[split].append(dataset[split])
    joined = {split: datasets.concatenate_datasets(found) if len(found) > 1 else found[0] for split, found in parts.items()}
    return joined[script_args.dataset_train_split], joined.get(script_args.dataset_test_split) if with_eval else None


def image_column(dataset: Dataset, where: str) -> str:
    """The dataset's image column; a clear error when it has no images or no messages."""
    columns = dataset.column_names
    found = [column for column in IMAGE_COLUMNS if column in columns]
    missing = ([] if found else ["image (or images)"]) + ([] if MESSAGES in columns else [MESSAGES])
    if missing:
        raise ValueError(f"{where} has no {' and no '.join(missing)} column; GZ-LLaVA trains on an `image` column "
                         f"and a `messages` conversation. Its columns: {columns}.")
    if len(found) > 1:
        raise ValueError(f"{where} has both `image` and `images` columns; keep one.")
    return found[0]


def image_tokens_per_image(model_config) -> int:
    """Tokens the processor writes for one image: the projector's count, plus `<boi>`/`<eoi>` when used."""
    return model_config.num_image_tokens + (2 if model_config.use_image_delimiters else 0)


def sample_lengths(dataset: Dataset, image_col: str, processor, tokens_per_image: int, num_proc: int | None = None) -> Dataset:
    """Per sample: `num_tokens` (as the collator will build it, image tokens expanded), `num_images`, `num_image_blocks`.

    Images are not decoded: only the messages are rendered and tokenised.
    """
    undecoded = dataset.cast_column(
        image_col, datasets.Image(decode=False) if image_col == "image" else datasets.List(datasets.Image(decode=False))
    )
    tokenizer = processor.tokenizer

    def measure(messages_batch, images_batch):
        texts = processor.apply_chat_template(messages_batch, tokenize=False)
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        blocks = [sum(part["type"] == "image" for message in messages for part in (message["content"] or []))
                  if all(isinstance(message.get("content"), list) for message in messages) else -1
                  for messages in messages_batch]
        images = [int(image is not None) if image_col == "image" else len(image or []) for image in images_batch]
        # Each image placeholder is one `<image>` token after tokenisation and `tokens_per_image` once expanded.
        return {
            "num_tokens": [length + n * (tokens_per_image - 1) for length, n in zip(lengths, blocks)],
            "num_images": images,
            "num_image_blocks": blocks,
        }

    return undecoded.map(
        measure, input_columns=[MESSAGES, image_col], batched=True, remove_columns=undecoded.column_names,
        num_proc=num_proc, desc="Measuring sample lengths",
    )


def _ids(dataset: Dataset, indices: list[int]) -> list[str]:
    shown = indices[:SHOWN_IDS]
    if "id" in dataset.column_names:
        ids = dataset.select_columns(["id"])  # without decoding the images
        return [f"{ids[i]['id']} (row {i})" for i in shown]
    return [f"row {i}" for i in shown]


def check_and_filter(dataset: Dataset, split: str, processor, model_config, max_length: int | None,
                     overlong: str, num_proc: int | None = None) -> tuple[Dataset, SplitReport]:
    """Fail on malformed rows; drop (or refuse) samples longer than `max_length`; keep only image + messages."""
    where = f"Split {split!r}"
    if len(dataset) == 0:
        raise ValueError(f"{where} is empty.")
    image_col = image_column(dataset, where)
    measured = sample_lengths(dataset, image_col, processor, image_tokens_per_image(model_config), num_proc)
    tokens, images, blocks = measured["num_tokens"], measured["num_images"], measured["num_image_blocks"]

    malformed = [i for i, (n_images, n_blocks) in enumerate(zip(images, blocks)) if n_images != n_blocks or n_images == 0]
    if malformed:
        i = malformed[0]
        raise ValueError(
            f"{where}: {len(malformed)} sample(s) whose image count does not match the image blocks of their "
            f"`messages` (each image needs one {{'type': 'image'}} block, each sample at least one image), e.g. "
            f"{', '.join(_ids(dataset, malformed))}: {images[i]} image(s), "
            f"{blocks[i] if blocks[i] >= 0 else 'content that is not a list of blocks'}."
        )

    overlong_rows = [i for i, n in enumerate(tokens) if max_length is not None and n > max_length]
    if overlong_rows and overlong == "error":
        raise ValueError(
            f"{where}: {len(overlong_rows)} of {len(dataset)} samples are longer than max_length={max_length} tokens "
            f"(image tokens included; the longest has {max(tokens)}), e.g. {', '.join(_ids(dataset, overlong_rows))}. "
            "Truncating them would cut image tokens: raise max_length, or set `overlong: drop` to skip them."
        )
    if len(overlong_rows) == len(dataset):
        raise ValueError(f"{where}: all {len(dataset)} samples are longer than max_length={max_length} tokens "
                         f"(the shortest has {min(tokens)}, image tokens included): raise max_length.")
    kept = dataset
    if overlong_rows:
        dropped = set(overlong_rows)
        kept = dataset.select([i for i in range(len(dataset)) if i not in dropped])
        logger.warning(
            "%s: dropped %d of %d samples longer than max_length=%d tokens (image tokens included; longest %d), e.g. %s",
            where, len(overlong_rows), len(dataset), max_length, max(tokens), ", ".join(_ids(dataset, overlong_rows)),
        )
    kept_tokens = [n for i, n in enumerate(tokens) if max_length is None or n <= max_length]
    report = SplitReport(split, len(dataset), len(overlong_rows), max(tokens), max(kept_tokens))
    return kept.select_columns([image_col, MESSAGES]), report


def prepare_datasets(script_args: ScriptArguments, training_args: SFTConfig, gz_args: GZLlavaArguments,
                     processor, model_config) -> PreparedData:
    """Load, check and filter the train (and eval) splits. Everything fails here, before the model trains."""
    with_eval = training_args.eval_strategy != "no"
    train, evaluation = load_splits(script_args, with_eval)
    reports = []
    train, report = check_and_filter(train, script_args.dataset_train_split, processor, model_config,
                                     training_args.max_length, gz_args.overlong, training_args.dataset_num_proc)
    reports.append(report)
    if evaluation is not None:
        evaluation, report = check_and_filter(evaluation, script_args.dataset_test_split, processor, model_config,
                                              training_args.max_length, gz_args.overlong, training_args.dataset_num_proc)
        reports.append(report)
    return PreparedData(train, evaluation, reports)
