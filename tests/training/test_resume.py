"""Checkpoints: a run killed with SIGKILL resumes from its last checkpoint and ends with the same weights."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gzllava.training import prepare_training, resolve_checkpoint, train
from gzllava.training.run import last_complete_checkpoint

QLORA = ["--stage", "instruct", "--use_peft", "true", "--load_in_4bit", "true", "--use_bnb_nested_quant", "true",
         "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0.05"]


def test_last_checkpoint_skips_one_that_was_not_written_to_the_end(tmp_path, make_args, instruct_folder):
    for step, complete in ((2, True), (4, True), (6, False)):
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        (checkpoint / "model.safetensors").write_bytes(b"")
        if complete:
            (checkpoint / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-4")
    _, training_args, _, _ = make_args(instruct_folder, tmp_path, "--resume_from_checkpoint", "last")
    assert resolve_checkpoint(training_args) == str(tmp_path / "checkpoint-4")


def test_resume_last_without_checkpoints_starts_fresh_and_a_missing_path_is_an_error(tmp_path, make_args, instruct_folder):
    _, training_args, _, _ = make_args(instruct_folder, tmp_path / "new", "--resume_from_checkpoint", "last")
    assert resolve_checkpoint(training_args) is None
    _, training_args, _, _ = make_args(instruct_folder, tmp_path, "--resume_from_checkpoint", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="gone"):
        resolve_checkpoint(training_args)


def _trainable(run) -> dict:
    return {name: param.detach().clone() for name, param in run.trainer.model.named_parameters() if param.requires_grad}


def test_resumed_qlora_continues_in_the_precision_and_with_the_weights_of_an_uninterrupted_run(
        tmp_path, instruct_folder, make_args):
    # transformers resumes a PEFT model with load_adapter, which up-casts the bf16 LoRA weights to float32: the
    # resumed run then trained different (float32) weights from its first step on.
    flags = ["--dataset_config", "description", "--max_length", "100", "--save_strategy", "steps", "--save_steps", "2",
             "--learning_rate", "0.01", "--augment", "true", *QLORA]
    reference = prepare_training(*make_args(instruct_folder, tmp_path / "uninterrupted", *flags, "--max_steps", "3"))
    train(reference)
    train(prepare_training(*make_args(instruct_folder, tmp_path / "resumed", *flags, "--max_steps", "2")))
    resumed = prepare_training(*make_args(instruct_folder, tmp_path / "resumed", *flags, "--max_steps", "3",
                                          "--resume_from_checkpoint", "last"))
    train(resumed)
    assert resumed.trainer.state.global_step == 3
    expected, got = _trainable(reference), _trainable(resumed)
    assert expected.keys() == got.keys() and any("lora_A" in name for name in expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name  # bf16 LoRA stays bf16, the fp32 projector fp32
        assert torch.equal(expected[name], got[name]), name


def _weights(folder: Path) -> dict:
    return load_file(folder / "final" / "model.safetensors")


def _run_until_killed(command: list[str], env: dict, checkpoint: Path, timeout: float = 240) -> None:
    """Start the run; SIGKILL it as soon as `checkpoint` is complete (no chance to clean up or save)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not (checkpoint / "trainer_state.json").is_file():
            assert process.poll() is None, f"the run ended before {checkpoint.name}: {process.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


@pytest.mark.integration
@pytest.mark.parametrize("stage", ["align", "instruct"])
def test_sigkilled_run_resumes_and_ends_with_the_weights_of_an_uninterrupted_run(
        tmp_path, instruct_folder, make_flags, train_script, stage):
    # 16 steps over 14 samples in batches of 4: 4 epochs, so augmentation changes epoch across the resume too.
    flags = ["--dataset_config", "description", "--max_length", "100", "--max_steps", "16", "--save_strategy", "steps",
             "--save_steps", "4", "--save_total_limit", "2", "--learning_rate", "0.01", "--augment", "true",
             *(QLORA if stage == "instruct" else [])]
    reference = train_script(make_flags(instruct_folder, tmp_path / "uninterrupted", *flags))
    assert reference.returncode == 0, reference.stderr[-3000:]

    interrupted = tmp_path / "interrupted"
    command = [sys.executable, str(Path(__file__).resolve().parents[2] / "train_sft.py"),
               *make_flags(instruct_folder, interrupted, *flags)]
    _run_until_killed(command, {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"},
                      interrupted / "checkpoint-4")
    assert not (interrupted / "final").exists() and not (interrupted / "checkpoint-16").exists()  # killed mid-run

    last = last_complete_checkpoint(str(interrupted))
    # align checkpoints hold the model (its own parameter names), instruct ones the adapter + projector (peft's names)
    at_kill, prefix = ((load_file(Path(last) / "model.safetensors"), "model.") if stage == "align" else
                       (load_file(Path(last) / "adapter_model.safetensors"), "base_model.model.model."))

    resumed = train_script(make_flags(instruct_folder, interrupted, *flags, "--resume_from_checkpoint", "last"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {last}" in resumed.stderr

    expected, got = _weights(tmp_path / "uninterrupted"), _weights(interrupted)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # Training did go on after the checkpoint (checkpoints use the model's names, the export llava's).
    projector = [key for key in expected if key.startswith("multi_modal_projector.")]
    assert projector and any(not torch.equal(expected[key], at_kill[f"{prefix}{key}"]) for key in projector)
