"""Batched inference for evaluation: greedy generation and candidate log-likelihoods.

Works with any llava-interface model (stock llava-hf or GZ-LLaVA): only the processor's chat
template and `__call__`, and the model's `forward(input_ids, attention_mask, pixel_values,
position_ids, cache)` and `generate` are used (`cache` is transformers 5.24's name for `past_key_values`,
which it deprecates and will drop in 5.40).

Candidate scoring (the "no parsing" way to read an answer): for each prompt and each candidate
answer text, the log-probability of the candidate's tokens given image + question, summed (the
probability of the whole answer: how decision-tree answers are read) or averaged over the tokens
(comparing texts of different lengths: retrieval over descriptions). The
prompt (image features included) is run ONCE per batch; its KV cache is then repeated for the
candidates, which are short. This is the idea behind multiple-choice scoring in
lm-evaluation-harness, with the prompt-cache reuse that makes it cheap for VLMs whose prompts
are mostly image tokens.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from processing_gzllava import assistant_turn, user_turn

logger = logging.getLogger(__name__)


class LlavaEvaluator:
    """Wraps (model, processor) for batched greedy generation and candidate scoring.

    `batch_size` is the number of images per forward pass; `candidate_rows` bounds the rows
    (prompt x candidate pairs) of one candidate pass.
    """

    def __init__(self, model, processor, batch_size: int = 8, candidate_rows: int | None = None,
                 use_prompt_cache: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        if self.tokenizer.pad_token_id is None:
            # generation and padding need one; eos is what llava-hf checkpoints use
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size = batch_size
        self.candidate_rows = candidate_rows or 8 * batch_size
        self.use_prompt_cache = use_prompt_cache
        self._continuations: dict[tuple[str, str], list[int]] = {}
        forward_params = inspect.signature(model.forward).parameters
        self._accepts_logits_to_keep = "logits_to_keep" in forward_params

    # ------------------------------------------------------------------ prompts
    def prompt(self, question: str) -> str:
        """Chat-formatted prompt text with the generation prompt, one image placeholder."""
        return self.processor.apply_chat_template(user_turn(question), add_generation_prompt=True, tokenize=False)

    def continuation_ids(self, prompt: str, question: str, candidate: str) -> list[int]:
        """Token ids of `candidate` exactly as the chat template places it after `prompt`."""
        key = (prompt, candidate)
        if key in self._continuations:
            return self._continuations[key]
        full = self.processor.apply_chat_template(
            [*user_turn(question), assistant_turn(candidate)],
            tokenize=False,
        )
        end = full.rfind(candidate)
        if full.startswith(prompt) and end >= len(prompt):
            continuation = full[len(prompt): end + len(candidate)]  # keeps the template's spacing
        else:
            continuation = " " + candidate
        prompt_ids = self.tokenizer(prompt)["input_ids"]
        joint_ids = self.tokenizer(prompt + continuation)["input_ids"]
        if joint_ids[: len(prompt_ids)] == prompt_ids and len(joint_ids) > len(prompt_ids):
            ids = joint_ids[len(prompt_ids):]
        else:  # the tokeniser merged across the boundary: tokenise the continuation alone
            ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"candidate {candidate!r} tokenises to nothing")
        self._continuations[key] = ids
        return ids

    # --------------------------------------------------------------- batching
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode(self, images: Sequence[Image.Image], prompts: Sequence[str], padding_side: str) -> dict:
        previous = self.tokenizer.padding_side
        self.tokenizer.padding_side = padding_side
        try:
            inputs = self.processor(images=list(images), text=list(prompts), return_tensors="pt", padding=True)
        finally:
            self.tokenizer.padding_side = previous
        device, dtype = self._device(), self.model.dtype
        return {k: (v.to(device, dtype) if k == "pixel_values" else v.to(device)) for k, v in inputs.items()}

    @torch.inference_mode()
    def generate(self, images: Sequence[Image.Image], questions: Sequence[str], max_new_tokens: int = 64,
                 progress=None) -> list[str]:
        """Greedy answers, one per (image, question), in batches of `batch_size` (left padding)."""
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions")
        answers: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch_images = images[start: start + self.batch_size]
            prompts = [self.prompt(q) for q in questions[start: start + self.batch_size]]
            inputs = self._encode(batch_images, prompts, padding_side="left")
            output = self.model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = output[:, inputs["input_ids"].shape[1]:]  # (B, <= max_new_tokens)
            answers.extend(t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
            if progress is not None:
                progress.update(len(batch_images))
        return answers

    @torch.inference_mode()
    def score_candidates(self, images: Sequence[Image.Image], questions: Sequence[str],
                         candidates: Sequence[str], progress=None, reduction: str = "sum") -> np.ndarray:
        """Log-likelihood of each candidate given each (image, question): the sum over its tokens
        (`reduction="sum"`, the default: log P(candidate), which a multi-token answer does not inflate:
        "Features or disk" scores about what its first token does, not a third of it), or their mean
        (`"mean"`: for comparing texts of very different lengths, as retrieval over descriptions does).

        Returns an array (n_prompts, n_candidates). Every prompt is scored against the same
        candidate list (group prompts by question before calling).
        """
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions")
        if not candidates:
            raise ValueError("no candidates to score")
        scores = np.empty((len(images), len(candidates)), dtype=np.float64)
        for start in range(0, len(images), self.batch_size):
            stop = min(start + self.batch_size, len(images))
            batch_questions = list(questions[start:stop])
            prompts = [self.prompt(q) for q in batch_questions]
            cand_ids = [
                [self.continuation_ids(p, q, c) for c in candidates] for p, q in zip(prompts, batch_questions)
            ]
            inputs = self._encode(images[start:stop], prompts, padding_side="left")
            if self.use_prompt_cache:
                scores[start:stop] = self._score_with_cache(inputs, cand_ids, reduction)
            else:
                scores[start:stop] = self._score_full(inputs, cand_ids, reduction)
            if progress is not None:
                progress.update(stop - start)
        return scores

    # ---------------------------------------------------------- scoring kernels
    @staticmethod
    def _positions(attention_mask: torch.Tensor) -> torch.Tensor:
        # positions as if unpadded, so left padding does not shift them (same rule as generate)
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    @staticmethod
    def _candidate_block(cand_ids: list[list[list[int]]], rows: list[tuple[int, int]], pad_id: int,
                         device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded candidate tokens (R, L) and their mask, one row per (prompt, candidate)."""
        seqs = [cand_ids[p][c] for p, c in rows]
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        return ids.to(device), mask.to(device)

    @staticmethod
    def _candidate_logprob(first_logits: torch.Tensor, cand_logits: torch.Tensor, ids: torch.Tensor,
                           mask: torch.Tensor, reduction: str) -> torch.Tensor:
        """first_logits (R, V) predict token 0; cand_logits (R, L, V) position j predicts token j+1 -> (R,)."""
        logits = torch.cat([first_logits[:, None], cand_logits[:, :-1]], dim=1).float()  # (R, L, V)
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, ids[..., None])[..., 0]  # (R, L)
        total = (logprobs * mask).sum(-1)
        return total / mask.sum(-1) if reduction == "mean" else total

    def _score_with_cache(self, inputs: dict, cand_ids: list[list[list[int]]], reduction: str) -> np.ndarray:
        n_prompts, n_cands = len(cand_ids), len(cand_ids[0])
        prompt_mask = inputs["attention_mask"]  # (P, T)
        extra = {"logits_to_keep": 1} if self._accepts_logits_to_keep else {}
        out = self.model(**inputs, position_ids=self._positions(prompt_mask), use_cache=True, **extra)
        cache = out.cache
        if cache is None or not getattr(cache, "is_croppable", False):
            logger.info("model cache cannot be rolled back; scoring candidates without prompt reuse")
            return self._score_full(inputs, cand_ids, reduction)
        last_logits = out.logits[:, -1]  # (P, V): predicts each candidate's first token
        prompt_lengths = prompt_mask.sum(-1)  # (P,)
        per_pass = max(1, self.candidate_rows // n_prompts)  # candidates per prompt per pass
        result = np.empty((n_prompts, n_cands))
        device = prompt_mask.device
        for c0 in range(0, n_cands, per_pass):
            c1 = min(c0 + per_pass, n_cands)
            width = c1 - c0
            rows = [(p, c) for p in range(n_prompts) for c in range(c0, c1)]
            prompt_rows = torch.arange(n_prompts, device=device).repeat_interleave(width)  # (R,)
            ids, mask = self._candidate_block(cand_ids, rows, self.tokenizer.pad_token_id, device)
            positions = prompt_lengths[prompt_rows, None] + torch.arange(ids.shape[1], device=device)[None]
            cache.reorder_cache(prompt_rows)  # (P, ...) -> (R, ...), each prompt repeated `width` times
            out = self.model(
                input_ids=ids, attention_mask=torch.cat([prompt_mask[prompt_rows], mask], dim=1),
                position_ids=positions, cache=cache, use_cache=True,
            )
            cache = out.cache
            scores = self._candidate_logprob(last_logits[prompt_rows], out.logits, ids, mask, reduction)
            result[:, c0:c1] = scores.view(n_prompts, width).cpu().numpy()
            # roll back to the prompt-only cache, one row per prompt
            cache.crop(-ids.shape[1])
            cache.batch_select_indices(torch.arange(n_prompts, device=device) * width)
        return result

    def _score_full(self, inputs: dict, cand_ids: list[list[list[int]]], reduction: str) -> np.ndarray:
        """Reference path: every (prompt, candidate) row runs the whole prompt again."""
        n_prompts, n_cands = len(cand_ids), len(cand_ids[0])
        prompt_ids, prompt_mask = inputs["input_ids"], inputs["attention_mask"]
        result = np.empty((n_prompts, n_cands))
        device = prompt_ids.device
        per_pass = max(1, self.batch_size // n_prompts)  # candidates per prompt per pass
        for c0 in range(0, n_cands, per_pass):
            c1 = min(c0 + per_pass, n_cands)
            width = c1 - c0
            rows = [(p, c) for p in range(n_prompts) for c in range(c0, c1)]
            prompt_rows = torch.arange(n_prompts, device=device).repeat_interleave(width)
            ids, mask = self._candidate_block(cand_ids, rows, self.tokenizer.pad_token_id, device)
            full_mask = torch.cat([prompt_mask[prompt_rows], mask], dim=1)
            kwargs = {k: v[prompt_rows] for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
            out = self.model(
                input_ids=torch.cat([prompt_ids[prompt_rows], ids], dim=1), attention_mask=full_mask,
                position_ids=self._positions(full_mask), use_cache=False, **kwargs,
            )
            start = prompt_ids.shape[1]
            logits = out.logits  # (R, T + L, V)
            scores = self._candidate_logprob(logits[:, start - 1], logits[:, start:], ids, mask, reduction)
            result[:, c0:c1] = scores.view(n_prompts, width).cpu().numpy()
        return result
