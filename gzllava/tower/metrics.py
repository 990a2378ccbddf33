"""Tower metrics on labelled galaxies: head accuracy / balanced accuracy per question, zero-shot classification
with answer prompts, and image-text retrieval (PAPERCLIP's top-k%, via gzllava.evaluation.retrieval).

The label of a galaxy for a question is the answer with the largest vote share (ties: the first answer); the
confident subset has that share >= 0.8. Baselines: the majority prior (the training side's most common label,
always predicted) and chance (a uniform random answer: accuracy and balanced accuracy 1/K).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dataset_builder.decision_tree import QUESTIONS
from gzllava.evaluation.morphology_metrics import ranking_auc
from gzllava.evaluation.retrieval import retrieval_metrics
from modeling_gzllava import dihedral_views

from .augment import centre_crop
from .questions import HeadSchema

CONFIDENT = 0.8

# Answer prompts for zero-shot classification, in the wording gz-talk-instruct's template descriptions use for
# each answer (dataset_builder.summarise.template); a negated prompt ("not edge-on") is avoided: sentence encoders
# embed it next to the affirmative. Other answers: "<question text> <answer label>".
PROMPTS = {
    ("smooth-or-featured", "smooth"): "a smooth, rounded galaxy",
    ("smooth-or-featured", "featured-or-disk"): "a disk galaxy with visible features",
    ("smooth-or-featured", "artifact"): "a star or an image artifact",
    ("disk-edge-on", "yes"): "an edge-on disk galaxy",
    ("disk-edge-on", "no"): "a disk galaxy with visible features",
    ("how-rounded", "completely"): "a smooth galaxy with a completely round shape",
    ("how-rounded", "in-between"): "a smooth galaxy with a slightly elongated shape",
    ("how-rounded", "cigar-shaped"): "a smooth galaxy with a cigar-shaped outline",
    ("has-spiral-arms", "yes"): "a galaxy with spiral arms",
    ("has-spiral-arms", "no"): "a galaxy without spiral arms",
    ("bar", "yes"): "a barred galaxy",
    ("bar", "no"): "a galaxy without a bar",
}


def prompt(question: str, answer: str) -> str:
    if (question, answer) in PROMPTS:
        return PROMPTS[(question, answer)]
    q = QUESTIONS.get(question)
    label = q.answer(answer).label if q is not None else answer
    return f"{q.text if q is not None else question} {label}"


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean recall over the classes present in `labels`."""
    classes = np.unique(labels)
    return float(np.mean([np.mean(predictions[labels == c] == c) for c in classes])) if len(classes) else float("nan")


def classification_table(scores: np.ndarray, shares: np.ndarray, reached: np.ndarray, schema: HeadSchema,
                         prior_labels: dict[str, int] | None = None, probabilities: bool = False) -> dict:
    """Per question: n, accuracy, balanced accuracy and ROC AUC (one answer against the rest by its score, macro over
    the answers present; None with one answer present) on all reached galaxies and on the confident subset, beside
    the majority prior and chance. scores, shares: (N, A) (any monotone score per answer); reached: (N, Q).

    `probabilities`: the scores are predicted vote shares (each question's slice sums to 1, HeadSchema.probabilities);
    each subset then also has `cross_entropy`, the mean of -sum(shares * log p) over its galaxies: the head's loss
    without its vote counts, threshold-free and using every galaxy's whole vote split (the measure to compare towers
    by on a validation side, where a few confident galaxies move balanced accuracy by ~0.01)."""
    out = {}
    for q_index, (question, sl) in enumerate(zip(schema.questions, schema.slices())):
        mask = reached[:, q_index]
        if not mask.any():
            continue
        q_shares, q_scores = shares[mask, sl], scores[mask, sl]
        labels, predictions = q_shares.argmax(1), q_scores.argmax(1)
        confident = q_shares.max(1) >= CONFIDENT
        k = len(question.answers)
        majority = (prior_labels or {}).get(question.key, int(np.bincount(labels, minlength=k).argmax()))
        row = {"answers": list(question.answers), "majority_answer": question.answers[majority], "chance": 1.0 / k}
        for name, subset in (("all", np.ones_like(confident)), ("confident", confident)):
            if not subset.any():
                continue
            lab, pred = labels[subset], predictions[subset]
            row[name] = {"n": int(subset.sum()), "accuracy": float(np.mean(pred == lab)),
                         "balanced_accuracy": balanced_accuracy(lab, pred),
                         "auc": ranking_auc(lab.tolist(), q_scores[subset], list(range(k))),
                         "majority_accuracy": float(np.mean(lab == majority)),
                         "majority_balanced_accuracy": balanced_accuracy(lab, np.full_like(lab, majority)),
                         "class_counts": np.bincount(lab, minlength=k).tolist()}
            if probabilities:
                p = np.clip(q_scores[subset], 1e-12, 1.0)
                row[name]["cross_entropy"] = float(np.mean(-(q_shares[subset] * np.log(p)).sum(1)))
        out[question.key] = row
    return out


def majority_labels(shares: np.ndarray, reached: np.ndarray, schema: HeadSchema) -> dict[str, int]:
    """The most common label per question on a (training) side: the majority prior."""
    out = {}
    for q_index, (question, sl) in enumerate(zip(schema.questions, schema.slices())):
        mask = reached[:, q_index]
        if mask.any():
            out[question.key] = int(np.bincount(shares[mask, sl].argmax(1), minlength=len(question.answers)).argmax())
    return out


def pixel_batches(images: torch.Tensor, crop: int, mean, std, batch_size: int):
    """Stored uint8 images (N, 3, R, R) -> pixel_values batches (B, 3, crop, crop): the centre crop and the mean/std
    normalisation that a saved tower's image processor applies (evaluation and teacher predictions alike)."""
    mean, std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    for start in range(0, len(images), batch_size):
        views = centre_crop(images[start : start + batch_size], crop)
        yield (views.float() / 255 - mean) / std


@torch.no_grad()
def image_features(model, pixel_batches, views: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled (N, H), image embeddings (N, D)) over an iterable of pixel_values batches. `views=8`: each image's
    pooled output is the mean over its 8 dihedral views (as GZ-LLaVA's vision_feature_views=8 reads the tower)."""
    pooled, embeds = [], []
    for pixel_values in pixel_batches:
        if views == 8:
            p = model.vision_model(pixel_values=dihedral_views(pixel_values)).pooler_output  # (8B, H), view-major
            p = p.view(8, len(pixel_values), -1).mean(0)  # (B, H)
        else:
            p = model.vision_model(pixel_values=pixel_values).pooler_output  # (B, H)
        pooled.append(p)
        embeds.append(model.visual_projection(p))
    return torch.cat(pooled), torch.cat(embeds)


@torch.no_grad()
def text_features(model, tokenizer, texts: list[str], batch_size: int = 128, max_length: int = 77) -> torch.Tensor:
    """(len(texts), D) text embeddings."""
    out = []
    limit = min(max_length, model.config.text_config.max_position_embeddings)
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=limit,
                           return_tensors="pt")
        out.append(model.get_text_features(input_ids=tokens["input_ids"],
                                           attention_mask=tokens["attention_mask"]).pooler_output)
    return torch.cat(out)


def zero_shot_scores(model, tokenizer, image_embeds: torch.Tensor, schema: HeadSchema) -> np.ndarray:
    """(N, A) cosine similarity of each image with each answer's prompt (argmax per question = zero-shot answer)."""
    prompts = [prompt(q.key, a) for q in schema.questions for a in q.answers]
    text = F.normalize(text_features(model, tokenizer, prompts), dim=-1)
    return (F.normalize(image_embeds, dim=-1) @ text.t()).numpy()


def retrieval(image_embeds: torch.Tensor, text_embeds: torch.Tensor, texts: list[str]) -> dict:
    """PAPERCLIP top-k% retrieval on cosine similarities. Identical texts score identically and `true_ranks`
    counts ties against the true pair, so a galaxy whose text is shared by m others ranks at best m+1: the
    strict reading. `distinct_texts` says how many texts differ."""
    scores = (F.normalize(image_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).t()).numpy()
    result = retrieval_metrics(scores)
    result["distinct_texts"] = len(set(texts))
    result["image_to_distinct_text"] = distinct_text_retrieval(scores, texts)
    return result


def distinct_text_retrieval(scores: np.ndarray, texts: list[str], percents=(1, 5, 10)) -> dict:
    """Image -> text top-k% when identical texts are one candidate (the lenient reading): the rank of a galaxy's
    own text among the distinct texts, against k% of the distinct texts; random = top_count(k, m) / m."""
    from gzllava.evaluation.retrieval import top_count

    distinct = list(dict.fromkeys(texts))
    column = {t: i for i, t in enumerate(distinct)}
    first = [texts.index(t) for t in distinct]  # identical texts have identical embeddings: one column each
    matrix = scores[:, first]  # (N, m)
    own = matrix[np.arange(len(texts)), [column[t] for t in texts]][:, None]
    ranks = (matrix > own).sum(1)  # 0-based; the own text is never counted against itself
    m = len(distinct)
    return {"candidates": m, **{f"top_{p}%": float(np.mean(ranks < top_count(p, m))) for p in percents},
            "random": {f"top_{p}%": top_count(p, m) / m for p in percents}}
