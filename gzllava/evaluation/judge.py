"""Optional LLM judge through any OpenAI-compatible chat-completions endpoint (off by default).

The Galaxy Zoo hackathon that this project grows from scored answers by asking GPT for a 1-10
score against the reference; this module does the same with any server that speaks the OpenAI
`/chat/completions` protocol (vLLM, llama.cpp server, Ollama, TGI, OpenAI itself). Scores are a
complement to the label-grounded metrics, never a replacement: the judge sees only text.

The API key, if the endpoint needs one, comes from an environment variable, never the command line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are an expert astronomer grading descriptions of galaxy images written by a model. You do not see the "
    "image. Compare the candidate description with the reference description written from Galaxy Zoo volunteers' "
    "comments and votes, and rate how well the candidate agrees with the reference about the galaxy's morphology "
    "(shape, disk, bar, spiral arms, bulge, mergers, odd features), penalising invented details. Reply with a "
    "single integer from 1 (contradicts or unrelated) to 10 (same content), and nothing else."
)
_SCORE = re.compile(r"\b(10|[1-9])\b")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class JudgeError(RuntimeError):
    pass


def parse_score(reply: str) -> int | None:
    """The first integer 1-10 of the reply ("Score: 7/10" -> 7), else None."""
    match = _SCORE.search(reply)
    return int(match.group(1)) if match else None


@dataclass
class OpenAIJudge:
    base_url: str  # e.g. "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 1.0  # seconds, doubled per retry

    def _post(self, payload: dict) -> dict:
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = json.dumps(payload).encode()
        delay = self.backoff
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as err:
                if err.code not in RETRY_STATUS or attempt == self.max_retries:
                    raise JudgeError(f"judge endpoint {url} answered HTTP {err.code}: {err.read()[:200]!r}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.max_retries:
                    raise JudgeError(f"judge endpoint {url} unreachable after {attempt + 1} tries: {err}") from None
            logger.info("judge request failed (try %d), retrying in %.1fs", attempt + 1, delay)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def score(self, candidate: str, reference: str) -> tuple[int | None, str]:
        payload = {
            "model": self.model,
            "temperature": 0,
            "max_tokens": 8,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Reference description:\n{reference}\n\nCandidate description:\n{candidate}\n\nScore (1-10):"},
            ],
        }
        response = self._post(payload)
        try:
            reply = response["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise JudgeError(f"judge reply has no choices[0].message.content: {str(response)[:200]}") from None
        return parse_score(reply), reply


def judge_metrics(judge: OpenAIJudge, predictions: Sequence[str], references: Sequence[str], progress=None) -> dict:
    """Mean 1-10 score; replies without a score and failed requests are counted, not guessed."""
    scores, unparsable, failed = [], 0, 0
    for candidate, reference in zip(predictions, references):
        try:
            score, _ = judge.score(candidate, reference)
        except JudgeError as err:
            logger.warning("%s", err)
            failed += 1
            score = None
        else:
            unparsable += score is None
        scores.append(score)
        if progress is not None:
            progress.update(1)
    valid = [s for s in scores if s is not None]
    return {
        "n": len(scores),
        "model": judge.model,
        "mean_score": float(np.mean(valid)) if valid else None,
        "scored": len(valid),
        "unparsable": int(unparsable),
        "failed": failed,
        "scores": scores,
    }
