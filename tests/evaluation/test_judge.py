"""The optional LLM judge against a local OpenAI-compatible server (stdlib http.server on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gzllava.evaluation.judge import JudgeError, OpenAIJudge, judge_metrics, parse_score


class FakeOpenAI:
    """Answers /v1/chat/completions from a script of (status, reply text) and records requests."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, reply = outer.script.pop(0) if outer.script else (200, "5")
                payload = {"choices": [{"message": {"role": "assistant", "content": reply}}]} if status == 200 else {
                    "error": "busy"}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("reply", "score"), [("7", 7), ("Score: 10/10", 10), ("I'd say 3.", 3), ("no idea", None)])
def test_parse_score(reply, score):
    assert parse_score(reply) == score


def test_scores_against_the_reference_with_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test")
    with FakeOpenAI([(200, "8"), (200, "Score: 4")]) as server:
        judge = OpenAIJudge(server.url, model="local-judge", api_key_env="JUDGE_TEST_KEY", backoff=0.01)
        result = judge_metrics(judge, ["a spiral", "a blob"], ["a barred spiral", "an elliptical"])
    assert result["scores"] == [8, 4] and result["mean_score"] == 6.0
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "local-judge" and first["body"]["temperature"] == 0
    assert "a barred spiral" in first["body"]["messages"][1]["content"]


def test_retries_on_server_errors_then_succeeds():
    with FakeOpenAI([(503, ""), (429, ""), (200, "9")]) as server:
        judge = OpenAIJudge(server.url, max_retries=3, backoff=0.01)
        assert judge.score("x", "y")[0] == 9
    assert len(server.requests) == 3


def test_failures_and_unparsable_replies_are_counted_not_guessed():
    with FakeOpenAI([(500, ""), (500, ""), (200, "excellent!"), (200, "6")]) as server:
        judge = OpenAIJudge(server.url, max_retries=1, backoff=0.01)
        result = judge_metrics(judge, ["a", "b", "c"], ["r", "r", "r"])
    assert result["failed"] == 1 and result["unparsable"] == 1 and result["scored"] == 1
    assert result["scores"] == [None, None, 6] and result["mean_score"] == 6.0


def test_a_client_error_is_not_retried_and_names_the_endpoint():
    with FakeOpenAI([(400, "")]) as server:
        judge = OpenAIJudge(server.url, max_retries=3, backoff=0.01)
        with pytest.raises(JudgeError, match="HTTP 400"):
            judge.score("x", "y")
    assert len(server.requests) == 1


def test_an_unreachable_endpoint_fails_after_the_retries():
    judge = OpenAIJudge("http://127.0.0.1:9/v1", max_retries=1, backoff=0.01, timeout=2)
    with pytest.raises(JudgeError, match="unreachable after 2 tries"):
        judge.score("x", "y")
