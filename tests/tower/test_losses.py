"""Head losses: masking of unreached questions, soft cross-entropy, Dirichlet-multinomial, duplicate-aware InfoNCE."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gzllava.tower.losses import contrastive_loss, dirichlet_multinomial_nll, morphology_loss
from gzllava.tower.questions import HeadSchema

SCHEMA = HeadSchema.parse("gz2")  # smooth-or-featured (3), disk-edge-on (2), how-rounded (3)


def _targets(votes_list):
    shares, reached, counts = zip(*(SCHEMA.targets(v) for v in votes_list))
    return (torch.from_numpy(np.stack(shares)), torch.from_numpy(np.stack(reached)),
            torch.from_numpy(np.stack(counts)))


SMOOTH_ROUND = {"smooth-or-featured_smooth_fraction": 0.8, "smooth-or-featured_featured-or-disk_fraction": 0.2,
                "smooth-or-featured_artifact_fraction": 0.0, "how-rounded_completely_fraction": 0.5,
                "how-rounded_in-between_fraction": 0.5, "how-rounded_cigar-shaped_fraction": 0.0}


def test_unreached_question_is_masked():
    shares, reached, counts = _targets([SMOOTH_ROUND])
    assert reached.tolist() == [[True, False, True]]  # disk-edge-on has no fractions: not reached
    logits = torch.randn(1, SCHEMA.num_answers, requires_grad=True)
    loss, _ = morphology_loss(logits, shares, reached, counts, SCHEMA.slices())
    loss.backward()
    edge_on = SCHEMA.slices()[1]
    assert torch.all(logits.grad[0, edge_on] == 0)
    assert torch.any(logits.grad[0, SCHEMA.slices()[0]] != 0)
    # changing the unreached question's logits changes nothing
    other = logits.detach().clone()
    other[0, edge_on] += 5
    assert torch.isclose(morphology_loss(other, shares, reached, counts, SCHEMA.slices())[0], loss.detach())


def test_soft_cross_entropy_matches_hand_computation():
    shares, reached, counts = _targets([SMOOTH_ROUND])
    logits = torch.randn(1, SCHEMA.num_answers)
    loss, per_question = morphology_loss(logits, shares, reached, counts, SCHEMA.slices())
    expected = sum(-(shares[0, sl] * F.log_softmax(logits[0, sl], -1)).sum() for i, sl in enumerate(SCHEMA.slices())
                   if reached[0, i])
    assert torch.isclose(loss, expected)
    assert per_question[1] == 0


def _dm_pmf(k, alpha):
    n, a0 = sum(k), sum(alpha)
    log = math.lgamma(a0) + math.lgamma(n + 1) - math.lgamma(n + a0)
    log += sum(math.lgamma(ki + ai) - math.lgamma(ai) - math.lgamma(ki + 1) for ki, ai in zip(k, alpha))
    return math.exp(log)


def test_dirichlet_multinomial_is_a_distribution_and_used_with_counts():
    logits = torch.tensor([[0.3, -0.2]])
    alpha = logits.exp()[0].tolist()
    n = 5
    total = sum(_dm_pmf((k, n - k), alpha) for k in range(n + 1))
    assert total == pytest.approx(1.0, abs=1e-9)
    nll = dirichlet_multinomial_nll(logits, torch.tensor([[3.0, 2.0]]))
    assert nll.item() == pytest.approx(-math.log(_dm_pmf((3, 2), alpha)), rel=1e-5)
    # with a vote count the head loss is the Dirichlet-multinomial, without it the soft cross-entropy
    votes = {**SMOOTH_ROUND, "smooth-or-featured_total-votes": 10}
    shares, reached, counts = _targets([votes])
    full = torch.randn(1, SCHEMA.num_answers)
    with_counts, per_q = morphology_loss(full, shares, reached, counts, SCHEMA.slices(), use_counts=True)
    sl = SCHEMA.slices()[0]
    dm = dirichlet_multinomial_nll(full[:, sl], torch.tensor([[8.0, 2.0, 0.0]]))
    assert per_q[0].item() == pytest.approx(dm.item(), rel=1e-5)
    without, _ = morphology_loss(full, shares, reached, counts, SCHEMA.slices(), use_counts=False)
    assert not torch.isclose(with_counts, without)


def test_contrastive_identical_texts_are_positives():
    torch.manual_seed(0)
    image, text = torch.randn(4, 8), torch.randn(4, 8)
    scale = torch.tensor(math.log(10))
    plain = contrastive_loss(image, text, scale)
    assert torch.isclose(contrastive_loss(image, text, scale, torch.arange(4)), plain)
    # images 0 and 1 share one text: matching image 1 to text 0 must no longer be penalised
    text_dup = text.clone()
    text_dup[1] = text_dup[0]
    ids = torch.tensor([0, 0, 1, 2])
    aware = contrastive_loss(image, text_dup, scale, ids)
    naive = contrastive_loss(image, text_dup, scale)
    assert aware < naive


def test_question_weights_scale_each_questions_term_and_zero_removes_it():
    shares, reached, counts = _targets([SMOOTH_ROUND])
    logits = torch.randn(1, SCHEMA.num_answers, requires_grad=True)
    plain, per_question = morphology_loss(logits, shares, reached, counts, SCHEMA.slices())
    weights = torch.from_numpy(SCHEMA.loss_weights("how-rounded=0, smooth-or-featured=2"))
    assert weights.tolist() == [2.0, 1.0, 0.0]
    weighted, weighted_per_question = morphology_loss(logits, shares, reached, counts, SCHEMA.slices(), weights=weights)
    assert torch.isclose(weighted, 2 * per_question[0])  # roundness dropped, smooth-or-featured doubled
    assert torch.equal(weighted_per_question, per_question)  # the per-question means stay unweighted
    weighted.backward()
    assert torch.all(logits.grad[0, SCHEMA.slices()[2]] == 0)
    assert not torch.isclose(weighted, plain)


@pytest.mark.parametrize("spec, message", [
    ("bar=4", "unknown question 'bar'; questions: smooth-or-featured, disk-edge-on, how-rounded"),
    ("how-rounded", "'how-rounded': expected QUESTION=W"),
    ("how-rounded=lots", "how-rounded weight 'lots' is not a number"),
    ("how-rounded=-1", "how-rounded weight -1 must be 0 or more"),
    ("how-rounded=inf", "how-rounded weight inf must be 0 or more"),
])
def test_bad_question_weights_fail_naming_the_question(spec, message):
    with pytest.raises(ValueError, match="head_question_weights: " + message.replace("(", r"\(")):
        SCHEMA.loss_weights(spec)
    assert SCHEMA.loss_weights(None).tolist() == [1.0, 1.0, 1.0]
