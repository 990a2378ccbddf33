"""The summariser interface: prompt, JSON schema, cache, validation; backends only generate text.

A backend turns prompts into raw model text (`_generate`). Everything else lives here, so every
backend behaves the same: results come back one per subject in input order, cached outputs are
reused (`cache.py`), each output is parsed against `SUMMARY_JSON_SCHEMA` and checked by
`validator.validate_summary`, and a bad output becomes a `Reject` instead of an exception.
"""

from __future__ import annotations

import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tqdm.auto import tqdm

from ..decision_tree import confidence_band, majority_answer, reachable_questions
from ..privacy import scrub_identities
from ..records import Reject, Subject, Summary
from .cache import SummaryCache, cache_key
from .validator import validate_summary

logger = logging.getLogger(__name__)

UNCERTAINTY_LEVELS = ("low", "medium", "high")


class SummariserError(RuntimeError):
    """A summariser backend cannot go on (an endpoint refusing credentials, failing after its retries):
    the command line reports it in one line and exits 2."""


# The output every backend must produce. Only keywords that OpenAI's strict structured outputs,
# vLLM's and Ollama's guided decoding all accept (no length bounds: those are enforced by the
# transformers backend's constraint and by `parse_summary_output`).
SUMMARY_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "visible_features": {"type": "array", "items": {"type": "string"}},
        "uncertainty": {"type": "string", "enum": list(UNCERTAINTY_LEVELS)},
    },
    "required": ["description", "visible_features", "uncertainty"],
    "additionalProperties": False,
}

# Prompt budget: Talk threads are short (about 1.6 comments per subject), but a few run to dozens
# of long comments; the prompt keeps the first ones so a small model's context is not exceeded.
MAX_PROMPT_COMMENTS = 20
MAX_COMMENT_CHARS = 500
MAX_COMMENTS_CHARS = 4000

INSTRUCTION = """\
You summarise what Galaxy Zoo volunteers saw in one galaxy image.
Use only what the hashtags, votes and comments below say about how the galaxy LOOKS: its shape, \
spiral arms, bar, bulge, rings, dust lanes, tidal features, mergers, neighbours, colours, image artefacts.
Do not mention redshift, distance, size, mass or age, do not name catalogue objects (NGC, M, UGC...) \
or other galaxies and planets (the Milky Way, Andromeda, Saturn...), and do not add numbers the comments do not give.
Do not refuse and do not say that information is missing: describe what is there, and express doubt \
through the "uncertainty" field.
Answer with one JSON object and nothing else:
{"description": "<two or three sentences>", "visible_features": ["<short feature>", ...], "uncertainty": "low" | "medium" | "high"}
uncertainty is "low" when volunteers agree, "high" when they disagree or are unsure."""


AGREEMENT_WORDS = {"confident": "almost all volunteers", "likely": "most volunteers",
                   "uncertain": "some volunteers, no clear majority"}


def agreement_words(fraction: float) -> str:
    """Vote fraction -> words (the prompt carries no percentages a model could copy as 'facts')."""
    return AGREEMENT_WORDS[confidence_band(fraction)]


def vote_lines(votes: Mapping[str, float]) -> list[str]:
    """One line per question on the majority path: 'Spiral arms? 2 (most volunteers)'."""
    lines = []
    for question in reachable_questions(votes):
        majority = majority_answer(question, votes)
        if majority is None:
            continue
        answer_key, fraction = majority
        label = question.answer(answer_key).label
        lines.append(f"{question.text} {label} ({agreement_words(fraction)})")
    return lines


def _comment_texts(subject: Subject) -> list[str]:
    return [c.body.strip() for c in subject.comments if c.body and c.body.strip()]


def _prompt_comments(subject: Subject) -> list[str]:
    kept, used = [], 0
    for text in _comment_texts(subject)[:MAX_PROMPT_COMMENTS]:
        text = re.sub(r"\s+", " ", text)
        if len(text) > MAX_COMMENT_CHARS:
            text = text[:MAX_COMMENT_CHARS].rsplit(" ", 1)[0] + " ..."
        if used + len(text) > MAX_COMMENTS_CHARS and kept:
            break
        kept.append(text)
        used += len(text)
    return kept


def build_prompt(subject: Subject) -> str:
    """The full instruction for one subject: rules, output format, then hashtags, votes, comments."""
    parts = [INSTRUCTION, ""]
    if subject.tags:
        parts.append("Hashtags: " + " ".join(f"#{t}" for t in subject.tags))
    if subject.votes and (lines := vote_lines(subject.votes)):
        parts.append("Volunteer votes (Galaxy Zoo questions and the majority answer):")
        parts += [f"- {line}" for line in lines]
    comments = _prompt_comments(subject)
    if comments:
        parts.append("Comments:")
        parts += [f"- {text}" for text in comments]
    if not subject.tags and not subject.votes and not comments:
        parts.append("(No hashtags, votes or comments.)")
    return "\n".join(parts)


def summary_source_text(subject: Subject) -> str:
    """What a summary of `subject` may draw on: comments, hashtags and vote answers.

    The validator checks numbers, names and topics against this text; the curation stage should
    pass the same text as `source_text`.
    """
    parts = _comment_texts(subject)
    parts += [" ".join(f"#{t}" for t in subject.tags), " ".join(t.replace("_", " ").replace("-", " ") for t in subject.tags)]
    if subject.votes:
        parts += vote_lines(subject.votes)
    return "\n".join(p for p in parts if p)


# ------------------------------------------------------------------------------------ parsing
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


def _scrubbed(text: str) -> str:
    out = scrub_identities(text)
    return text.strip() if out == text else " ".join(out.split())


def parse_summary_output(text: str) -> dict[str, Any] | str:
    """Raw model text -> {'description', 'visible_features', 'uncertainty'}, or the reason it is unusable.

    Tolerates what chat models wrap around JSON (code fences, a sentence before the object);
    refuses anything that does not fit the schema.
    """
    stripped = _FENCE_RE.sub("", text or "").strip()
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end < start:
        return "output is not JSON" if stripped else "empty"
    try:
        data = json.loads(stripped[start : end + 1])
    except json.JSONDecodeError as error:
        return f"output is not valid JSON ({error.msg} at char {error.pos})"
    if not isinstance(data, dict):
        return "output JSON is not an object"
    missing = [key for key in SUMMARY_JSON_SCHEMA["required"] if key not in data]
    if missing:
        return f"output JSON lacks key(s) {', '.join(missing)}"
    description, features, uncertainty = data["description"], data["visible_features"], data["uncertainty"]
    if not isinstance(description, str):
        return "description is not a string"
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        return "visible_features is not a list of strings"
    if not isinstance(uncertainty, str) or uncertainty.strip().lower() not in UNCERTAINTY_LEVELS:
        return f"uncertainty is not one of {', '.join(UNCERTAINTY_LEVELS)}"  # not quoted: reasons are published
    # A model repeats its input: identities that reached the prompt (or that it made up) leave here,
    # before validation, so that neither a row nor a reject reason can carry them.
    features = [_scrubbed(f) for f in features]
    return {
        "description": _scrubbed(description),
        "visible_features": [f for f in features if f],
        "uncertainty": uncertainty.strip().lower(),
    }


# --------------------------------------------------------------------------------- interface
@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to generate for; the subject rides along for backends that need it (template)."""

    subject: Subject
    prompt: str


class Summariser(ABC):
    """Turns subjects into `Summary` records (or `Reject`s), with caching and validation.

    Subclasses set `backend`, `self.model` and `self.settings` (generation options that change the
    output: they are part of the cache key) and implement `_generate`; backends that finish requests
    out of order or one by one (the HTTP client) override `_generate_stream` instead.
    """

    backend: ClassVar[str]
    model: str

    def __init__(self, cache_dir: Path | str | None = None, *, batch_size: int = 8, show_progress: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        self.cache = SummaryCache(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.settings: dict[str, Any] = {}

    # -- what backends implement
    @abstractmethod
    def _generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """Raw model text for each request (at most `batch_size` of them), in order."""

    def _generate_stream(self, requests: Sequence[GenerationRequest]) -> Iterator[tuple[int, str]]:
        """(index into `requests`, raw text) as each output becomes available."""
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            outputs = self._generate(batch)
            if len(outputs) != len(batch):
                raise RuntimeError(f"{type(self).__name__}._generate returned {len(outputs)} outputs for {len(batch)} prompts")
            yield from enumerate(outputs, start)

    def build_prompt(self, subject: Subject) -> str:
        return build_prompt(subject)

    # -- the public call
    def summarise(self, subjects: Sequence[Subject]) -> list[Summary | Reject]:
        """One `Summary` or `Reject` per subject, in order. Cached outputs are not regenerated."""
        requests = [GenerationRequest(s, self.build_prompt(s)) for s in subjects]
        keys = [cache_key(self.backend, self.model, r.prompt, r.subject.subject_id, self.settings) for r in requests]
        outputs: dict[str, str] = self.cache.get_many(keys) if self.cache is not None else {}
        cached = len(outputs)
        # One generation per distinct key (a subject listed twice is generated once).
        todo_keys = [k for k in dict.fromkeys(keys) if k not in outputs]
        first_request = {k: requests[i] for i, k in reversed(list(enumerate(keys)))}
        todo = [first_request[k] for k in todo_keys]
        if todo:
            with tqdm(total=len(todo), desc=f"summarise [{self.backend}]", unit="subject", disable=not self.show_progress) as bar:
                for index, text in self._generate_stream(todo):
                    key = todo_keys[index]
                    outputs[key] = text
                    if self.cache is not None:  # committed now: a crash after this loses nothing
                        self.cache.put(key, backend=self.backend, model=self.model, subject_id=todo[index].subject.subject_id, output=text)
                    bar.update(1)
        results = [self._to_result(r.subject, outputs[k]) for r, k in zip(requests, keys)]
        rejected = sum(isinstance(r, Reject) for r in results)
        logger.info(
            "summarise [%s %s]: %d subjects, %d from cache, %d generated, %d rejected",
            self.backend, self.model, len(subjects), cached, len(todo), rejected,
        )
        return results

    def _to_result(self, subject: Subject, text: str) -> Summary | Reject:
        parsed = parse_summary_output(text)
        if isinstance(parsed, str):
            return self._reject(subject, parsed)
        generated = "\n".join([parsed["description"], *parsed["visible_features"]])
        problem = "empty" if not parsed["description"] else validate_summary(generated, summary_source_text(subject))
        if problem is not None:
            return self._reject(subject, problem)
        return Summary(subject_id=subject.subject_id, backend=self.backend, model=self.model, **parsed)

    def _reject(self, subject: Subject, reason: str) -> Reject:
        return Reject(stage="summarise", kind="subject", id=subject.subject_id, reason=reason, source=subject.source)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


# ---------------------------------------------------------------------------------- registry
# name -> (module, class); imported on demand so the template backend never imports torch.
BACKENDS: dict[str, tuple[str, str]] = {
    "template": ("template", "TemplateSummariser"),
    "transformers": ("transformers_backend", "TransformersSummariser"),
    "openai": ("openai_backend", "OpenAISummariser"),
}


def get_summariser(name: str, **options: Any) -> Summariser:
    """A summariser by backend name ("template", "transformers", "openai") with its options."""
    if name not in BACKENDS:
        raise ValueError(f"unknown summariser backend {name!r}; choose from {', '.join(BACKENDS)}")
    import importlib

    module_name, class_name = BACKENDS[name]
    module = importlib.import_module(f"{__package__}.{module_name}")
    return getattr(module, class_name)(**options)
