"""The optional LLM judge against a local OpenAI-compatible server (stdlib http.server on 127.0.0.1)."""

from __future__ import annotations

import pytest

from fake_openai import FakeOpenAI
from gzllava.evaluation.judge import JudgeError, OpenAIJudge, judge_metrics, parse_score


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


def test_credentials_in_the_judge_url_never_reach_metrics_json():
    from gzllava.evaluation.runner import EvaluationConfig, recorded_settings

    for url, recorded in (("https://user:sk-secret@judge.example:8443/v1", "https://judge.example:8443/v1"),
                          ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"), (None, None)):
        config = EvaluationConfig(model_name_or_path="m", image_folder="f", judge_url=url)
        assert recorded_settings(config)["judge_url"] == recorded
