"""Summarise what volunteers saw in each galaxy: pluggable backends behind one interface.

- `template` (default): deterministic sentences from votes, hashtags and comment keywords; offline.
- `transformers`: any causal LM, batched generation constrained to `SUMMARY_JSON_SCHEMA`.
- `openai`: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama).

Every backend caches raw outputs on disk (`cache.py`) and validates them (`validator.py`).
"""

from .base import (
    BACKENDS,
    SUMMARY_JSON_SCHEMA,
    GenerationRequest,
    Summariser,
    SummariserError,
    build_prompt,
    get_summariser,
    parse_summary_output,
    summary_source_text,
)
from .cache import SummaryCache, cache_key
from .validator import is_refusal, validate_summary

__all__ = [
    "BACKENDS",
    "SUMMARY_JSON_SCHEMA",
    "GenerationRequest",
    "Summariser",
    "SummariserError",
    "SummaryCache",
    "build_prompt",
    "cache_key",
    "get_summariser",
    "is_refusal",
    "parse_summary_output",
    "summary_source_text",
    "validate_summary",
]
