"""Batched generation and candidate scoring on tiny models: GZ-LLaVA and stock llava-hf."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import galaxy_image
from gzllava.evaluation.answers import candidate_probabilities, parse_answer
from gzllava.evaluation.inference import LlavaEvaluator
from processing_gzllava import assistant_turn, user_turn

# transformers 5.24 renamed forward's `past_key_values` to `cache` and drops the old name in 5.40: scoring must
# use the new one, so the deprecation warning fails these tests.
pytestmark = pytest.mark.filterwarnings("error:.*past_key_values.*:FutureWarning")

MODELS = ["gz_tiny", "stock_tiny"]
QUESTIONS = ["Is there any sign of a bar feature through the centre of the galaxy?", "How many spiral arms are there?",
             "Bar?", "Is the galaxy simply smooth and rounded, with no sign of a disk?", "Describe this galaxy."]
CANDIDATES = ["Bar", "No bar", "More than 4", "2", "Features or disk"]


def _images(n):
    # different sizes: the processor must resize them all to the tower's input
    return [galaxy_image(i, "spiral" if i % 2 else "smooth", size=40 + 4 * i) for i in range(n)]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("which", MODELS)
def test_cached_batched_scoring_equals_the_unbatched_full_forward(which, reduction, request):
    model, processor = request.getfixturevalue(which)
    images = _images(5)
    reference = LlavaEvaluator(model, processor, batch_size=1, use_prompt_cache=False)
    expected = reference.score_candidates(images, QUESTIONS, CANDIDATES, reduction=reduction)
    for evaluator in (LlavaEvaluator(model, processor, batch_size=3, candidate_rows=4),  # cache, chunked candidates
                      LlavaEvaluator(model, processor, batch_size=4, use_prompt_cache=False)):
        np.testing.assert_allclose(evaluator.score_candidates(images, QUESTIONS, CANDIDATES, reduction=reduction),
                                   expected, atol=1e-4)
    assert expected.shape == (5, 5) and np.all(expected < 0)


@pytest.mark.parametrize("which", MODELS)
def test_summed_scores_are_the_mean_times_the_candidates_token_count(which, request):
    model, processor = request.getfixturevalue(which)
    evaluator = LlavaEvaluator(model, processor, batch_size=2)
    images = _images(3)
    mean = evaluator.score_candidates(images, QUESTIONS[:3], CANDIDATES, reduction="mean")
    total = evaluator.score_candidates(images, QUESTIONS[:3], CANDIDATES)  # the default: log P(candidate)
    lengths = np.array([[len(evaluator.continuation_ids(evaluator.prompt(q), q, c)) for c in CANDIDATES]
                        for q in QUESTIONS[:3]])
    assert lengths.max() > lengths.min()  # candidates of different lengths, where the two disagree
    np.testing.assert_allclose(total, mean * lengths, rtol=1e-5)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'max'"):
        evaluator.score_candidates(images, QUESTIONS[:3], CANDIDATES, reduction="max")


@pytest.mark.parametrize("which", MODELS)
def test_batched_generation_equals_unbatched(which, request):
    model, processor = request.getfixturevalue(which)
    images = _images(4)
    batched = LlavaEvaluator(model, processor, batch_size=4).generate(images, QUESTIONS[:4], max_new_tokens=6)
    single = LlavaEvaluator(model, processor, batch_size=1).generate(images, QUESTIONS[:4], max_new_tokens=6)
    assert batched == single and len(batched) == 4


@pytest.mark.parametrize("which", MODELS)
def test_candidate_tokens_are_those_the_chat_template_puts_after_the_prompt(which, request):
    _, processor = request.getfixturevalue(which)
    evaluator = LlavaEvaluator(*request.getfixturevalue(which))
    tokenizer = processor.tokenizer
    for candidate in CANDIDATES:
        prompt = evaluator.prompt(QUESTIONS[0])
        ids = evaluator.continuation_ids(prompt, QUESTIONS[0], candidate)
        full = processor.apply_chat_template(
            [*user_turn(QUESTIONS[0]), assistant_turn(candidate)],
            tokenize=False)
        full_ids = tokenizer(full)["input_ids"]
        prompt_ids = tokenizer(prompt)["input_ids"]
        assert full_ids[: len(prompt_ids) + len(ids)] == prompt_ids + ids
        assert candidate.lower().replace(" ", "") in tokenizer.decode(ids).lower().replace(" ", "")


def _rig(model, token_ids, end_id, boost=30.0):
    """Make `model` prefer the reply `token_ids`, as a model that has learned it would: after its token k,
    token k + 1 gets `boost` added to its logit; after its last token, `end_id` (when there is one);
    anywhere else, its first token. A forward hook on the whole model reads the input token under
    each output position, so the prompt-cached, the full-forward and the generate paths are rigged alike."""
    following = dict(zip(token_ids, [*token_ids[1:], end_id]))

    def hook(module, args, kwargs, output):
        logits = output.logits  # (B, L, V): the last L input positions
        ids = kwargs["input_ids"][:, -logits.shape[1]:]  # (B, L)
        wanted = torch.full_like(ids, token_ids[0])
        for token, after in following.items():
            if after is not None:
                wanted[ids == token] = after
        output.logits = logits + boost * torch.nn.functional.one_hot(wanted, logits.shape[-1]).to(logits.dtype)
        return output

    return model.register_forward_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("which", MODELS)
@pytest.mark.parametrize(("favoured", "expected"), [("No bar", "no"), ("Bar", "yes")])
def test_a_model_rigged_to_prefer_an_answer_is_read_as_that_answer(which, favoured, expected, request):
    model, processor = request.getfixturevalue(which)
    evaluator = LlavaEvaluator(model, processor, batch_size=2)
    question = QUESTIONS[0]
    favoured_ids = evaluator.continuation_ids(evaluator.prompt(question), question, favoured)
    handle = _rig(model, favoured_ids, processor.tokenizer.eos_token_id)
    try:
        images = _images(3)
        scores = evaluator.score_candidates(images, [question] * 3, ["Bar", "No bar"])
        probabilities = candidate_probabilities(scores)
        texts = evaluator.generate(images, [question] * 3, max_new_tokens=4)
    finally:
        handle.remove()
    favoured_column = ["Bar", "No bar"].index(favoured)
    assert np.all(probabilities[:, favoured_column] > 0.9)
    assert [parse_answer("bar", t) for t in texts] == [expected] * 3, texts


def test_mismatched_inputs_are_refused(gz_tiny):
    evaluator = LlavaEvaluator(*gz_tiny)
    with pytest.raises(ValueError, match="2 images but 1 questions"):
        evaluator.score_candidates(_images(2), QUESTIONS[:1], CANDIDATES)
    with pytest.raises(ValueError, match="no candidates"):
        evaluator.score_candidates(_images(1), QUESTIONS[:1], [])
    with pytest.raises(ValueError, match="batch_size"):
        LlavaEvaluator(*gz_tiny, batch_size=0)
