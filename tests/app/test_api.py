"""The running app through its API (gradio_client), as a script or another program would use it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from gzllava.app.ui import TREE_TITLE, WARN

gradio_client = pytest.importorskip("gradio_client")


def resend(history: list[dict]) -> list[dict]:
    """The client returns files as local paths; sending a history back needs them as uploads again."""
    for message in history:
        for block in message["content"]:
            if block.get("type") == "file":
                block["file"] = gradio_client.handle_file(block["file"])
    return history


def last_text(history: list[dict]) -> str:
    return history[-1]["content"][0]["text"]


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


def test_upload_ask_and_see_a_streamed_answer(client, galaxy_png):
    job = client.submit({"text": "Is there a bar?", "files": [gradio_client.handle_file(str(galaxy_png))]}, [],
                        0.0, 1.0, 96, api_name="/chat")
    updates = [output[0] for output in job]
    history = job.result()[0]
    answers = [u[-1]["content"][0]["text"] for u in updates if u and u[-1]["role"] == "assistant"]
    assert len(set(answers)) >= 2  # the answer arrived in pieces (at most ~10 updates a second)
    assert all(b.startswith(a) for a, b in zip(answers, answers[1:]))
    assert [m["role"] for m in history] == ["user", "user", "assistant"]
    assert history[0]["content"][0]["type"] == "file" and history[1]["content"][0]["text"] == "Is there a bar?"
    assert last_text(history) and not last_text(history).startswith(WARN)

    # a second turn about the same image, then regenerate and the decision tree
    second = client.predict({"text": "How many arms?", "files": []}, resend(history), 0.0, 1.0, 8, api_name="/chat")[0]
    assert [m["role"] for m in second] == ["user", "user", "assistant", "user", "assistant"]
    again = client.predict(resend(second), 0.0, 1.0, 8, api_name="/regenerate")
    assert len(again) == 5 and last_text(again) == last_text(second)  # greedy: the same answer
    tree = client.predict(resend(again), {"text": "", "files": []}, api_name="/answer_tree")
    assert tree[-1]["metadata"]["title"] == TREE_TITLE and "Is the galaxy simply smooth" in last_text(tree)
    assert client.predict(api_name="/clear")[0] == []


def test_bad_input_from_one_user_does_not_disturb_another(client, galaxy_png, tmp_path):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    def ask(path, text):
        return client.predict({"text": text, "files": [gradio_client.handle_file(str(path))]}, [], 0.0, 1.0, 6,
                              api_name="/chat")[0]

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask, bad, "Bar?"), pool.submit(ask, galaxy_png, "Bar?"),
                   pool.submit(ask, bad, "x" * 20_000), pool.submit(ask, galaxy_png, "Spiral?")]
        results = [f.result(timeout=300) for f in futures]
    assert "Cannot use corrupt.jpg as a galaxy image" in last_text(results[0])
    assert "Cannot use corrupt.jpg" in last_text(results[2])
    for good in (results[1], results[3]):
        assert not last_text(good).startswith(WARN) and good[-1]["role"] == "assistant"



def test_stop_cancels_the_answer_and_its_generation(engine, galaxy_png):
    """Stop (a cancelled event) closes the answer's generator, which ends generate at the next token."""
    import threading
    import time

    from gzllava.app.engine import ChatEngine, Conversation
    from gzllava.app.ui import build_app, queue_settings
    from gzllava.tiny import toy_galaxy

    from .conftest import free_port

    class Recording(ChatEngine):
        closed_with = None

        def stream(self, *args, **kwargs):
            text = ""
            try:
                for text in super().stream(*args, **kwargs):
                    yield text
            finally:
                self.closed_with = text

    recording = Recording(engine.model, engine.processor)
    demo = build_app(recording, None, [])
    port = free_port()
    demo.queue(**queue_settings(2, 8)).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                              quiet=True, ssr_mode=False)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        job = client.submit({"text": "Describe it.", "files": [gradio_client.handle_file(str(galaxy_png))]}, [],
                            0.0, 1.0, 500, api_name="/chat")
        deadline = time.time() + 120
        while not any(t.name == "gzllava-generate" for t in threading.enumerate()) and time.time() < deadline:
            time.sleep(0.01)
        job.cancel()  # what the Stop button does
        deadline = time.time() + 30
        while recording.closed_with is None and time.time() < deadline:
            time.sleep(0.05)
        cut = recording.closed_with
        full = recording.answer(Conversation(toy_galaxy()), "Describe it.", max_new_tokens=500)
        assert cut is not None and len(cut) < len(full) / 2
        assert full.startswith(cut.strip())  # cut short, not a different answer
        deadline = time.time() + 30
        while any(t.name == "gzllava-generate" for t in threading.enumerate()) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(t.name == "gzllava-generate" for t in threading.enumerate())
    finally:
        demo.close()
