"""Tiny GZ-LLaVA models for the model tests (CPU, offline, built from configs)."""

import pytest

import gzllava  # noqa: F401  (registers the Auto classes)
from gzllava.tiny import tiny_model_and_processor, toy_galaxy


@pytest.fixture(scope="session")
def tiny_mlp():
    """(model, processor) with the llava-1.5 projector: 32 px CLIP, patch 8 -> 16 image tokens."""
    return tiny_model_and_processor("mlp2x_gelu")


@pytest.fixture(scope="session")
def tiny_resampler():
    """(model, processor) with a 4-query resampler and <boi>/<eoi> delimiters."""
    return tiny_model_and_processor("resampler", num_query_tokens=4, use_image_delimiters=True)


@pytest.fixture
def image():
    return toy_galaxy()
