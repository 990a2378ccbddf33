"""ROUGE-L as an offline `evaluate` metric module, computed by Google's rouge-score.

F-measure of the longest common subsequence, Porter-stemmed, averaged over predictions; with
several references a prediction is scored against its best one (rouge-score's `score_multi`).
"""

import datasets
import evaluate
from rouge_score import rouge_scorer

_DESCRIPTION = "ROUGE-L F-measure (rouge-score, Porter stemming), mean over predictions, in [0, 1]."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated texts.
    references: list of reference texts, or of lists of reference texts.
Returns:
    rougeL: mean ROUGE-L F-measure; rougeL_precision, rougeL_recall: their means.
"""
_CITATION = """\
@inproceedings{lin-2004-rouge, title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
  author = "Lin, Chin-Yew", booktitle = "Text Summarization Branches Out", year = "2004", pages = "74--81"}
"""


class RougeL(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references):
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        scores = []
        for prediction, refs in zip(predictions, references):
            refs = [refs] if isinstance(refs, str) else list(refs)
            if not refs:
                raise ValueError("every prediction needs at least one reference")
            scores.append(scorer.score_multi(refs, prediction)["rougeL"])
        n = max(len(scores), 1)
        return {
            "rougeL": sum(s.fmeasure for s in scores) / n,
            "rougeL_precision": sum(s.precision for s in scores) / n,
            "rougeL_recall": sum(s.recall for s in scores) / n,
        }
