"""`openai` backend: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp).

Requests go to `{base_url}/chat/completions` with `response_format` set to the summary JSON schema
(servers that reject it get `json_object`, then plain prompting, with a warning). Several requests
run at once in threads; each has a timeout and is retried with exponential backoff on timeouts,
connection errors, 408/409/429 and 5xx, honouring `Retry-After`. After the last retry the error
names the endpoint; HTTP 401/403 is an `EndpointAuthError` at once (no retry). Results are handed
to the cache as each one arrives, so an interrupted run loses only the requests in flight. The API
key comes from `api_key=` or `OPENAI_API_KEY`; user:password in `base_url` become a Basic auth
header; neither is ever logged (`privacy.install_log_redaction` masks them in httpx's log lines too).
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx

from ..privacy import install_log_redaction, redact_secrets, split_url_credentials
from .base import SUMMARY_JSON_SCHEMA, GenerationRequest, Summariser, SummariserError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SYSTEM_PROMPT = "You are a careful assistant that summarises Galaxy Zoo volunteers' comments as JSON."
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
RETRY_STATUS = {408, 409, 429}  # plus every 5xx
MAX_RETRY_AFTER_S = 300.0


class EndpointError(SummariserError):
    """The endpoint failed for good (after retries, or with an error retrying cannot fix)."""


class EndpointAuthError(EndpointError):
    """The endpoint refused the credentials (HTTP 401/403): an input problem, not worth a retry."""


def _retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAISummariser(Summariser):
    """Summaries from an OpenAI-compatible server.

    model: the served model name ("gpt-4o-mini", "qwen2.5:7b-instruct" for Ollama, the vLLM --model).
    base_url: e.g. "http://localhost:11434/v1" (Ollama), "http://localhost:8000/v1" (vLLM);
        default: $OPENAI_BASE_URL or OpenAI's.
    api_key: default $OPENAI_API_KEY; local servers usually need none.
    response_format: "json_schema" (default), "json_object" or "none" (the prompt alone asks for JSON).
    concurrency: requests in flight at once. timeout: seconds per request.
    max_retries: retries after the first attempt; backoff: first wait in seconds, doubled each retry
        up to max_backoff (with jitter), unless the server's Retry-After says otherwise.
    """

    backend = "openai"

    def __init__(
        self,
        cache_dir: Path | str | None = None,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        response_format: str = "json_schema",
        temperature: float = 0.0,
        max_tokens: int = 512,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        system_prompt: str | None = SYSTEM_PROMPT,
        show_progress: bool = True,
    ) -> None:
        super().__init__(cache_dir, batch_size=max(1, concurrency), show_progress=show_progress)
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, not {response_format!r}")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        self.model = model
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        try:
            # user:password in the URL become a Basic auth header: the URL that is logged, cached and
            # put in error messages carries no credentials.
            url, basic_auth = split_url_credentials(url)
        except httpx.InvalidURL as error:
            raise ValueError(f"--base-url {redact_secrets(url)!r} is not a valid URL: {error}") from None
        self.base_url = url
        self.endpoint = f"{self.base_url}/chat/completions"
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout, auth=basic_auth)
        install_log_redaction()  # httpx logs every request URL at INFO
        self.response_format = response_format
        self._format_lock = threading.Lock()
        self.concurrency = concurrency
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.temperature, self.max_tokens, self.system_prompt = temperature, max_tokens, system_prompt
        # The endpoint is part of the key: the same model name on two servers may be two models.
        self.settings = {"endpoint": self.base_url, "temperature": temperature, "max_tokens": max_tokens, "system_prompt": system_prompt}

    def __repr__(self) -> str:  # no key in reprs or logs
        return f"{type(self).__name__}(model={self.model!r}, endpoint={self.endpoint!r})"

    # -- one request
    def _payload(self, prompt: str, response_format: str) -> dict[str, Any]:
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + [
            {"role": "user", "content": prompt}
        ]
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if response_format == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "galaxy_summary", "strict": True, "schema": SUMMARY_JSON_SCHEMA},
            }
        elif response_format == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    def _downgrade_format(self, used: str) -> bool:
        """After a 400 about `response_format`: fall back to the next weaker format (True if there is one)."""
        with self._format_lock:
            if self.response_format != used:  # another thread already did
                return True
            if used == "none":
                return False
            self.response_format = RESPONSE_FORMATS[RESPONSE_FORMATS.index(used) + 1]
            logger.warning("%s refused response_format %r; using %r", self.endpoint, used, self.response_format)
            return True

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def complete(self, prompt: str) -> str:
        """The assistant's text for one prompt (a server-side refusal comes back as its text)."""
        last_error = ""
        attempt = 0
        while attempt <= self.max_retries:
            response_format = self.response_format
            retry_after = None
            try:
                response = self._client.post(self.endpoint, json=self._payload(prompt, response_format))
            except httpx.TimeoutException:
                last_error = f"timed out after {self._client.timeout.read}s"
            except httpx.TransportError as error:
                last_error = f"{type(error).__name__}: {redact_secrets(str(error))}"
            else:
                status = response.status_code
                if status == 200:
                    return self._content(response)
                body = response.text[:300]
                if status == 400 and ("response_format" in body or "json_schema" in body):
                    if self._downgrade_format(response_format):
                        continue  # not a failed attempt: the same request in a form the server accepts
                if status in (401, 403):
                    raise EndpointAuthError(
                        f"summariser endpoint {redact_secrets(self.endpoint)} answered HTTP {status} "
                        f"({'unauthorised' if status == 401 else 'forbidden'}): check the API key (OPENAI_API_KEY) "
                        f"or the credentials of --base-url")
                if status not in RETRY_STATUS and status < 500:
                    raise EndpointError(f"{redact_secrets(self.endpoint)} answered HTTP {status}: {redact_secrets(body)}")
                last_error = f"HTTP {status}: {redact_secrets(body)}"
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == self.max_retries:
                break
            delay = self._wait(attempt, retry_after)
            logger.info("%s: %s; retry %d/%d in %.2fs", self.endpoint, last_error, attempt + 1, self.max_retries, delay)
            time.sleep(delay)
            attempt += 1
        raise EndpointError(f"{self.endpoint} failed after {self.max_retries + 1} attempts; last error: {last_error}")

    def _content(self, response: httpx.Response) -> str:
        try:
            message = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise EndpointError(f"{self.endpoint} answered 200 without choices[0].message: {response.text[:300]}") from error
        # OpenAI puts a safety refusal in `refusal` with null content: pass it on, the validator rejects it.
        return message.get("content") or message.get("refusal") or ""

    # -- many requests
    def _generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        return [self.complete(r.prompt) for r in requests]

    def _generate_stream(self, requests: Sequence[GenerationRequest]) -> Iterator[tuple[int, str]]:
        """Up to `concurrency` requests in flight; results yielded as they complete (any order)."""
        pending = iter(enumerate(requests))
        in_flight: dict[Future[str], int] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai") as pool:
            try:
                while True:
                    while len(in_flight) < self.concurrency and (item := next(pending, None)) is not None:
                        index, request = item
                        in_flight[pool.submit(self.complete, request.prompt)] = index
                    if not in_flight:
                        return
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = in_flight.pop(future)
                        yield index, future.result()  # re-raises EndpointError from the worker
            finally:
                for future in in_flight:  # stop what has not started; running requests finish
                    future.cancel()

    def close(self) -> None:
        self._client.close()
        super().close()
