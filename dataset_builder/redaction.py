"""Credentials out of everything the project records: one set of patterns for the builder and the model card.

The dataset builder masks them in its recorded command line, its card and every log record
(`dataset_builder.privacy` re-exports these names); `gzllava.model_card` masks them in what a model card
quotes about a training or evaluation run. Both use:

- `redact_secrets(text, mask)`: URL user-info (`http://user:pw@host` -> `http://***@host`), secret query
  parameters (`?api_key=...`), options and keys that carry a secret (`--token X`, `--hub_token=X`,
  `OPENAI_API_KEY=...`), token-shaped strings (`hf_...`, `sk-...`, `ghp_...`) and `Bearer ...`;
- `strip_url_credentials(text)`: every URL's user-info removed (`https://host`), where the URL must stay usable;
- `is_secret_name(name)`: a key or flag whose value is a secret (`hub_token`, `--judge-api-key`, `password`);
- `split_url_credentials(url)`: the URL without user-info and the (user, password) for an auth header;
- `RedactingFilter` / `install_log_redaction()`: `redact_secrets` on every log record.

This module lives in `dataset_builder` (which `gzllava` already imports) and imports nothing of either package:
importing `gzllava` registers the model classes with transformers, seconds the builder's commands do not pay.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

# The last word of a key or flag that holds a secret ("hub_token", "judge-api-key", "client_secret").
_SECRET_WORD = r"(?:token|secret|password|passwd|api[_-]?key|auth)"
_SECRET_NAME = re.compile(r"(?:^|[_-])" + _SECRET_WORD + r"$", re.IGNORECASE)
_QUOTED_OR_WORD = r"(?:'[^']*'|\"[^\"]*\"|\S+)"
_URL_USERINFO = re.compile(r"(?<=://)[^/\s@'\"]+@")

# (pattern, keeps group 1): what matches is replaced by group 1 (when kept) and the mask
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], bool], ...] = (
    # secret query parameters: ?api_key=..., &hf_token=..., &sig=...
    (re.compile(r"([?&;](?:(?:[\w-]*[_-])?" + _SECRET_WORD + r"|key|authorization|pwd|sig|signature)=)[^&\s#'\"]+",
                re.IGNORECASE), True),
    # command-line options that carry a secret: --token X, --api-key=X, --hub_token X
    (re.compile(r"((?<!\w)--?(?:[\w-]*[_-])?" + _SECRET_WORD + r"(?:=|\s+))" + _QUOTED_OR_WORD, re.IGNORECASE), True),
    # environment assignments: OPENAI_API_KEY=..., HF_TOKEN=...
    (re.compile(r"\b([A-Z][A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD)=)" + _QUOTED_OR_WORD), True),
    # tokens by their shape
    (re.compile(r"\b(?:hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{8,})\b"), False),
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), True),
)


def is_secret_name(name: str) -> bool:
    """Whether a key or flag (`hub_token`, `--api-key`, `password`) names a secret."""
    return bool(_SECRET_NAME.search(name.lstrip("-")))


def strip_url_credentials(text: str) -> str:
    """`text` with every URL's user-info removed: `https://user:pass@host/v1` -> `https://host/v1`."""
    return _URL_USERINFO.sub("", text)


def redact_secrets(text: str, mask: str = MASK) -> str:
    """`text` with URL user-info, secret query parameters, options and assignments, and token-shaped strings
    replaced by `mask` (URL user-info by `mask@`)."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda _: mask + "@", text)
    for pattern, keeps_name in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if keeps_name else "") + mask, text)
    return text


def split_url_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(url without user-info, (user, password) or None): credentials go in an auth header, not the URL."""
    import httpx

    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url, None
    clean = str(parsed.copy_with(userinfo=b""))
    return clean, (parsed.username, parsed.password)


class RedactingFilter(logging.Filter):
    """Masks secrets in a log record's final message (a filter on handlers sees every logger's records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Attach the redacting filter to the root logger's handlers and to the HTTP clients' loggers.

    Idempotent. Handlers added later (after this call) are not covered, so the backends that talk to
    servers call it when they open, after the command line has configured logging.
    """
    targets: list[Any] = [logging.getLogger(name) for name in ("httpx", "httpcore", "openai", "urllib3")]
    targets += logging.getLogger().handlers
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
