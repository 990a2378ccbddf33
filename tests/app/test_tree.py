"""The decision-tree walk: a valid path through the GZ DECaLS tree, probabilities from the evaluation library."""

from __future__ import annotations

import numpy as np

from dataset_builder.decision_tree import QUESTIONS, ROOT, answer_path
from gzllava.app.tree import steps_markdown, walk_tree
from gzllava.evaluation.answers import candidate_probabilities, candidate_texts, question_prompt
from gzllava.evaluation.inference import LlavaEvaluator
from gzllava.tiny import toy_galaxy


def test_walk_is_a_complete_tree_path_with_the_models_probabilities(engine):
    evaluator = LlavaEvaluator(engine.model, engine.processor, batch_size=1)
    image = toy_galaxy(1)
    steps = list(walk_tree(evaluator, image))
    assert steps[0].question == ROOT
    # the answers form one complete path, in asking order (answer_path raises otherwise)
    answers = {s.question: ((s.answer,) if QUESTIONS[s.question].multiple_choice else s.answer) for s in steps}
    assert [q for q, _ in answer_path(answers)] == [s.question for s in steps]
    for step in steps:
        assert abs(sum(step.probabilities.values()) - 1) < 1e-9
        assert step.probability == max(step.probabilities.values())
        assert list(step.probabilities) == candidate_texts(step.question)
    # the same numbers as scoring the first question directly
    scores = evaluator.score_candidates([image], [question_prompt(ROOT)], candidate_texts(ROOT), reduction="sum")
    np.testing.assert_allclose(list(steps[0].probabilities.values()), candidate_probabilities(scores)[0], rtol=1e-6)


def test_markdown_lists_each_answer_with_its_probability(engine):
    steps = list(walk_tree(LlavaEvaluator(engine.model, engine.processor, batch_size=1), toy_galaxy()))
    table = steps_markdown(steps, done=True)
    assert table.count("\n| ") == len(steps)
    assert f"**{steps[0].label}**&nbsp;({steps[0].probability:.2f})" in table
    assert "walking the tree" in steps_markdown(steps[:1], done=False)
