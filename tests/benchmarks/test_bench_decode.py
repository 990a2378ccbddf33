"""benchmarks/bench_decode.py on the tiny shape (CPU) and benchmarks/gpu_report.py on the reports it writes.

No timing is asserted: the tests check what is counted (the bytes a decode step reads, the steps timed, the 4-bit
layers), that ours and stock Llava decode the same tokens, and that the GPU table reports a missing part as missing.
"""

import json

import pytest
import torch


@pytest.fixture(scope="module")
def bench_decode(load_benchmark):
    return load_benchmark("bench_decode")


@pytest.fixture(scope="module")
def decode_report(bench_decode, tmp_path_factory):
    folder = tmp_path_factory.mktemp("decode")
    out = folder / "bench_decode_7b.json"
    report = bench_decode.main(["--shape", "tiny", "--modes", "dynamic,static,nf4", "--new-tokens", "5", "--repeats", "1",
                                "--warmup", "0", "--static-warmup", "0", "--threads", "1", "--copy-megabytes", "8",
                                "--workdir", str(folder), "--json", str(out)])
    return report, out


def test_decode_step_reads_the_language_model_and_head_but_one_embedding_row(bench_decode, load_benchmark):
    model_module = load_benchmark("bench_model")
    models = model_module.build_models(model_module.SHAPES["tiny"], 4, "cpu", torch.float32)
    ours = models[model_module.OURS]
    lm = ours.model.language_model
    embedding = lm.get_input_embeddings().weight
    expected = sum(p.numel() * 4 for p in lm.parameters()) - embedding.numel() * 4 + ours.lm_head.weight.numel() * 4
    expected += sum(b.numel() * b.element_size() for b in lm.buffers())
    assert bench_decode.bytes_read_per_token(ours) == expected
    # The vision tower and projector are not read by a decode step.
    assert bench_decode.bytes_read_per_token(ours) < sum(p.numel() * 4 for p in ours.parameters())


def test_every_mode_is_measured_and_ours_decodes_the_stock_tokens(decode_report):
    report, out = decode_report
    assert set(report["decode"]) == {f"{model}/mlp2x_gelu {cache}" for model in ("gz", "llava") for cache in ("dynamic", "static")}
    for row in report["decode"].values():
        assert row["tokens_per_s"] > 0 and len(row["runs"]) == 1 and len(row["last_tokens"]) == 5
        assert row["fraction_of_limit"] == pytest.approx(row["tokens_per_s"] / report["limit"]["tokens_per_s"])
    assert report["decode"]["gz/mlp2x_gelu static"]["compiled"] is False  # transformers compiles on CUDA only
    assert all(report["same_tokens_as_stock"].values())
    assert all(row["same_tokens_every_call"] for row in report["decode"].values())  # float32 on a CPU: deterministic
    assert set(report["seconds"]) == {"dynamic", "static", "nf4"}
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))


def test_nf4_load_keeps_tower_projector_and_head_unquantised(decode_report):
    nf4 = decode_report[0]["nf4"]
    layers = nf4["4bit_layers"]
    assert layers["language_model"] == 2 * 7  # tiny Llama: 2 layers x (q, k, v, o, gate, up, down)
    assert layers["vision_tower"] == layers["projector"] == layers["lm_head"] == 0
    assert nf4["footprint_bytes"] < nf4["unquantized_footprint_bytes"]
    assert nf4["bytes_read_per_token"] < decode_report[0]["limit"]["bytes_read_per_token"]
    assert nf4["decode"]["tokens_per_s"] > 0 and nf4["decode"]["cache"] == "dynamic"


@pytest.mark.parametrize("modes", ["nf4,dynamic", "dynamic,dynamic", "dynamic,fast"])
def test_bad_modes_are_refused(bench_decode, modes, capsys):
    with pytest.raises(SystemExit):
        bench_decode.parse_args(["--modes", modes])
    assert "--modes" in capsys.readouterr().err


def test_the_7b_shape_is_refused_on_cpu(bench_decode, capsys):
    with pytest.raises(SystemExit):
        bench_decode.parse_args(["--shape", "llava-1.5-7b"])
    assert "needs --device cuda" in capsys.readouterr().err


def test_gpu_report_tables_the_parts_present_and_names_the_missing_ones(decode_report, tmp_path, load_benchmark):
    gpu_report = load_benchmark("gpu_report")
    report, out = decode_report
    (tmp_path / "bench_decode_7b.json").write_text(out.read_text())
    assert gpu_report.main([str(tmp_path)]) == 1  # three parts missing
    markdown = (tmp_path / "gpu_suite.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| check")]
    assert all(line.count("|") == 6 for line in rows)  # no cell breaks the table
    decode_row = next(line for line in rows if "gz/mlp2x_gelu dynamic cache" in line)
    assert f"{report['decode']['gz/mlp2x_gelu dynamic']['fraction_of_limit']:.2f}" in decode_row
    missing = [line for line in rows if gpu_report.MISSING in line]
    assert len(missing) == 2 + 1 + 3  # model (2), static decode (1), train (3)
    assert any("peak memory" in line and "< 16 GB" in line for line in missing)
    saved = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert saved["parts"]["model"] is None and saved["parts"]["decode"] == report


def test_gpu_report_refuses_a_folder_that_does_not_exist(tmp_path, capsys, load_benchmark):
    gpu_report = load_benchmark("gpu_report")
    assert gpu_report.main([str(tmp_path / "nowhere")]) == 2
    assert "usage" in capsys.readouterr().err
