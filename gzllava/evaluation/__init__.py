"""Evaluation harness for GZ-LLaVA (and any llava-interface model) against what Galaxy Zoo
volunteers and experts said. `evaluate_gzllava.py` is the command line; the logic lives here:

    datasets       evaluation sets (gz-talk-instruct config/split, labelled-image folder), counted skips
    inference      batched greedy generation and candidate log-likelihoods (prompt KV cache reused)
    answers        free text -> decision-tree answer; candidate likelihoods -> probabilities
    morphology     accuracy, macro-F1, confusion, Brier, reliability; majority / random baselines
    descriptions   BLEU-4, ROUGE-L, METEOR, CIDEr through `evaluate` (modules in gzllava/metrics)
    retrieval      image<->text top-k% accuracy (PAPERCLIP) from the likelihood matrix
    hallucination  features the labels contradict, redshift / numbers, refusals
    judge          optional OpenAI-compatible LLM judge
    report         metrics.json, predictions.jsonl, report.md + PNG plots, model-index
    runner         the whole run
"""

from .datasets import EmptyEvaluationSetError, EvalSample, EvalSet, load_eval_set
from .inference import LlavaEvaluator
from .runner import EvaluationConfig, evaluate_model, run_evaluation

__all__ = [
    "EmptyEvaluationSetError", "EvalSample", "EvalSet", "EvaluationConfig", "LlavaEvaluator",
    "evaluate_model", "load_eval_set", "run_evaluation",
]
