"""benchmarks/bench_train.py's folder shapes (llava-1.5-7b on a GPU) on the CPU: the saved bases, the three instruct
cases on bench_model's tiny shape, the refusals and the driver's handling of a failed case.

No timing is asserted (timings belong to the benchmark, not to tests).
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench_train():
    sys.path.insert(0, str(BENCHMARKS))  # its `from rss import ...` and `from bench_model import ...`
    spec = importlib.util.spec_from_file_location("bench_train", BENCHMARKS / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_7b_bases_have_576_image_tokens_and_the_resampler_64_without_allocating(bench_train):
    import torch

    from gzllava.llava_export import to_llava_config

    bases = bench_train.build_bases(bench_train.SHAPES["llava-1.5-7b"], 64, "meta", torch.bfloat16)
    assert all(t.is_meta for model in (bases.ours, bases.resampler) for t in [*model.parameters(), *model.buffers()])
    assert bases.ours.config.num_image_tokens == 576 and bases.resampler.config.num_image_tokens == 64
    mlp, resampler = bases.processors["mlp2x_gelu"], bases.processors["resampler"]
    size = mlp.image_processor.crop_size["height"]
    assert size == 336 and mlp.num_image_tokens(size, size) == 576 and resampler.num_image_tokens(size, size) == 64
    assert bases.ours.config.image_token_id == bases.resampler.config.image_token_id == mlp.image_token_id
    stock = to_llava_config(bases.ours.config)
    assert (stock.image_seq_length, stock.image_token_index) == (576, mlp.image_token_id)
    assert 13e9 < bases.nbytes < 15e9  # bf16: the tower + LM once, both projectors


def test_the_7b_shape_is_refused_without_cuda_in_one_line(bench_train, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_train.parse_options(["--shape", "llava-1.5-7b"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--shape llava-1.5-7b needs --cuda" in error


def test_folder_shapes_only_run_the_instruct_cases(bench_train, capsys):
    with pytest.raises(SystemExit):
        bench_train.parse_options(["--shape", "small", "--cases", "instruct-gz,align-gz"])
    assert "unknown case(s) align-gz for --shape small" in capsys.readouterr().err
    options = bench_train.parse_options(["--shape", "small"])
    assert options.cases == list(bench_train.FOLDER_CASES) and options.queries == 64


@pytest.fixture(scope="module")
def folder_runs(bench_train, tmp_path_factory):
    """bench_model's tiny shape through the folder path: bases written once, each instruct case measured in-process."""
    import torch

    root = tmp_path_factory.mktemp("bench-train")
    dataset = root / "dataset"
    bench_train.build_dataset(dataset, 12, 32)
    bases = bench_train.build_bases(bench_train.SHAPES["tiny"], 4, "cpu", torch.float32)
    folders = bench_train.write_bases(bases, root / "bases", bench_train.FOLDER_CASES)
    results, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # as the benchmark's CPU runs; two threads on a busy 2-core machine were 10x slower
    try:
        for case in bench_train.FOLDER_CASES:
            options = bench_train.parse_options(["--shape", "small", "--queries", "4", "--steps", "1", "--warmup", "0",
                                                 "--batch", "2", "--case", case, "--dataset", str(dataset),
                                                 "--bases", str(root / "bases")])
            results[case] = bench_train.measure(case, options)
    finally:
        torch.set_num_threads(threads)
    return bases, folders, results


def test_stock_and_gz_train_on_the_same_samples_and_tokens(folder_runs):
    _, _, results = folder_runs
    gz, stock = results["instruct-gz"], results["instruct-stock"]
    assert (gz["model_class"], stock["model_class"]) == ("GZLlavaForConditionalGeneration", "LlavaForConditionalGeneration")
    for key in ("train_samples", "samples_seen", "tokens_seen", "image_tokens", "lora_r", "trainable_params"):
        assert gz[key] == stock[key], key
    assert gz["image_tokens"] == 16 and gz["lora_r"] == 128  # 32 px / patch 8; the 7B recipe's LoRA rank
    for result in (gz, stock):
        assert result["load_in_4bit"] and result["activation_checkpointing"] and result["compute_dtype"] == "float32"
        assert result["steps"] == 1 and result["samples_per_s"] > 0 and result["peak_cuda_mib"] is None


def test_the_resampler_case_trains_its_own_projector_on_the_same_samples(folder_runs):
    _, _, results = folder_runs
    resampler, gz = results["instruct-resampler"], results["instruct-gz"]
    assert resampler["model_class"] == "GZLlavaForConditionalGeneration" and resampler["image_tokens"] == 4
    assert resampler["train_samples"] == gz["train_samples"] and resampler["samples_seen"] == gz["samples_seen"]
    assert resampler["tokens_seen"] == gz["tokens_seen"] - gz["samples_seen"] * (16 - 4)  # 12 fewer image tokens each


def test_the_bases_share_one_copy_of_the_weights_and_load_unchanged(folder_runs):
    import torch
    from transformers import LlavaForConditionalGeneration

    from gzllava.llava_export import to_llava_model

    bases, folders, _ = folder_runs
    shared = [name for name in os.listdir(folders["instruct-gz"]) if name.startswith("tower-lm-")]
    assert shared and all(
        os.path.samefile(folders["instruct-gz"] / name, folders[case] / name) for name in shared for case in folders)
    stock = LlavaForConditionalGeneration.from_pretrained(folders["instruct-stock"]).state_dict()
    reference = to_llava_model(bases.ours).state_dict()
    assert stock.keys() == reference.keys() and all(torch.equal(stock[k], reference[k]) for k in reference)
    config = json.loads((folders["instruct-resampler"] / "config.json").read_text())
    assert (config["projector_type"], config["num_query_tokens"]) == ("resampler", 4)


def test_a_failed_case_is_reported_and_the_others_kept(bench_train, monkeypatch, tmp_path, capsys):
    figures = {"samples_per_s": 2.0, "tokens_per_s": 400.0, "step_s": 1.0, "peak_rss_mib": 100.0, "peak_cuda_mib": None,
               "peak_cuda_reserved_mib": None, "model_class": "M", "image_tokens": 64, "trainable_params": 1,
               "lora_r": 16, "load_s": 1.0, "train_s": 2.0, "process_wall_s": 3.0, "tokens_per_sample": 200.0}

    def run_case(case, options, dataset, bases):
        if case == "align-gz":
            return None, {"case": case, "exit": 1, "process_wall_s": 0.5, "stderr_tail": "Traceback\nValueError: boom"}
        return {**figures, "case": case, "samples_per_s": 1.0 if case == "instruct-stock" else 2.0}, None

    monkeypatch.setattr(bench_train, "build_dataset", lambda *args: None)
    monkeypatch.setattr(bench_train, "run_case", run_case)
    out = tmp_path / "report.json"
    code = bench_train.main(["--cases", "align-gz,instruct-gz,instruct-stock", "--rounds", "1", "--json", str(out)])
    assert code == 1
    report = json.loads(out.read_text())
    assert [f["case"] for f in report["failures"]] == ["align-gz"]
    assert set(report["results"]) == {"instruct-gz", "instruct-stock"}
    assert report["comparisons"]["instruct-gz / instruct-stock"]["samples_per_s"] == 2.0
    assert {"torch", "transformers", "trl", "peft", "bitsandbytes", "date", "device"} <= set(report["environment"])
    assert "ValueError: boom" in capsys.readouterr().err
