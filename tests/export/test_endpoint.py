"""An OpenAI-compatible endpoint, not a server of our own: llama-cpp-python's server on 127.0.0.1 with the exported
GGUF pair; the `openai` client sends an `image_url` data URI and gets transformers' greedy answer (with the image
features in the order this llama.cpp's clip graph computes, `gzllava.export.agreement`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from gzllava.export.agreement import GREEDY, computed_reference, image_embedding_gaps
from gzllava.export.gguf_export import export_gguf
from gzllava.export.runtime import LlamaCppGZLlava, image_data_uri
from gzllava.tiny import toy_galaxy

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def exported_f16(tiny, converter, tmp_path_factory):
    return export_gguf(*tiny, tmp_path_factory.mktemp("endpoint") / "gguf", types="f16", converter_dir=converter)


@pytest.fixture(scope="module")
def greedy_reference(exported_f16, tiny):
    """transformers' greedy answer with the image features this llama.cpp computes (from its image embeddings)."""
    runtime = LlamaCppGZLlava(exported_f16 / "gz-llava-f16.gguf", exported_f16 / "mmproj-gz-llava-f16.gguf", n_threads=1)
    try:
        gaps = image_embedding_gaps(runtime, *tiny, toy_galaxy(0, size=32))
    finally:
        runtime.close()
    reference = computed_reference(gaps)
    assert reference is not None, gaps  # llama.cpp computes neither order: the mmproj is wrong
    return GREEDY[reference]


@pytest.fixture(scope="module")
def server(exported_f16):
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] extras are not installed")
    out = exported_f16
    port = _free_port()
    log = open(out.parent / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(out / "gz-llava-f16.gguf"),
         "--clip_model_path", str(out / "mmproj-gz-llava-f16.gguf"), "--chat_format", "mtmd",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "1", "--verbose", "False"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}/v1"
    import httpx

    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {(out.parent / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("llama_cpp.server did not answer /v1/models within 90 s")
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


def test_openai_chat_completion_with_an_image_answers_as_transformers(server, greedy_reference, tiny):
    from openai import OpenAI

    model, processor = tiny
    client = OpenAI(base_url=server, api_key="unused-locally", max_retries=0, timeout=120)
    for seed in (0, 1):
        image = toy_galaxy(seed, size=32)
        question = "Describe this galaxy's morphology."
        reply = client.chat.completions.create(
            model="gz-llava", max_tokens=12, temperature=0,
            logit_bias={str(model.config.image_token_id): -100},
            extra_body={"top_k": 1, "repeat_penalty": 1.0, "min_p": 0.0},
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": image_data_uri(image)}},
                {"type": "text", "text": question}]}],
        )
        expected = greedy_reference(model, processor, image, question, max_new_tokens=20)
        assert len(expected) == 20

        def text(ids):
            # the random tiny model emits lone byte tokens: transformers decodes them as U+FFFD, the server drops them
            return processor.tokenizer.decode(ids, skip_special_tokens=True).replace("\ufffd", "")

        # the server goes on past max_tokens while the last token ends inside a UTF-8 character
        answer = reply.choices[0].message.content.replace("\ufffd", "")
        assert answer.startswith(text(expected[:12])) and text(expected).startswith(answer), (answer, text(expected))
