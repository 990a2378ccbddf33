"""A gz-talk-instruct config/split (a local folder or a Hub repo id) as an evaluation set, and the answer
counts of its training split for the majority-class baseline."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from dataset_builder.decision_tree import QUESTIONS, majority_answer

from .morphology_metrics import majority_path
from .samples import (EvalSample, EvalSet, NotScoredRow, Skip, check_label, checked, clean_votes, decode_image,
                      describe_image_error, first_exchange, seeded_subset, skip_reason)

logger = logging.getLogger(__name__)

TREE_CONFIG = "decision_tree"


def sample_from_row(row: dict[str, Any], config: str | None) -> EvalSample:
    """One gz-talk-instruct row -> EvalSample; ValueError/KeyError/OSError name what is wrong."""
    row_id = str(row.get("id"))
    prompt, reference = first_exchange(row.get("messages"))
    question, answer = row.get("question"), row.get("answer")
    if config == TREE_CONFIG and question is None:
        raise NotScoredRow("multi-turn decision-tree walk: no single question to score")
    if question is not None:
        if answer is None:
            raise ValueError(f"question {question!r} without an answer")
        answer = check_label(question, answer)
    votes = clean_votes(row.get("votes"))
    expert: dict[str, str] = {}
    if row.get("truth"):
        try:
            truth = json.loads(row["truth"])
        except json.JSONDecodeError as err:
            raise ValueError(f"truth is not JSON: {err}") from None
        # The generator's truth also holds its parameters (kind, arm_count, pitch_deg, ...): only the
        # decision-tree questions are labels; checkbox truths (lists) have no single answer to score.
        for q_key, a_key in truth.items():
            if q_key in QUESTIONS and isinstance(a_key, str):
                expert[q_key] = check_label(q_key, a_key)
    image = row.get("image") or {}
    try:
        data = image.get("bytes") or Path(image.get("path") or "").read_bytes()
        decode_image(data)
    except Exception as err:  # PIL raises many types for bad bytes
        raise OSError(f"unreadable image: {describe_image_error(err, image.get('path'))}") from None
    return EvalSample(
        id=row_id, image_data=data, votes=votes, expert=expert, question=question, answer=answer,
        prompt=prompt, reference=reference, subject_id=row.get("subject_id"),
    )


def load_instruct_split(dataset: str, config: str, split: str, max_samples: int | None = None,
                        seed: int = 0, questions: list[str] | None = None) -> EvalSet:
    """A gz-talk-instruct config/split from a local folder or a Hub repo id; with `questions`, a table with a
    `question` column (decision_tree) keeps only the rows asking them, before the `max_samples` subset is drawn."""
    import datasets

    try:
        table = datasets.load_dataset(dataset, config, split=split)
    except ValueError as err:
        raise ValueError(f"cannot load config {config!r} split {split!r} of {dataset!r}: {err}") from err
    missing = {"id", "image", "messages"} - set(table.column_names)
    if missing:
        raise ValueError(f"{dataset} ({config}/{split}) is not gz-talk-instruct: missing column(s) {sorted(missing)}")
    table = table.cast_column("image", datasets.Image(decode=False))  # decode ourselves, to skip bad ones
    indices = list(range(len(table)))
    row_questions = table["question"] if questions and "question" in table.column_names else []
    asked = {question for question in row_questions if question}
    if asked:  # decision_tree: a question per row (other configs' rows reach several, filtered as items)
        wanted = set(questions)
        indices = [i for i, question in zip(indices, row_questions) if question in wanted]
        if not indices:
            raise ValueError(f"--questions {','.join(questions)}: no row of {dataset} ({config}/{split}) asks them "
                             f"(its questions: {', '.join(sorted(asked))})")
    indices = seeded_subset(indices, max_samples, seed)
    eval_set = EvalSet(name=f"{Path(dataset).name or dataset}:{config}/{split}", kind="gz-talk-instruct", samples=[])
    for index in indices:
        row = table[index]
        eval_set.rows_read += 1
        try:
            eval_set.samples.append(sample_from_row(row, config))
        except NotScoredRow as err:
            eval_set.skips.append(Skip(id=str(row.get("id")), reason=f"not scored: {err}", bad_input=False))
        except (ValueError, KeyError, OSError) as err:
            eval_set.skips.append(Skip(id=str(row.get("id", f"row {index}")), reason=skip_reason(err)))
    return checked(eval_set)


def load_answer_counts(dataset: str, config: str, split: str = "train") -> Counter | None:
    """(question, answer) counts of a training split, for the majority-class baseline; None if absent.

    Rows with a `question` column value count as themselves (config decision_tree); other rows
    count the majority answers along their vote path, the items `morphology_items` makes.
    """
    import datasets

    try:
        table = datasets.load_dataset(dataset, config, split=split)
    except Exception as err:  # missing split or config: the baseline falls back to the eval set
        logger.info("no %s split for the majority baseline (%s); using the evaluation set", split, err)
        return None
    counts: Counter = Counter()
    questions = table["question"] if "question" in table.column_names else [None] * len(table)
    answers = table["answer"] if "answer" in table.column_names else [None] * len(table)
    votes_column = table["votes"] if "votes" in table.column_names else [None] * len(table)
    explicit = any(q is not None for q in questions)
    for question, answer, votes in zip(questions, answers, votes_column):
        if explicit:
            if question in QUESTIONS and answer in QUESTIONS[question].answer_keys:
                counts[(question, answer)] += 1
            continue
        try:
            votes = clean_votes(votes)
        except KeyError:
            continue
        for q in majority_path(votes):
            majority = majority_answer(q, votes)
            if majority is not None:
                counts[(q.key, majority[0])] += 1
    return counts or None
