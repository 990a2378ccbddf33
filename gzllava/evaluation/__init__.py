"""Evaluation harness for GZ-LLaVA (and any llava-interface model) against what Galaxy Zoo
volunteers and experts said. `evaluate_gzllava.py` is the command line; the logic lives here:

    samples             EvalSample / EvalSet, counted skips, the checks every loader shares
    eval_sets           load_eval_set: picks the loader of the source given
    instruct_split      a gz-talk-instruct config/split (and its training split's answer counts)
    image_folder        a folder of labelled images (labels.csv)
    catalogue           a real-galaxy catalogue (votes or GZ1 classes), one side of the fixed split
    inference           batched greedy generation and candidate log-likelihoods (prompt KV cache reused)
    answers             free text -> decision-tree answer; candidate likelihoods -> probabilities
    morphology_metrics  accuracy, macro-F1, confusion, Brier, reliability; majority / random baselines
    descriptions        BLEU-4, ROUGE-L, METEOR, CIDEr through `evaluate` (modules in gzllava/metrics)
    retrieval           image<->text top-k% accuracy (PAPERCLIP) from the likelihood matrix
    hallucination       features the labels contradict, redshift / numbers, refusals
    judge               optional OpenAI-compatible LLM judge
    report              metrics.json, predictions.jsonl, report.md + PNG plots
    arguments           EvaluationConfig: the run's settings, and the command line parsed into it
    runner              the whole run
"""

from .arguments import EvaluationConfig
from .eval_sets import load_eval_set
from .inference import LlavaEvaluator
from .runner import evaluate_model, run_evaluation
from .samples import EmptyEvaluationSetError, EvalSample, EvalSet

__all__ = [
    "EmptyEvaluationSetError", "EvalSample", "EvalSet", "EvaluationConfig", "LlavaEvaluator",
    "evaluate_model", "load_eval_set", "run_evaluation",
]
