"""Base models: llava-hf checkpoints train as they are; models without a usable image token are refused early."""

import json

import pytest
from transformers import LlamaForCausalLM

from gzllava.llava_export import save_as_llava
from gzllava.tiny import tiny_language_model, tiny_model_and_processor, tiny_tokenizer
from gzllava.training import prepare_training
from processing_gzllava import GZLlavaProcessor


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    model, processor = tiny_model_and_processor()
    folder = tmp_path_factory.mktemp("tiny-gzllava")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_a_llava_hf_checkpoint_is_a_base_model(instruct_folder, make_args, tmp_path):
    model, processor = tiny_model_and_processor()
    save_as_llava(model, processor, tmp_path / "llava-hf")
    run = prepare_training(*make_args(instruct_folder, tmp_path / "out", "--model_name_or_path", str(tmp_path / "llava-hf"),
                                      "--dataset_config", "description"))
    assert type(run.base.processor) is GZLlavaProcessor
    assert "{% generation %}" in run.base.processor.chat_template  # the assistant-only mask needs the markers
    assert run.base.processor.image_token_id == run.base.model.config.image_token_id
    assert len(run.data.train) == 14  # 16 minus the 2 over-long


def test_a_tokenizer_without_the_image_token_is_refused(instruct_folder, make_args, tmp_path, tiny_checkpoint):
    import shutil

    folder = tmp_path / "no-image-token"
    shutil.copytree(tiny_checkpoint, folder)
    tiny_tokenizer().save_pretrained(folder)  # the LM's tokenizer, before compose added <image>
    with pytest.raises(ValueError, match=r"no-image-token.*has no '<image>' token"):
        prepare_training(*make_args(instruct_folder, tmp_path / "out", "--model_name_or_path", str(folder)))


def test_an_image_token_id_that_is_not_the_tokenizers_is_refused(instruct_folder, make_args, tmp_path, tiny_checkpoint):
    import shutil

    folder = tmp_path / "wrong-id"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["image_token_id"] = 5
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"'<image>' is id \d+ but config.image_token_id is 5"):
        prepare_training(*make_args(instruct_folder, tmp_path / "out", "--model_name_or_path", str(folder)))


def test_a_text_only_checkpoint_is_refused_with_the_way_to_compose(instruct_folder, make_args, tmp_path):
    language_model: LlamaForCausalLM = tiny_language_model(len(tiny_tokenizer()))
    language_model.save_pretrained(tmp_path / "llama")
    with pytest.raises(ValueError, match="'llama' checkpoint, not GZ-LLaVA or llava-hf.*text_model_name_or_path"):
        prepare_training(*make_args(instruct_folder, tmp_path / "out", "--model_name_or_path", str(tmp_path / "llama")))


def test_a_missing_base_model_is_named(instruct_folder, make_args, tmp_path):
    with pytest.raises(ValueError, match="Cannot load the base model '/no/such/model'"):
        prepare_training(*make_args(instruct_folder, tmp_path / "out", "--model_name_or_path", "/no/such/model"))
