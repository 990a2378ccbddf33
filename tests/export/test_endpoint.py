"""An OpenAI-compatible endpoint, not a server of our own: llama-cpp-python's server on 127.0.0.1 with the exported
GGUF pair; the `openai` client sends an `image_url` data URI and gets transformers' greedy answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from gzllava.export.agreement import transformers_greedy_llama_cpp_order
from gzllava.export.gguf_export import export_gguf
from gzllava.export.runtime import image_data_uri
from gzllava.tiny import toy_galaxy

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny, converter, tmp_path_factory):
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] extras are not installed")
    out = export_gguf(*tiny, tmp_path_factory.mktemp("endpoint") / "gguf", types="f16", converter_dir=converter)
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


def test_openai_chat_completion_with_an_image_answers_as_transformers(server, tiny):
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
        expected = transformers_greedy_llama_cpp_order(model, processor, image, question, max_new_tokens=12)
        # the random tiny model emits lone byte tokens: transformers decodes them as U+FFFD, the server drops them
        text = processor.tokenizer.decode(expected, skip_special_tokens=True).replace("\ufffd", "")
        assert len(expected) >= 6
        assert reply.choices[0].message.content.replace("\ufffd", "") == text
