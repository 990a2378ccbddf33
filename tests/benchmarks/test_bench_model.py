"""Smoke test of benchmarks/bench_model.py on the tiny shape: the report's structure and the exact-logits check.

No timing is asserted (timings belong to the benchmark, not to tests).
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_model.py"


@pytest.fixture(scope="module")
def bench_model():
    spec = importlib.util.spec_from_file_location("bench_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(bench_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "tiny.json"
    args = ["--shape", "tiny", "--repeats", "1", "--warmup", "0", "--new-tokens", "3", "--batch-size", "2",
            "--threads", "1", "--json", str(out)]
    return bench_model.main(args), out


def test_report_has_every_model_mode_and_comparison(bench_model, report, capsys):
    result, out = report
    assert set(result["models"]) == {bench_model.OURS, bench_model.REFERENCE, bench_model.RESAMPLER}
    assert result["models"][bench_model.REFERENCE]["class"] == "LlavaForConditionalGeneration"
    assert result["models"][bench_model.OURS]["class"] == "GZLlavaForConditionalGeneration"
    for row in result["models"].values():
        for mode in ("forward", "generate"):
            assert row[mode]["runs"] == 1 and row[mode]["median_s"] > 0 and row[mode]["tokens_per_s"] > 0
        # The forward's peak holds at least its float32 logits (batch 2 x prompt tokens x 640 vocabulary).
        logits_mib = 2 * row["prompt_tokens"] * 640 * 4 / 2**20
        assert logits_mib <= row["peak_memory_mib"]["forward"] < 50 * logits_mib
        assert row["peak_memory_mib"]["generate"] > 0
    # 32 px / patch 8 -> 16 image tokens for the mlp models, the tiny shape's 4 queries for the resampler.
    assert [result["models"][name]["image_tokens_per_prompt"] for name in bench_model.MODEL_NAMES] == [16, 16, 4]
    assert result["models"][bench_model.OURS]["generate"]["tokens"] == 2 * 3  # batch x new tokens
    for key in ("forward", "generate", "peak_memory_forward", "peak_memory_generate"):
        assert key in result["comparisons"]["gz_vs_stock_llava"] and key in result["comparisons"]["resampler_vs_mlp"]
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))  # --json writes the same report


def test_gz_llava_and_stock_llava_give_identical_logits_and_tokens(report):
    result, _ = report
    comparison = result["comparisons"]["gz_vs_stock_llava"]
    assert comparison["max_abs_logit_diff"] == 0.0
    assert comparison["same_greedy_tokens"] is True


def test_reference_shares_our_weights_and_buffers(bench_model):
    import torch

    models = bench_model.build_models(bench_model.SHAPES["tiny"], 4, "cpu", torch.float32)
    ours, reference, resampler = (models[name] for name in bench_model.MODEL_NAMES)
    assert reference.lm_head.weight.data_ptr() == ours.lm_head.weight.data_ptr()  # the same storage, not a copy
    assert reference.model.vision_tower.embeddings.patch_embedding.weight.data_ptr() == \
        ours.model.vision_tower.embeddings.patch_embedding.weight.data_ptr()
    assert resampler.model.language_model is ours.model.language_model
    assert not any(t.is_meta for t in [*reference.parameters(), *reference.buffers()])
    assert not any(t.is_meta for t in [*resampler.parameters(), *resampler.buffers()])


def test_the_7b_shape_is_refused_on_cpu(bench_model):
    with pytest.raises(SystemExit):
        bench_model.parse_args(["--shape", "llava-1.5-7b", "--device", "cpu"])
