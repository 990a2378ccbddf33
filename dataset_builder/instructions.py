"""Instruction rows of the three configs, built from one subject (+ its summary).

- `description`: one describe-this-galaxy instruction from a varied pool -> the summary.
- `conversation`: several turns about what is visible (summary, features, vote-grounded answers,
  Talk hashtags, how sure the volunteers are).
- `decision_tree`: one row per question of the Galaxy Zoo DECaLS tree that this galaxy reaches when
  the majority answers are followed (`decision_tree.reachable_questions`), answered from the vote
  fractions; plus one multi-turn row that walks the whole path. The wording of questions and answers
  (how sure the volunteers were, always starting with the answer's website label) is `answer_wording.py`.

Every row has the schema of `writer.row_features`: the first user turn starts with one image
placeholder block `{"type": "image", "text": None}` (TRL's `prepare_multimodal_messages` and our
processor's chat template fill it from the row's `image` column), later turns are text only.
Phrasings are drawn with a `random.Random` seeded by (config, subject id): the same subject gives the
same rows in every build, whatever the order or number of subjects.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from .answer_wording import QUESTION_PARAPHRASES, AnsweredPath, answer_text, answered_path, question_prompt
from .decision_tree import QUESTIONS, finite_fraction, vote_columns
from .records import Reject, Subject, Summary

CONFIGS = ("description", "conversation", "decision_tree")
WALK_ROW = "walk"  # k of the multi-turn decision-tree row

Row = dict[str, Any]


def parse_configs(text: str) -> list[str]:
    """'description,decision_tree' -> ['description', 'decision_tree'], refusing unknown names."""
    configs = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or not configs:
        raise ValueError(f"unknown config(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(CONFIGS)}")
    return list(dict.fromkeys(configs))


# ------------------------------------------------------------------------------------ messages
def image_turn(text: str) -> dict[str, Any]:
    """The first user turn: the image placeholder, then the instruction."""
    return {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": text}]}


def text_turn(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def conversation(pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """(user, assistant) pairs -> messages, the image placeholder in the first user turn only."""
    messages: list[dict[str, Any]] = []
    for index, (user, assistant) in enumerate(pairs):
        messages.append(image_turn(user) if index == 0 else text_turn("user", user))
        messages.append(text_turn("assistant", assistant))
    return messages


_VOTE_COLUMNS = tuple(vote_columns())


def full_votes(votes: Mapping[str, Any]) -> dict[str, float | None]:
    """Every canonical vote-fraction column (null when unknown), so all rows share one schema."""
    return {column: finite_fraction(votes.get(column)) for column in _VOTE_COLUMNS}


def base_row(
    config: str,
    subject: Subject,
    k: int | str,
    messages: list[dict[str, Any]],
    backend: str,
    votes: dict[str, float | None] | None = None,
) -> Row:
    """A row with the columns every config shares; `votes` may be passed in when already made (speed)."""
    return {
        "id": f"{config}-{subject.subject_id}-{k}",
        "subject_id": subject.subject_id,
        "image": {"bytes": subject.image_bytes, "path": None},
        "messages": messages,
        "tags": list(subject.tags),
        "votes": votes if votes is not None else full_votes(subject.votes),
        "question": None,
        "answer": None,
        "answer_fraction": None,
        "source": subject.source,
        "summary_backend": backend,
        "truth": json.dumps(subject.truth, sort_keys=True) if subject.truth is not None else None,
    }


def _rng(config: str, subject_id: str, salt: str = "") -> random.Random:
    # A CRC-32 seed: stable across processes and runs (unlike hash()), and an int seeds ~5x faster
    # than a str (which Random hashes with SHA-512).
    return random.Random(zlib.crc32(f"{config}:{subject_id}:{salt}".encode()))


# --------------------------------------------------------------------------------- description
DESCRIPTION_PROMPTS = (
    "Describe this galaxy.",
    "Describe the galaxy in this image.",
    "What does this galaxy look like?",
    "Give a short description of this galaxy's appearance.",
    "Describe the morphology of the object in this image.",
    "What do you see in this image of a galaxy?",
    "Write a brief description of this galaxy, as a Galaxy Zoo volunteer would.",
    "Summarise the visible features of this galaxy.",
    "Tell me about this galaxy.",
    "What stands out about this object?",
    "Describe the shape and structure of this galaxy.",
    "Look at this Galaxy Zoo image and describe what you notice.",
    "How would you describe this galaxy to someone who cannot see the image?",
    "Characterise this galaxy's morphology in a few sentences.",
    "What kind of galaxy is this, and what features does it show?",
    "Please describe this astronomical image.",
)


def description_rows(subject: Subject, summary: Summary, *, votes: dict[str, float | None] | None = None) -> list[Row]:
    prompt = _rng("description", subject.subject_id).choice(DESCRIPTION_PROMPTS)
    messages = conversation([(prompt, summary.description.strip())])
    return [base_row("description", subject, 0, messages, summary.backend, votes)]


# ---------------------------------------------------------------------------- decision tree
def decision_tree_rows(
    subject: Subject,
    backend: str = "votes",
    *,
    walk: bool = True,
    path: AnsweredPath | None = None,
    votes: dict[str, float | None] | None = None,
) -> list[Row]:
    """One row per reachable question with a known majority answer (+ the multi-turn walk)."""
    rows: list[Row] = []
    pairs: list[tuple[str, str]] = []
    if votes is None:
        votes = full_votes(subject.votes)  # shared by the subject's rows: they are written, never mutated
    rng = _rng("decision_tree", subject.subject_id)
    for question, (answer_key, fraction) in answered_path(subject.votes) if path is None else path:
        prompt = question_prompt(question, rng)
        reply = answer_text(question, answer_key, fraction, subject.votes, rng)
        row = base_row("decision_tree", subject, question.key, conversation([(prompt, reply)]), backend, votes)
        row.update(question=question.key, answer=answer_key, answer_fraction=float(fraction))
        rows.append(row)
        pairs.append((question.text, reply))
    if walk and len(pairs) >= 2:
        opener = "Classify this galaxy with the Galaxy Zoo decision tree, one question at a time. " + pairs[0][0]
        messages = conversation([(opener, pairs[0][1]), *pairs[1:]])
        rows.append(base_row("decision_tree", subject, WALK_ROW, messages, backend, votes))
    return rows


# ----------------------------------------------------------------------------- conversation
CONVERSATION_OPENERS = (
    "What can you see in this image?",
    "What is this object?",
    "Can you tell me what this galaxy looks like?",
    "Describe what you see here.",
    "What's going on in this picture?",
)
FEATURE_QUESTIONS = (
    "Which features stand out?",
    "What features are visible?",
    "Which structures can you make out?",
    "What details do the volunteers point out?",
)
TAG_QUESTIONS = (
    "How did volunteers tag it on Talk?",
    "Which hashtags did people use for this one?",
    "What tags does it have?",
)
CERTAINTY_QUESTIONS = (
    "How sure are the volunteers about this?",
    "How confident is that description?",
    "Do the volunteers agree about it?",
)
CERTAINTY_ANSWERS = {
    "low": "Fairly sure: the volunteers' comments agree with one another.",
    "medium": "Somewhat: the comments mostly agree, but some details are tentative.",
    "high": "Not very: the comments are tentative or disagree, so treat this description with caution.",
}
# Vote-grounded follow-ups: these questions, when the galaxy reaches them, in this order of preference.
CONVERSATION_TREE_QUESTIONS = ("has-spiral-arms", "bar", "merging", "disk-edge-on", "how-rounded", "odd-feature")


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def conversation_rows(
    subject: Subject,
    summary: Summary,
    *,
    max_tree_turns: int = 2,
    path: AnsweredPath | None = None,
    votes: dict[str, float | None] | None = None,
) -> tuple[list[Row], Reject | None]:
    """One multi-turn row, or a Reject (stage "instructions") when there is too little to talk about."""
    rng = _rng("conversation", subject.subject_id)
    pairs: list[tuple[str, str]] = [(rng.choice(CONVERSATION_OPENERS), summary.description.strip())]
    features = [f.strip() for f in summary.visible_features if f and f.strip()]
    if features:
        pairs.append((rng.choice(FEATURE_QUESTIONS), f"The most visible features are {_join(features)}."))
    answered = {q.key: (q, majority) for q, majority in (answered_path(subject.votes) if path is None else path)}
    for key in [k for k in CONVERSATION_TREE_QUESTIONS if k in answered][:max_tree_turns]:
        question, (answer_key, fraction) = answered[key]
        prompt = QUESTION_PARAPHRASES[key][0] if key in QUESTION_PARAPHRASES else question.text
        pairs.append((prompt, answer_text(question, answer_key, fraction, subject.votes, rng)))
    if subject.tags:
        tags = _join([f"#{tag}" for tag in subject.tags[:8]])
        pairs.append((rng.choice(TAG_QUESTIONS), f"On Talk it was tagged {tags}."))
    if summary.uncertainty in CERTAINTY_ANSWERS:
        pairs.append((rng.choice(CERTAINTY_QUESTIONS), CERTAINTY_ANSWERS[summary.uncertainty]))
    if len(pairs) < 3:
        reason = "too little to talk about: fewer than 3 question-answer turns (no features, votes or tags)"
        return [], Reject(stage="instructions", kind="row", id=f"conversation-{subject.subject_id}-0",
                          reason=reason, source=subject.source)
    return [base_row("conversation", subject, 0, conversation(pairs), summary.backend, votes)], None


# ------------------------------------------------------------------- class labels (no fractions)
# A class-label catalogue (catalogues.read_class_catalogue) gives answers without vote fractions: the
# wording states the answer without a confidence, and the rows' `votes` and `answer_fraction` are null.
LABEL_PHRASES = ("{label}.", "{label}, as far as I can tell.", "{label}, I would say.")
LABEL_BACKEND = "class-label"
# (question, answer) -> noun phrase, most specific first: the description names the first one present.
LABEL_NOUNS = (
    (("merging", "merger"), "a galaxy merging with another"),
    (("has-spiral-arms", "yes"), "a spiral galaxy"),
    (("disk-edge-on", "yes"), "an edge-on disk galaxy"),
    (("smooth-or-featured", "smooth"), "a smooth, rounded galaxy"),
    (("smooth-or-featured", "featured-or-disk"), "a disk galaxy with visible features"),
)
LABEL_SENTENCES = ("This is {x}.", "The image shows {x}.", "It is {x}.")


def label_rows(config: str, subject: Subject, labels: Mapping[str, str]) -> tuple[list[Row], list[Reject]]:
    """Rows of `config` from one subject's class-derived answers {question key: answer key}."""
    votes = full_votes({})
    if config == "decision_tree":
        rng = _rng("decision_tree", subject.subject_id)
        rows: list[Row] = []
        pairs: list[tuple[str, str]] = []
        for question in [q for q in QUESTIONS.values() if q.key in labels]:  # tree order
            prompt = question_prompt(question, rng)
            reply = rng.choice(LABEL_PHRASES).format(label=question.answer(labels[question.key]).label)
            row = base_row("decision_tree", subject, question.key, conversation([(prompt, reply)]), LABEL_BACKEND, votes)
            row.update(question=question.key, answer=labels[question.key])
            rows.append(row)
            pairs.append((question.text, reply))
        if len(pairs) >= 2:
            opener = "Classify this galaxy with the Galaxy Zoo decision tree, one question at a time. " + pairs[0][0]
            rows.append(base_row("decision_tree", subject, WALK_ROW, conversation([(opener, pairs[0][1]), *pairs[1:]]),
                                 LABEL_BACKEND, votes))
        return rows, []
    noun = next((text for (q, a), text in LABEL_NOUNS if labels.get(q) == a), None)
    if config == "description" and noun is not None:
        rng = _rng("description", subject.subject_id)
        prompt = rng.choice(DESCRIPTION_PROMPTS)
        reply = rng.choice(LABEL_SENTENCES).format(x=noun)
        return [base_row("description", subject, 0, conversation([(prompt, reply)]), LABEL_BACKEND, votes)], []
    reason = (f"{config} needs comments or votes; a class label gives none" if config != "description"
              else "no description for these class answers")
    return [], [Reject(stage="instructions", kind="row", id=f"{config}-{subject.subject_id}-0", reason=reason,
                       source=subject.source)]


# ------------------------------------------------------------------------------------ dispatch
def rows_for(
    config: str,
    subject: Subject,
    summary: Summary | None,
    path: AnsweredPath | None = None,
    votes: dict[str, float | None] | None = None,
) -> tuple[list[Row], list[Reject]]:
    """The rows of one config for one subject, and the rejects of rows that could not be made.

    path, votes: `answered_path(subject.votes)` and `full_votes(subject.votes)` when the caller already
    has them (computed once per subject for all configs; rows share the votes dict, never mutate it).
    """
    if config == "decision_tree":
        rows = decision_tree_rows(subject, path=path, votes=votes)
        if rows:
            return rows, []
        reason = "no vote fractions for any decision-tree question" if not subject.votes else (
            "no decision-tree question with a majority answer")
        return [], [Reject(stage="instructions", kind="row", id=f"decision_tree-{subject.subject_id}",
                           reason=reason, source=subject.source)]
    if summary is None:
        return [], [Reject(stage="instructions", kind="row", id=f"{config}-{subject.subject_id}-0",
                           reason="no summary for this subject", source=subject.source)]
    if config == "description":
        return description_rows(subject, summary, votes=votes), []
    if config == "conversation":
        rows, reject = conversation_rows(subject, summary, path=path, votes=votes)
        return rows, [reject] if reject else []
    raise ValueError(f"unknown config {config!r}; choose from {', '.join(CONFIGS)}")
