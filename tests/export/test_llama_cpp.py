"""The GGUF export run by a real llama.cpp (llama-cpp-python + mtmd): loads, sees the image, answers as transformers.

llama-cpp-python 0.3.36's LLaVA-1.5 clip graph appends CLIP's class embedding after the patches (llama.cpp issue
#25814; `gzllava.export.agreement`), so with that runtime the files are checked against transformers with the image
features in that order, and the plain-transformers goal is an expected failure naming the bug. With a llama.cpp whose
graph puts CLS first (the one-line fix of PR #25844, e.g. `MTMD_CPP_LIB=<folder with a rebuilt libmtmd.so>`), the same
tests assert image embeddings equal to transformers' `get_image_features` and >= 9/10 equal greedy answers.
"""

from __future__ import annotations

import shutil

import gguf
import numpy as np
import pytest
import torch

from gzllava.export.agreement import agreement, computed_reference, image_embedding_gaps
from gzllava.export.chat_template import MEDIA_MARKER
from gzllava.export.gguf_export import export_gguf
from gzllava.export.runtime import GGUFFileError, LlamaCppGZLlava
from gzllava.tiny import toy_galaxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exported(tiny, converter, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf") / "tiny-gguf"
    return export_gguf(*tiny, out, types="f32,f16,q8_0,q4_0", converter_dir=converter)


@pytest.fixture(scope="module")
def runtime_f32(exported, tiny):
    runtime = LlamaCppGZLlava(exported / "gz-llava-f32.gguf", exported / "mmproj-gz-llava-f32.gguf", n_threads=1,
                              suppress_token_ids=[tiny[0].config.image_token_id])
    yield runtime
    runtime.close()


def _field(reader, key):
    field = reader.fields[key]
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types[0] == gguf.GGUFValueType.STRING else value.tolist()[0]


def test_files_manifest_and_metadata(exported, tiny):
    model, processor = tiny
    names = sorted(p.name for p in exported.iterdir())
    assert names == ["README.md", "gguf_export.json", "gz-llava-f16.gguf", "gz-llava-f32.gguf", "gz-llava-q4_0.gguf",
                     "gz-llava-q8_0.gguf", "mmproj-gz-llava-f16.gguf", "mmproj-gz-llava-f32.gguf"]
    reader = gguf.GGUFReader(exported / "gz-llava-f16.gguf")
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "tokenizer.ggml.pre") == "gpt-2"
    assert _field(reader, "tokenizer.ggml.eos_token_id") == processor.tokenizer.eos_token_id
    assert MEDIA_MARKER + "\n" in _field(reader, "tokenizer.chat_template")
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(exported / "gz-llava-q8_0.gguf").tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    sizes = {name: (exported / name).stat().st_size for name in names if name.endswith(".gguf")}
    assert sizes["gz-llava-q4_0.gguf"] < sizes["gz-llava-q8_0.gguf"] < sizes["gz-llava-f16.gguf"] < sizes["gz-llava-f32.gguf"]
    assert "llama-mtmd-cli" in (exported / "README.md").read_text()


def test_text_logits_match_transformers(runtime_f32, tiny):
    model, processor = tiny
    ids = processor.tokenizer("USER: Is there a bar?\nASSISTANT: a barred spiral").input_ids
    llm = runtime_f32.llm
    llm.reset()
    llm.eval(ids)
    with torch.no_grad():
        reference = model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    np.testing.assert_allclose(runtime_f32._last_logits()[: reference.shape[0]], reference, atol=1e-3)


def test_image_embeddings_are_one_references_to_float_precision(runtime_f32, tiny):
    gaps = image_embedding_gaps(runtime_f32, *tiny, toy_galaxy(3, size=32))
    reference = computed_reference(gaps)
    assert reference is not None, gaps
    assert gaps[reference] < 1e-4 and max(gaps.values()) > 1e-2, gaps  # exact for one order, far from the other


@pytest.fixture(scope="module")
def tiny_agreement(exported, tiny):
    images = [toy_galaxy(seed, size=32) for seed in range(10)]
    result = agreement(*tiny, exported, images, types=("f32", "f16", "q8_0"), max_new_tokens=20, n_threads=1)
    print("agreement", result)
    assert result["q8_0"]["images"] == 10
    return result


def test_greedy_answers_agree_with_what_the_runtime_computes(tiny_agreement):
    for outtype in ("f32", "f16"):
        reference = computed_reference(tiny_agreement[outtype]["image_embeddings_max_abs_diff"])
        assert tiny_agreement[outtype][reference] >= 9, tiny_agreement


def test_greedy_answers_equal_transformers(tiny_agreement):
    """The issue's goal: the same first 20 tokens as transformers on >= 9 of 10 images, f32 and f16."""
    if computed_reference(tiny_agreement["f32"]["image_embeddings_max_abs_diff"]) == "transformers_llama_cpp_order":
        pytest.xfail("this llama.cpp's llava graph puts CLS after the patches (llama.cpp #25814, fix: PR #25844)")
    for outtype in ("f32", "f16"):
        assert tiny_agreement[outtype]["transformers"] >= 9, tiny_agreement


def test_q4_answers(exported, tiny):
    runtime = LlamaCppGZLlava(exported / "gz-llava-q4_0.gguf", exported / "mmproj-gz-llava-f16.gguf", n_threads=1)
    try:
        text, ids = runtime.answer(toy_galaxy(1, size=32), "Is there a bar?", 8)
    finally:
        runtime.close()
    assert len(ids) > 0 and text


def test_truncated_gguf_fails_loudly(exported, tmp_path):
    cut = tmp_path / "cut.gguf"
    data = (exported / "gz-llava-f16.gguf").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(GGUFFileError, match="cut.gguf"):
        LlamaCppGZLlava(cut, exported / "mmproj-gz-llava-f16.gguf")
    shutil.copy(exported / "gz-llava-f16.gguf", tmp_path / "ok.gguf")
    with pytest.raises(GGUFFileError, match="missing-mmproj.gguf: no such GGUF"):
        LlamaCppGZLlava(tmp_path / "ok.gguf", tmp_path / "missing-mmproj.gguf")


def test_ollama_export_has_a_modelfile_naming_both_files(tiny, converter, tmp_path):
    from gzllava.export.ollama import export_ollama

    out = export_ollama(*tiny, tmp_path / "ollama", outtype="q4_k_m", ollama_name="gz-llava-tiny",
                        converter_dir=converter)
    modelfile = (out / "Modelfile").read_text()
    froms = [line.split(" ", 1)[1] for line in modelfile.splitlines() if line.startswith("FROM ")]
    assert froms == ["./gz-llava-q4_k_m.gguf", "./mmproj-gz-llava-f16.gguf"]
    assert all((out / name[2:]).is_file() for name in froms)
    assert not (out / "gz-llava-f16.gguf").exists()  # the quantiser's source is not kept when not asked for
    assert 'PARAMETER stop "</s>"' in modelfile and "TEMPLATE" in modelfile and "USER: {{ .Content }}" in modelfile
    readme = (out / "README.md").read_text()
    assert "ollama create gz-llava-tiny -f Modelfile" in readme and "ollama run gz-llava-tiny" in readme


def test_verify_cli_reports_agreement(tiny_folder, exported, capsys):
    import json

    from gzllava.export.__main__ import main

    assert main(["verify", str(tiny_folder), str(exported), "--types", "f32", "--limit", "3"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["f32"]["images"] == 3
    assert 0 <= result["f32"]["transformers"] <= result["f32"]["images"]
    gaps = result["f32"]["image_embeddings_max_abs_diff"]
    assert set(gaps) == {"transformers", "transformers_llama_cpp_order"}
    # the note names the llama.cpp bug exactly when the runtime has it
    assert ("llama.cpp #25814" in captured.err) == (computed_reference(gaps) == "transformers_llama_cpp_order")
    assert main(["verify", str(tiny_folder), str(exported), "--types", "q5_1"]) == 2
    assert "q5_1: not in" in capsys.readouterr().err
