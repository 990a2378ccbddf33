"""benchmarks/bench_views.py on the tiny shape: what it measures and reports (no timing is asserted)."""

import json

import torch


def test_bench_views_measures_one_model_both_ways_and_reports_every_mode(tmp_path, load_benchmark):
    bench = load_benchmark("bench_views")
    out = tmp_path / "views.json"
    report = bench.main(["--shape", "tiny", "--repeats", "1", "--warmup", "0", "--threads", "1", "--batch-size", "2",
                         "--text-tokens", "4", "--json", str(out)])
    assert json.loads(out.read_text()) == report
    assert report["image_tokens"] == 17 and report["sequence_length"] == 4 + 17 + 4  # CLS kept: 16 patches + 1
    assert set(report["modes"]) == {"features", "forward", "align_step"}
    for row in report["modes"].values():
        assert row["ours_s"] > 0 and row["reference_s"] > 0
        assert row["ratio"] == row["reference_s"] / row["ours_s"]


def test_the_two_settings_differ_only_in_the_views_and_only_the_projector_learns(load_benchmark):
    bench = load_benchmark("bench_views")
    model = bench.build_model(bench.SHAPES["tiny"])
    assert {name.split(".")[1] for name, p in model.named_parameters() if p.requires_grad} == {"multi_modal_projector"}
    inputs = bench.make_inputs(model.config, 2, 4)
    eight = bench.run_once(model, 8, "features", inputs)
    one = bench.run_once(model, 1, "features", inputs)
    assert not torch.allclose(torch.stack(eight), torch.stack(one))
    turned = {**inputs, "pixel_values": torch.rot90(inputs["pixel_values"], 1, (-2, -1))}
    cls = torch.stack(bench.run_once(model, 8, "features", turned))[:, 0]  # 8 views: the CLS token does not turn
    torch.testing.assert_close(cls, torch.stack(eight)[:, 0])
