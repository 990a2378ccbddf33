"""`openai` backend against a local OpenAI-compatible server (stdlib http.server) started by the test."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dataset_builder.records import Comment, Reject, Subject, Summary
from dataset_builder.summarise import get_summariser
from dataset_builder.summarise.openai_backend import EndpointError, OpenAISummariser

GOOD = {"description": "A spiral galaxy with a ring.", "visible_features": ["ring", "spiral arms"], "uncertainty": "low"}
REFUSAL = {"description": "I'm sorry, but there is not enough information to describe this galaxy.", "visible_features": [], "uncertainty": "high"}


class FakeChatServer:
    """Answers POST /v1/chat/completions following a script.

    failures: list of (status, headers) answered to the first requests, in order, before real answers.
    answer: dict -> the JSON object put in the assistant message (or a callable of the request body).
    delay: seconds to sleep before answering (timeouts, concurrency).
    reject_schema: answer 400 to requests whose response_format is json_schema.
    """

    def __init__(self, *, failures=(), answer=GOOD, delay=0.0, reject_schema=False):
        self.failures = list(failures)
        self.answer = answer
        self.delay = delay
        self.reject_schema = reject_schema
        self.requests: list[dict] = []
        self.auth_headers: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.auth_headers.append(self.headers.get("Authorization"))
                    failure = server.failures.pop(0) if server.failures else None
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    if self.path != "/v1/chat/completions":
                        return self._send(404, {"error": {"message": f"no route {self.path}"}})
                    if server.reject_schema and body.get("response_format", {}).get("type") == "json_schema":
                        return self._send(400, {"error": {"message": "response_format json_schema is not supported"}})
                    if failure is not None:
                        status, headers = failure
                        return self._send(status, {"error": {"message": "try again"}}, headers)
                    content = server.answer(body) if callable(server.answer) else server.answer
                    reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": json.dumps(content)}}]}
                    self._send(200, reply)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def subjects(n):
    return [
        Subject(str(i), comments=[Comment(f"c{i}", str(i), f"A spiral with a ring, thread {i}", "t.json")], source="talk:t.json")
        for i in range(n)
    ]


def client(server, **options):
    defaults = {"model": "test-model", "base_url": server.base_url, "backoff": 0.01, "max_backoff": 0.05, "show_progress": False}
    return OpenAISummariser(**{**defaults, **options})


def test_retries_500_and_429_then_answers_with_the_schema_request():
    failures = [(500, {}), (503, {}), (429, {"Retry-After": "0"})]
    with FakeChatServer(failures=failures) as server:
        [result] = client(server, max_retries=3).summarise(subjects(1))
    assert isinstance(result, Summary) and result.description == GOOD["description"] and result.backend == "openai"
    assert len(server.requests) == 4
    request = server.requests[-1]
    assert request["model"] == "test-model" and request["temperature"] == 0.0
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"]["required"] == ["description", "visible_features", "uncertainty"]
    assert "A spiral with a ring" in request["messages"][-1]["content"]


def test_retry_after_is_respected():
    with FakeChatServer(failures=[(429, {"Retry-After": "0.3"})]) as server:
        start = time.monotonic()
        client(server, backoff=0.0).summarise(subjects(1))
    assert time.monotonic() - start >= 0.3


def test_refusal_from_the_model_becomes_a_reject():
    with FakeChatServer(answer=REFUSAL) as server:
        [result] = client(server).summarise(subjects(1))
    assert isinstance(result, Reject) and result.stage == "summarise" and result.reason == "refusal"


def test_after_the_last_retry_the_error_names_the_endpoint():
    with FakeChatServer(failures=[(502, {})] * 10) as server:
        with pytest.raises(EndpointError, match=r"127\.0\.0\.1:\d+/v1/chat/completions failed after 3 attempts.*HTTP 502"):
            client(server, max_retries=2).summarise(subjects(1))
        assert len(server.requests) == 3


def test_client_errors_are_not_retried():
    with FakeChatServer(failures=[(401, {})]) as server:
        with pytest.raises(EndpointError, match="HTTP 401"):
            client(server).summarise(subjects(1))
        assert len(server.requests) == 1


def test_timeouts_are_retried():
    with FakeChatServer(delay=0.5) as server:
        with pytest.raises(EndpointError, match="timed out"):
            client(server, timeout=0.1, max_retries=1).summarise(subjects(1))
        assert len(server.requests) == 2


def test_requests_run_concurrently_and_results_keep_subject_order():
    def echo(body):  # later subjects answer sooner, so results arrive out of order
        thread = int(re.search(r"thread (\d+)", body["messages"][-1]["content"]).group(1))
        time.sleep(0.03 * (8 - thread))
        return {**GOOD, "description": f"A spiral with a ring, thread {thread}."}

    with FakeChatServer(answer=echo) as server:
        results = client(server, concurrency=4).summarise(subjects(8))
    assert [r.description for r in results] == [f"A spiral with a ring, thread {i}." for i in range(8)]
    assert server.max_in_flight >= 3  # sequential requests would never overlap


def test_server_without_json_schema_support_falls_back_to_json_object(caplog):
    with FakeChatServer(reject_schema=True) as server, caplog.at_level(logging.WARNING):
        [result] = client(server).summarise(subjects(1))
    assert isinstance(result, Summary)
    assert [r.get("response_format", {}).get("type") for r in server.requests] == ["json_schema", "json_object"]
    assert "refused response_format 'json_schema'" in caplog.text


def test_api_key_from_the_environment_is_sent_and_never_logged(monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    with FakeChatServer(failures=[(500, {})]) as server, caplog.at_level(logging.DEBUG):
        summariser = client(server)
        summariser.summarise(subjects(1))
    assert server.auth_headers == ["Bearer sk-test-secret"] * 2
    assert "sk-test-secret" not in caplog.text and "sk-test-secret" not in repr(summariser)


def test_interrupted_run_resumes_from_the_cache(tmp_path):
    with FakeChatServer() as server:
        client(server, cache_dir=tmp_path).summarise(subjects(3))
        assert len(server.requests) == 3
        results = client(server, cache_dir=tmp_path).summarise(subjects(5))
        assert len(server.requests) == 5  # only the two new subjects
    assert all(isinstance(r, Summary) for r in results)


def test_get_summariser_builds_the_openai_backend():
    summariser = get_summariser("openai", model="m", base_url="http://127.0.0.1:9/v1", show_progress=False)
    assert isinstance(summariser, OpenAISummariser) and summariser.endpoint == "http://127.0.0.1:9/v1/chat/completions"


def test_credentials_in_base_url_become_basic_auth_and_are_never_logged(caplog):
    with FakeChatServer() as server, caplog.at_level(logging.DEBUG):
        url = server.base_url.replace("http://", "http://volunteer:hunter2@")
        summariser = client(server, base_url=url)
        [result] = summariser.summarise(subjects(1))
        logging.getLogger("httpx").info("HTTP Request: POST %s", url)  # what httpx logged before the fix
    assert isinstance(result, Summary)
    assert server.auth_headers == ["Basic dm9sdW50ZWVyOmh1bnRlcjI="]  # base64("volunteer:hunter2")
    assert "hunter2" not in summariser.endpoint and "hunter2" not in repr(summariser)
    assert "hunter2" not in json.dumps(summariser.settings)  # the cache key holds the URL without them
    assert "HTTP Request" in caplog.text and "hunter2" not in caplog.text


def test_http_401_is_an_auth_error_at_once_without_retries():
    from dataset_builder.summarise import SummariserError
    from dataset_builder.summarise.openai_backend import EndpointAuthError

    with FakeChatServer(failures=[(401, {})]) as server:
        with pytest.raises(EndpointAuthError, match="HTTP 401 \\(unauthorised\\)") as caught:
            client(server, max_retries=3).summarise(subjects(1))
    assert isinstance(caught.value, SummariserError) and len(server.requests) == 1


def test_a_build_never_sends_the_exports_logins_to_the_summariser(tmp_path):
    """Logins and user ids of the export (and logins that comments @mention) named WITHOUT an "@" are taken
    out by the cleaner, so the prompt an external summariser receives never holds them (issue 8 follow-up)."""
    import io

    from PIL import Image

    from dataset_builder.build import BuildOptions, build

    logins = ["StarFinder_7", "GalWatcher", "orbit_fan"]
    bodies = [
        "A ring galaxy with a bright core, as StarFinder_7 said.",
        "@Gal_Watcher99 look at the bar, it is long",
        "Thanks Gal_Watcher99 and GalWatcher, the bar and the ring are clear. User 1234501 agreed.",
        "Two spiral arms, orbit_fan spotted them first.",
    ]
    (tmp_path / "images").mkdir()
    rows = []
    for i, body in enumerate(bodies):
        subject = 8100 + i // 2  # two comments per subject
        image = io.BytesIO()  # noise: a one-colour image is rejected as blank
        Image.effect_noise((32, 32), 40 + i).convert("RGB").save(image, "JPEG")
        (tmp_path / "images" / f"{subject}.jpg").write_bytes(image.getvalue())
        rows.append({"comment_id": 200 + i, "comment_body": body, "comment_focus_id": subject,
                     "comment_focus_type": "Subject", "comment_user_id": 1234500 + i,
                     "comment_user_login": logins[i % len(logins)], "comment_created_at": "2020-01-01T00:00:00Z"})
    talk = tmp_path / "comments.json"
    talk.write_text(json.dumps(rows))
    with FakeChatServer() as server:
        result = build(BuildOptions(output_dir=tmp_path / "out", talk=talk, images=tmp_path / "images",
                                    summariser="openai", summariser_model="test-model", base_url=server.base_url,
                                    configs=["description"], progress=False))
    sent = json.dumps(server.requests).lower()
    assert len(server.requests) == 2 and "ring" in sent and "bar" in sent  # both subjects, their words kept
    for identity in ("starfinder_7", "gal_watcher99", "galwatcher", "orbit_fan", "1234501"):
        assert identity not in sent, identity
    assert result.stats["privacy"]["comments_scrubbed_at_ingest"] == 3
    assert result.stats["reconciled"] and result.rows > 0
