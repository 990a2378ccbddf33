"""Fixtures for the export tests: tiny GZ-LLaVA models, saved folders, llama.cpp's converter (fetched once)."""

from __future__ import annotations

import pytest

import gzllava  # noqa: F401  (registers the Auto classes)
from gzllava.tiny import tiny_model_and_processor


@pytest.fixture(scope="session")
def tiny():
    """(model, processor): 32 px CLIP (quick-GELU, pre-layernorm, CLS), patch 8 -> 16 image tokens, mlp2x_gelu, Llama."""
    return tiny_model_and_processor("mlp2x_gelu")


@pytest.fixture(scope="session")
def tiny_folder(tiny, tmp_path_factory):
    """The tiny model saved as a GZ-LLaVA folder (what the CLI takes as MODEL)."""
    from gzllava.hub import save_for_hub

    folder = tmp_path_factory.mktemp("tiny-gzllava") / "model"
    save_for_hub(*tiny, folder)
    return folder


@pytest.fixture(scope="session")
def converter():
    """llama.cpp's converter from the installed llama-cpp-python's sdist (pip download from PyPI, cached)."""
    pytest.importorskip("llama_cpp")
    from gzllava.export.converter import find_converter
    from gzllava.export.errors import ExportError

    try:
        return find_converter()
    except ExportError as error:
        pytest.skip(f"llama.cpp's converter is unavailable: {error}")
