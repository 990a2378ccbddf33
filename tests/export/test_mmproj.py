"""The mmproj GGUF holds what llama.cpp's mtmd reads for a LLaVA-1.5 CLIP tower + mlp projector; bad files fail loudly."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from gzllava.export.mmproj import feature_layers, write_mmproj
from gzllava.export.runtime import GGUFFileError, check_gguf


def _field(reader, key):
    field = reader.fields[key]
    values = [field.parts[i] for i in field.data]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(values[0]).decode()
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return [v.tolist()[0] for v in values]
    return values[0].tolist()[0]


@pytest.fixture(scope="module")
def mmproj(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("mmproj") / "mmproj-f16.gguf"
    return write_mmproj(*tiny, path, "f16")


def test_metadata_is_what_clip_cpp_reads(tiny, mmproj):
    model, processor = tiny
    vision = model.config.vision_config
    reader = gguf.GGUFReader(mmproj)
    assert _field(reader, "general.architecture") == "clip"
    assert _field(reader, "clip.projector_type") == "mlp"
    assert _field(reader, "clip.has_vision_encoder") is True
    assert _field(reader, "clip.vision.image_size") == vision.image_size == 32
    assert _field(reader, "clip.vision.patch_size") == 8
    assert _field(reader, "clip.vision.embedding_length") == vision.hidden_size
    assert _field(reader, "clip.vision.feed_forward_length") == vision.intermediate_size
    assert _field(reader, "clip.vision.attention.head_count") == vision.num_attention_heads
    # HF's vision_feature_layer -2 of a 2-layer tower = hidden state 1: one block is enough
    assert feature_layers(model.config) == [1]
    assert _field(reader, "clip.vision.feature_layer") == [1]
    assert _field(reader, "clip.vision.block_count") == 1
    assert _field(reader, "clip.use_gelu") is False  # quick_gelu, clip.cpp's default
    np.testing.assert_allclose(_field(reader, "clip.vision.image_mean"), processor.image_processor.image_mean, rtol=1e-6)
    np.testing.assert_allclose(_field(reader, "clip.vision.image_std"), processor.image_processor.image_std, rtol=1e-6)


def test_tensors_have_llava_names_shapes_and_values(tiny, mmproj):
    model, _ = tiny
    state = model.state_dict()
    tensors = {t.name: t for t in gguf.GGUFReader(mmproj).tensors}
    assert set(tensors) >= {"v.class_embd", "v.patch_embd.weight", "v.position_embd.weight", "v.pre_ln.weight",
                            "v.blk.0.attn_q.weight", "v.blk.0.ffn_down.weight", "mm.0.weight", "mm.2.bias"}
    assert not any(name.startswith(("v.blk.1.", "v.post_ln")) for name in tensors)  # unused layer, post-layernorm
    # legacy LLaVA naming: CLIP fc1 is stored as ffn_down (clip.cpp swaps it back by shape)
    fc1 = state["model.vision_tower.encoder.layers.0.mlp.fc1.weight"].numpy()
    np.testing.assert_allclose(tensors["v.blk.0.ffn_down.weight"].data, fc1, atol=1e-3)
    assert tensors["v.blk.0.ffn_down.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert tensors["v.pre_ln.bias"].tensor_type == gguf.GGMLQuantizationType.F32
    projector = state["model.multi_modal_projector.linear_2.weight"].numpy()
    np.testing.assert_allclose(tensors["mm.2.weight"].data, projector, atol=1e-3)


def test_f32_mmproj_is_exact(tiny, tmp_path):
    model, processor = tiny
    path = write_mmproj(model, processor, tmp_path / "mmproj-f32.gguf", "f32")
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    patch = model.state_dict()["model.vision_tower.embeddings.patch_embedding.weight"].numpy()
    assert np.array_equal(tensors["v.patch_embd.weight"].data.reshape(patch.shape), patch)


def test_truncated_or_foreign_gguf_fails_loudly(mmproj, tmp_path):
    assert check_gguf(mmproj)["architecture"] == "clip"
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(mmproj.read_bytes()[: mmproj.stat().st_size - 1000])
    with pytest.raises(GGUFFileError, match=r"cut.gguf: (truncated GGUF|not a readable or complete GGUF)"):
        check_gguf(cut)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(GGUFFileError, match="junk.gguf: not a readable or complete GGUF"):
        check_gguf(junk)
    with pytest.raises(GGUFFileError, match="no such GGUF"):
        check_gguf(tmp_path / "absent.gguf")
