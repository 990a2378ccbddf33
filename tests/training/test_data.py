"""Data: assistant-only loss mask, lengths measured exactly as collated, over-long samples, bad datasets."""

import logging

import datasets
import pytest
import torch

from gzllava.training import prepare_training
from gzllava.training.data import check_and_filter, image_tokens_per_image, load_splits, sample_lengths


TEXT_BLOCK = {"type": datasets.Value("string"), "text": datasets.Value("string")}
FEATURES = {
    "id": datasets.Value("string"), "subject_id": datasets.Value("string"), "image": datasets.Image(),
    "messages": datasets.List({"role": datasets.Value("string"), "content": datasets.List(TEXT_BLOCK)}),
    "source": datasets.Value("string"),
}


@pytest.fixture(scope="module")
def align_run(instruct_folder, make_args, tmp_path_factory):
    args = make_args(instruct_folder, tmp_path_factory.mktemp("align"), "--dataset_config", "conversation",
                     "--augment", "false")
    return prepare_training(*args)


def test_loss_mask_covers_assistant_answers_only(align_run):
    processor = align_run.base.processor
    examples = [align_run.data.train[i] for i in (0, 1)]
    batch = align_run.trainer.data_collator(examples)
    input_ids, labels, attention = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert attention[0].sum() != attention[1].sum()  # different lengths: padding is exercised

    image_token = processor.image_token_id
    assert (labels[input_ids == image_token] == -100).all()  # image tokens never in the loss
    assert (labels[attention == 0] == -100).all()  # nor padding
    for row, example in enumerate(examples):
        trained = input_ids[row][labels[row] != -100]
        answers = [block["text"] for message in example["messages"] if message["role"] == "assistant"
                   for block in message["content"]]
        eos = processor.tokenizer.eos_token
        # Exactly the answers (each with its leading space and end-of-turn token), nothing of the prompts.
        assert processor.tokenizer.decode(trained) == "".join(f" {answer}{eos}" for answer in answers)
        assert torch.equal(labels[row][labels[row] != -100], trained)  # labels are the tokens themselves
        prompt = processor.tokenizer.decode(input_ids[row][(labels[row] == -100) & (attention[row] == 1)])
        assert "USER:" in prompt and "ASSISTANT:" in prompt and "Describe this galaxy." in prompt


@pytest.mark.parametrize("compose", [{}, {"projector_type": "resampler", "num_query_tokens": 4, "use_image_delimiters": True}],
                         ids=["mlp-16-tokens", "resampler-4-tokens-delimited"])
def test_measured_length_is_the_collated_length(instruct_folder, compose):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from gzllava.tiny import tiny_model_and_processor

    model, processor = tiny_model_and_processor(**compose)
    dataset = datasets.load_dataset(str(instruct_folder), "conversation", split="train")
    measured = sample_lengths(dataset, "image", processor, image_tokens_per_image(model.config))["num_tokens"]
    collator = DataCollatorForVisionLanguageModeling(processor, assistant_only_loss=True)
    for i in range(3):
        collated = collator([dict(dataset[i])])
        assert collated["input_ids"].shape[1] == measured[i]


def test_overlong_samples_are_dropped_before_training_and_counted(align_run, instruct_folder, caplog):
    processor, config = align_run.base.processor, align_run.base.model.config
    dataset = datasets.load_dataset(str(instruct_folder), "description", split="train")
    lengths = sample_lengths(dataset, "image", processor, 16)["num_tokens"]
    limit = 100
    expected = sum(n > limit for n in lengths)
    assert expected == 2  # the fixture's two long answers
    with caplog.at_level(logging.WARNING, logger="gzllava.training.data"):
        kept, report = check_and_filter(dataset, "train", processor, config, max_length=limit, overlong="drop")
    assert len(kept) == len(dataset) - 2 and report.dropped_overlong == 2 and report.kept_longest_tokens <= limit
    assert "dropped 2 of 16 samples longer than max_length=100" in caplog.text
    assert "description-train-7" in caplog.text and "description-train-15" in caplog.text
    assert kept.column_names == ["image", "messages"]


def test_overlong_policy_error_stops_with_the_samples_named(align_run, instruct_folder):
    dataset = datasets.load_dataset(str(instruct_folder), "description", split="train")
    with pytest.raises(ValueError, match=r"2 of 16 samples are longer than max_length=100.*description-train-7"):
        check_and_filter(dataset, "train", align_run.base.processor, align_run.base.model.config, 100, "error")


def test_max_length_below_every_sample_is_an_error(align_run, instruct_folder):
    dataset = datasets.load_dataset(str(instruct_folder), "description", split="train")
    with pytest.raises(ValueError, match="all 16 samples are longer than max_length=10"):
        check_and_filter(dataset, "train", align_run.base.processor, align_run.base.model.config, 10, "drop")


def test_prepare_training_filters_with_the_recipe_max_length(instruct_folder, make_args, tmp_path):
    run = prepare_training(*make_args(instruct_folder, tmp_path, "--dataset_config", "description", "--max_length", "100"))
    assert len(run.data.train) == 14 and run.data.reports[0].dropped_overlong == 2


def test_configs_can_be_concatenated(instruct_folder, make_args, tmp_path):
    script_args, *_ = make_args(instruct_folder, tmp_path, "--dataset_config", "description,conversation")
    train, _ = load_splits(script_args, with_eval=False)
    assert len(train) == 16 + 8


@pytest.mark.parametrize("flags, message", [
    (["--dataset_name", "/no/such/dataset"], "Dataset '/no/such/dataset'.*not found"),
    (["--dataset_config", "captions"], "Dataset .*config 'captions'.*cannot be loaded"),
    (["--dataset_train_split", "training"], "has no split 'training'; it has"),
])
def test_missing_dataset_config_or_split_is_named(instruct_folder, make_args, tmp_path, flags, message):
    args = make_args(instruct_folder, tmp_path, "--dataset_config", "description", *flags)
    with pytest.raises(ValueError, match=message):
        prepare_training(*args)


@pytest.mark.parametrize("column, message", [("image", r"has no image \(or images\) column"),
                                             ("messages", "has no messages column")])
def test_dataset_without_images_or_messages_is_refused(make_rows, write_dataset, make_args, tmp_path, column, message):
    rows = [{key: value for key, value in row.items() if key != column} for row in make_rows("description", "train", 4)]
    features = datasets.Features({key: value for key, value in FEATURES.items() if key != column})
    # (A unique folder name: datasets' cache can mistake same-named folders written in the same second.)
    folder = write_dataset(tmp_path / f"no-{column}", {"description": {"train": rows}}, features=features)
    with pytest.raises(ValueError, match=f"Split 'train' {message}.*Its columns:"):
        prepare_training(*make_args(folder, tmp_path / "out", "--dataset_config", "description"))


def test_sample_whose_image_blocks_do_not_match_its_image_is_refused(make_rows, write_dataset, make_args, tmp_path):
    rows = make_rows("description", "train", 4)
    rows[2]["messages"][0]["content"] = [{"type": "text", "text": "No image block here."}]
    folder = write_dataset(tmp_path / "no-image-block", {"description": {"train": rows}})
    with pytest.raises(ValueError, match=r"1 sample\(s\) whose image count.*description-train-2 \(row 2\): 1 image\(s\), 0"):
        prepare_training(*make_args(folder, tmp_path / "out", "--dataset_config", "description"))
