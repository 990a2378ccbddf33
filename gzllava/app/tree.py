"""Walk the Galaxy Zoo DECaLS decision tree for one image with the model's answer probabilities.

Each question is put to the model as the evaluation does (`question_prompt`: the website question plus
its options); the answer labels are scored by the evaluation library's candidate likelihoods
(`LlavaEvaluator.score_candidates`, prompt KV cache reused) and turned into probabilities
(`candidate_probabilities`). The most probable answer decides the next question, as a volunteer's
click would, until the tree ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from dataset_builder.decision_tree import QUESTIONS, ROOT
from gzllava.evaluation.answers import candidate_probabilities, candidate_texts, question_prompt
from gzllava.evaluation.inference import LlavaEvaluator


@dataclass(frozen=True)
class TreeStep:
    question: str  # decision-tree key, e.g. "smooth-or-featured"
    text: str  # website question text
    answer: str  # chosen answer key
    label: str  # chosen answer's website label
    probability: float  # model probability of the chosen answer
    probabilities: dict[str, float]  # label -> probability, tree order


def walk_tree(evaluator: LlavaEvaluator, image: Image.Image, max_steps: int = 20) -> Iterator[TreeStep]:
    """Yield one step per question asked, from the root until the tree ends."""
    key: str | None = ROOT
    for _ in range(max_steps):  # the tree is acyclic; this only bounds a broken tree
        if key is None:
            return
        question = QUESTIONS[key]
        labels = candidate_texts(question)
        scores = evaluator.score_candidates([image], [question_prompt(question)], labels)  # (1, K), log P(label)
        probabilities = candidate_probabilities(scores)[0]  # (K,), sums to 1
        best = int(probabilities.argmax())
        answer = question.answers[best]
        yield TreeStep(key, question.text, answer.key, answer.label, float(probabilities[best]),
                       {label: float(p) for label, p in zip(labels, probabilities)})
        key = question.next_question(answer.key)


def steps_markdown(steps: list[TreeStep], done: bool) -> str:
    """A Markdown table of the walk so far (what the app shows)."""
    lines = ["| question | answer (probability) | other answers |", "|---|---|---|"]
    for step in steps:
        others = ", ".join(f"{label} {p:.2f}" for label, p in step.probabilities.items() if label != step.label)
        lines.append(f"| {step.text} | **{step.label}**&nbsp;({step.probability:.2f}) | {others} |")
    lines.append("" if done else "\n_walking the tree..._")
    return "\n".join(lines).rstrip()
