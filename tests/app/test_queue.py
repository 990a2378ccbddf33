"""Under more load than the queue takes, the app refuses the surplus at once and keeps serving (no crash, no OOM)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import free_port

gradio_client = pytest.importorskip("gradio_client")


def test_full_queue_refuses_surplus_requests_and_serves_the_rest(engine, galaxy_png):
    from gzllava.app.engine import ChatEngine
    from gzllava.app.ui import WARN, build_app, queue_settings

    slow = ChatEngine(engine.model, engine.processor, default_max_new_tokens=64)
    demo = build_app(slow, None, [])
    port = free_port()
    demo.queue(**queue_settings(concurrency=1, max_queue=2)).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)

        def ask(_):
            try:
                history = client.predict({"text": "Is there a bar?", "files": [gradio_client.handle_file(str(galaxy_png))]},
                                         [], 0.0, 1.0, 64, api_name="/chat")[0]
                return "answered" if not history[-1]["content"][0]["text"].startswith(WARN) else "warned"
            except Exception as error:  # noqa: BLE001
                return f"refused: {error}"

        with ThreadPoolExecutor(10) as pool:
            outcomes = list(pool.map(ask, range(10)))
        answered = outcomes.count("answered")
        refused = [o for o in outcomes if o.startswith("refused")]
        assert answered >= 1 and refused, outcomes  # some served, the surplus refused
        assert all("queue" in o.lower() and "full" in o.lower() for o in refused), refused
        assert answered + len(refused) == 10
        assert ask(0) == "answered"  # and it still serves afterwards
    finally:
        demo.close()
