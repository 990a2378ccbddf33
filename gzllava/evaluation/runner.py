"""The evaluation run: load the set and the model(s), run every task, compare with baselines, report.

`run_evaluation(EvaluationConfig(...))` is what `evaluate_gzllava.py` calls; `evaluate_model`
evaluates one already-loaded (model, processor) and is what tests and benchmarks use.
Tasks, each skipped (with the reason in metrics.json) when the set cannot support it:
  morphology     every (image, decision-tree question) item: answer by free text (parsed) and by
                 candidate likelihood; vs vote majority / expert label; calibration vs vote fractions
  descriptions   generated descriptions vs reference summaries (BLEU-4, ROUGE-L, METEOR, CIDEr)
  retrieval      image<->text top-k% accuracy from the likelihood matrix of images x references
  hallucination  contradictions with the labels, redshift/number mentions, refusals
  judge          optional LLM judge (needs --judge-url)
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dataset_builder.decision_tree import QUESTIONS
from dataset_builder.redaction import strip_url_credentials

from . import morphology_metrics as morph
from .answers import candidate_probabilities, candidate_texts, parse_answer, question_prompt
from .arguments import EvaluationConfig
from .catalogue import catalogue_answer_counts
from .descriptions import description_metrics
from .eval_sets import load_eval_set
from .hallucination import hallucination_metrics
from .inference import LlavaEvaluator
from .instruct_split import load_answer_counts
from .judge import OpenAIJudge, judge_metrics
from .retrieval import retrieval_metrics
from .samples import DESCRIPTION_PROMPT, EvalSet, LazyImages

logger = logging.getLogger(__name__)

def recorded_settings(config: EvaluationConfig) -> dict:
    """The run's settings as metrics.json records them: the judge URL without its user-info."""
    judge_url = strip_url_credentials(config.judge_url) if config.judge_url else config.judge_url
    return {**asdict(config), "judge_url": judge_url}


# ------------------------------------------------------------------------------- loading
def load_model(name_or_path: str, device: str | None = None, dtype: str | None = None):
    """(model, processor) of a folder or Hub id, GZ-LLaVA or any llava-interface checkpoint."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import gzllava  # noqa: F401  registers GZ-LLaVA with the Auto classes for local folders

    kwargs = {"trust_remote_code": True}
    if dtype:
        kwargs["dtype"] = getattr(torch, dtype)
    model = AutoModelForImageTextToText.from_pretrained(name_or_path, **kwargs)
    processor = AutoProcessor.from_pretrained(name_or_path, trust_remote_code=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), processor


# ------------------------------------------------------------------------------ the tasks
def _progress(total: int, desc: str):
    return tqdm(total=total, desc=desc, unit="img", leave=False)


def _item_prompt(item: morph.MorphologyItem, options_in_prompt: bool) -> str:
    if item.prompt and not options_in_prompt:
        return item.prompt
    return question_prompt(item.question) if options_in_prompt else QUESTIONS[item.question].text


def run_morphology(evaluator: LlavaEvaluator, eval_set: EvalSet, items: list[morph.MorphologyItem],
                   config: EvaluationConfig) -> tuple[dict, dict]:
    """(metrics per method, raw answers) of the morphology task."""
    images = LazyImages(eval_set.samples, [i.sample_index for i in items])
    prompts = [_item_prompt(i, config.options_in_prompt) for i in items]
    timings = {}

    start = time.perf_counter()
    with _progress(len(items), "morphology: generate") as bar:
        texts = evaluator.generate(images, prompts, max_new_tokens=config.answer_max_new_tokens, progress=bar)
    timings["generation_s"] = time.perf_counter() - start
    parsed = [parse_answer(i.question, t) for i, t in zip(items, texts)]

    start = time.perf_counter()
    probabilities: list[np.ndarray | None] = [None] * len(items)
    groups = morph.group_by_question(items)
    with _progress(len(items), "morphology: likelihood") as bar:
        for question, indices in groups.items():
            scores = evaluator.score_candidates(LazyImages(eval_set.samples, [items[i].sample_index for i in indices]),
                                                [prompts[i] for i in indices],
                                                candidate_texts(question), progress=bar)  # log P(label)
            for i, p in zip(indices, candidate_probabilities(scores)):
                probabilities[i] = p
    timings["likelihood_s"] = time.perf_counter() - start

    methods = {"generation": {}, "likelihood": {}}
    for question, indices in groups.items():
        group = [items[i] for i in indices]
        probs = np.stack([probabilities[i] for i in indices])
        methods["generation"][question] = morph.question_metrics(question, group, [parsed[i] for i in indices])
        methods["likelihood"][question] = morph.question_metrics(
            question, group, morph.predictions_from_probabilities(question, probs), probs)
    result = {
        method: {"per_question": per_q, "overall": morph.summarise(per_q)} for method, per_q in methods.items()
    }
    result["generation"]["parse_rate"] = float(np.mean([p is not None for p in parsed])) if parsed else float("nan")
    pooled = np.concatenate([probabilities[i] for i in range(len(items))])
    observed = np.concatenate([morph.target_distribution(item, len(QUESTIONS[item.question].answers)) for item in items])
    result["likelihood"]["reliability"] = morph.reliability(pooled, observed)
    result["timing"] = {**timings, "items": len(items),
                        "generation_items_per_s": len(items) / timings["generation_s"],
                        "likelihood_items_per_s": len(items) / timings["likelihood_s"]}
    raw = {"items": [{"sample": eval_set.samples[i.sample_index].id, "question": i.question, "target": i.answer,
                      "prompt": p, "text": t, "parsed": a, "probabilities": pr.tolist()}
                     for i, p, t, a, pr in zip(items, prompts, texts, parsed, probabilities)]}
    return result, raw


def description_indices(eval_set: EvalSet) -> list[int]:
    """Samples that are not single decision-tree questions: each gets a generated description."""
    return [i for i, s in enumerate(eval_set.samples) if s.question is None]


def _subset_indices(indices: list[int], limit: int, seed: int) -> list[int]:
    if len(indices) <= limit:
        return indices
    return sorted(random.Random(seed).sample(indices, limit))


def evaluate_model(model, processor, eval_set: EvalSet, config: EvaluationConfig,
                   items: list[morph.MorphologyItem] | None = None) -> tuple[dict, dict]:
    """(metrics, raw outputs) of one model on one set, for the configured tasks."""
    evaluator = LlavaEvaluator(model, processor, batch_size=config.batch_size)
    results: dict = {"not_run": {}}
    raw: dict = {}
    items = morph.morphology_items(eval_set.samples) if items is None else items

    if "morphology" in config.tasks:
        if items:
            results["morphology"], raw["morphology"] = run_morphology(evaluator, eval_set, items, config)
        else:
            results["not_run"]["morphology"] = "no decision-tree labels or votes in this set"

    wanted = {"descriptions", "hallucination", "judge"} & set(config.tasks)
    indices = description_indices(eval_set)
    with_reference = [i for i in indices if eval_set.samples[i].reference]
    texts: list[str] = []
    if wanted and indices:
        start = time.perf_counter()
        prompts = [eval_set.samples[i].prompt or DESCRIPTION_PROMPT for i in indices]
        with _progress(len(indices), "descriptions: generate") as bar:
            texts = evaluator.generate(LazyImages(eval_set.samples, indices), prompts,
                                       max_new_tokens=config.description_max_new_tokens, progress=bar)
        elapsed = time.perf_counter() - start
        results["description_timing"] = {"generation_s": elapsed, "images": len(indices),
                                         "images_per_s": len(indices) / elapsed}
        raw["descriptions"] = [{"sample": eval_set.samples[i].id, "prompt": p, "text": t,
                                "reference": eval_set.samples[i].reference}
                               for i, p, t in zip(indices, prompts, texts)]
    generated = dict(zip(indices, texts))

    for task in ("descriptions", "judge"):
        if task not in config.tasks:
            continue
        if not with_reference:
            results["not_run"][task] = "no reference descriptions in this set"
            continue
        predictions = [generated[i] for i in with_reference]
        references = [eval_set.samples[i].reference for i in with_reference]
        if task == "descriptions":
            results["descriptions"] = description_metrics(predictions, references, config.description_metrics)
        elif config.judge_url:
            judge = OpenAIJudge(config.judge_url, model=config.judge_model, api_key_env=config.judge_api_key_env)
            with _progress(len(predictions), "judge") as bar:
                results["judge"] = judge_metrics(judge, predictions, references, progress=bar)
        else:
            results["not_run"]["judge"] = "no --judge-url given"

    if "hallucination" in config.tasks:
        if indices:
            results["hallucination"] = hallucination_metrics(
                texts, [eval_set.samples[i] for i in indices], config.hallucination_threshold)
        else:
            results["not_run"]["hallucination"] = "no description samples (only decision-tree rows)"

    if "retrieval" in config.tasks:
        if len(with_reference) >= 2:
            chosen = _subset_indices(with_reference, config.retrieval_max, config.seed)
            start = time.perf_counter()
            with _progress(len(chosen), "retrieval: likelihood matrix") as bar:
                scores = evaluator.score_candidates(
                    LazyImages(eval_set.samples, chosen), [DESCRIPTION_PROMPT] * len(chosen),
                    [eval_set.samples[i].reference for i in chosen], progress=bar,
                    reduction="mean")  # descriptions differ in length: compare per-token likelihoods
            elapsed = time.perf_counter() - start
            results["retrieval"] = retrieval_metrics(scores)
            results["retrieval"]["timing"] = {"seconds": elapsed, "pairs": len(chosen) ** 2,
                                              "images_per_s": len(chosen) / elapsed}
        else:
            results["not_run"]["retrieval"] = "needs at least 2 samples with reference descriptions"
    return results, raw


# ------------------------------------------------------------------------------ baselines
def baselines(eval_set: EvalSet, items: list[morph.MorphologyItem], counts: Counter | None,
              config: EvaluationConfig) -> dict:
    """Majority class and random guessing for morphology; shuffled references for descriptions
    (a real description of another galaxy: the chance level of the text metrics); the
    references' own hallucination flags."""
    result: dict = {}
    if items:
        groups = morph.group_by_question(items)
        for name in ("majority", "random"):
            per_q = {}
            for question, indices in groups.items():
                group = [items[i] for i in indices]
                per_q[question] = (morph.majority_baseline(question, group, counts) if name == "majority"
                                   else morph.random_baseline(question, group, seed=config.seed))
            result[name] = {"per_question": per_q, "overall": morph.summarise(per_q)}
    with_reference = [i for i in description_indices(eval_set) if eval_set.samples[i].reference]
    if len(with_reference) >= 2:
        references = [eval_set.samples[i].reference for i in with_reference]
        if "descriptions" in config.tasks:
            rng = random.Random(config.seed)
            order = list(range(len(references)))
            while any(i == j for i, j in enumerate(order)):  # a derangement: never the galaxy's own text
                rng.shuffle(order)
            shuffled = [references[j] for j in order]
            result["shuffled_references"] = description_metrics(shuffled, references, config.description_metrics)
        if "hallucination" in config.tasks:
            result["reference_hallucination"] = hallucination_metrics(
                references, [eval_set.samples[i] for i in with_reference], config.hallucination_threshold)
    return result


# ------------------------------------------------------------------------------------- run
def run_evaluation(config: EvaluationConfig) -> dict:
    """Everything `evaluate_gzllava.py` does: returns metrics.json's content, writes the report."""
    from gzllava.model_card import update_model_card

    from .report import write_report

    eval_set = load_eval_set(config.dataset_name, config.dataset_config, config.split, config.image_folder,
                             config.max_samples, config.seed, catalogue=config.catalogue, images=config.images,
                             catalogue_id_column=config.catalogue_id_column, twins=config.twins,
                             questions=config.questions)
    logger.info("evaluation set %s: %d samples, %d skipped", eval_set.name, len(eval_set.samples), len(eval_set.skips))
    items = morph.morphology_items(eval_set.samples)
    if config.questions:
        asked = {item.question for item in items}
        items = [item for item in items if item.question in config.questions]
        if not items:
            raise ValueError(f"--questions {','.join(config.questions)}: no sample of {eval_set.name} reaches them "
                             f"(it has {', '.join(sorted(asked)) or 'no morphology questions'})")
    counts = None
    if config.dataset_name and config.dataset_config and items:
        counts = load_answer_counts(config.dataset_name, config.dataset_config, config.train_split)
    elif config.catalogue and items and config.split != config.train_split:
        # the majority prior of the catalogue's own training side (never of the galaxies being scored)
        counts = catalogue_answer_counts(config.catalogue, config.catalogue_id_column, config.train_split, config.twins)

    models, raw = {}, {}
    for role, name in (("model", config.model_name_or_path), ("base", config.baseline_model)):
        if name is None:
            continue
        model, processor = load_model(name, config.device, config.dtype)
        logger.info("evaluating %s (%s)", role, name)
        models[role], raw[role] = evaluate_model(model, processor, eval_set, config, items)
        models[role]["name"] = name
        del model

    metrics = {
        "model": config.model_name_or_path,
        "baseline_model": config.baseline_model,
        "eval_set": {"name": eval_set.name, "kind": eval_set.kind, "samples": len(eval_set.samples),
                     "rows_read": eval_set.rows_read, "morphology_items": len(items),
                     "skips": eval_set.skip_summary()},
        "settings": recorded_settings(config),
        "models": models,
        "baselines": baselines(eval_set, items, counts, config),
    }
    out = Path(config.output_dir)
    write_report(metrics, raw, out)
    if config.update_model_card:
        update_model_card(config.model_name_or_path, metrics)
    return metrics
