"""Losses of GZ-CLIP: per-question soft cross-entropy / Dirichlet-multinomial on vote shares, and CLIP's InfoNCE.

Both head losses read the same logits: the soft cross-entropy compares softmax(logits) with the vote shares; the
Dirichlet-multinomial (Walmsley et al. 2022, zoobot) uses concentrations exp(logits), whose mean is the same softmax,
so predictions do not depend on which loss trained the head. Unreached questions contribute nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.clip.modeling_clip import image_text_contrastive_loss

# Concentrations exp(logit) are kept in this range (very small ones make lgamma explode, large ones overflow).
MIN_LOG_CONCENTRATION, MAX_LOG_CONCENTRATION = -4.0, 7.0


def dirichlet_multinomial_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """-log DirMult(counts | n, alpha=exp(logits)) per row. logits, counts: (B, K) -> (B,)."""
    alpha = logits.clamp(MIN_LOG_CONCENTRATION, MAX_LOG_CONCENTRATION).exp()
    n, a0 = counts.sum(-1), alpha.sum(-1)
    log_pmf = (torch.lgamma(a0) + torch.lgamma(n + 1) - torch.lgamma(n + a0)
               + (torch.lgamma(counts + alpha) - torch.lgamma(alpha) - torch.lgamma(counts + 1)).sum(-1))
    return -log_pmf


def morphology_loss(logits: torch.Tensor, shares: torch.Tensor, reached: torch.Tensor, counts: torch.Tensor,
                    slices: list[slice], use_counts: bool = True,
                    weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-question mean loss (Q,)) summed over reached questions, averaged over the batch (as zoobot does);
    `weights` (Q,) scale each question's term in the loss (not in the per-question means).

    logits, shares: (B, A); reached: (B, Q) bool; counts: (B, Q), NaN where the vote count is unknown. A question
    with a known count uses the Dirichlet-multinomial (when `use_counts`), else the soft cross-entropy.
    """
    per_question = []
    for q, sl in enumerate(slices):
        log_probs = F.log_softmax(logits[:, sl].float(), dim=-1)  # (B, K)
        loss_q = -(shares[:, sl] * log_probs).sum(-1)  # (B,)
        known = torch.isfinite(counts[:, q]) & reached[:, q]
        if use_counts and bool(known.any()):
            total = torch.where(known, counts[:, q], torch.zeros_like(counts[:, q]))
            dm = dirichlet_multinomial_nll(logits[:, sl].float(), (shares[:, sl] * total[:, None]).round())
            loss_q = torch.where(known, dm, loss_q)
        per_question.append(torch.where(reached[:, q], loss_q, torch.zeros_like(loss_q)))
    stacked = torch.stack(per_question, dim=1)  # (B, Q)
    loss = (stacked if weights is None else stacked * weights.to(stacked)).sum(1).mean()
    reached_f = reached.float()
    question_means = stacked.sum(0) / reached_f.sum(0).clamp(min=1)
    return loss, question_means


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
                     text_ids: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP's symmetric InfoNCE. image_embeds, text_embeds: (B, D) (any norm); logit_scale: log temperature.

    `text_ids` (B,): equal ids mark identical texts (template descriptions repeat). Their pairs are all positives
    (the target spreads evenly over them) instead of negatives the model is pushed to tell apart. Without ids, or
    with all ids distinct, this is exactly CLIP's loss.
    """
    image_embeds = F.normalize(image_embeds, dim=-1)
    text_embeds = F.normalize(text_embeds, dim=-1)
    logits_per_text = logit_scale.exp() * text_embeds @ image_embeds.t()  # (B_text, B_image)
    if text_ids is None or len(torch.unique(text_ids)) == len(text_ids):
        return image_text_contrastive_loss(logits_per_text)
    same = (text_ids[:, None] == text_ids[None, :]).float()  # (B, B), symmetric
    target = same / same.sum(1, keepdim=True)
    text_loss = F.cross_entropy(logits_per_text, target)
    image_loss = F.cross_entropy(logits_per_text.t(), target)
    return (text_loss + image_loss) / 2
