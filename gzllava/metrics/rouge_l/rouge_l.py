"""ROUGE-L as an offline `evaluate` metric module, computed by Google's rouge-score.

F-measure of the longest common subsequence, Porter-stemmed, averaged over predictions; with
several references a prediction is scored against its best one (rouge-score's `score_multi`).
"""

import evaluate
from rouge_score import rouge_scorer

from gzllava.metrics.shared import INPUTS_DESCRIPTION, reference_lists, text_metric_info

_DESCRIPTION = "ROUGE-L F-measure (rouge-score, Porter stemming), mean over predictions, in [0, 1]."
_KWARGS_DESCRIPTION = INPUTS_DESCRIPTION + """\
Returns:
    rougeL: mean ROUGE-L F-measure; rougeL_precision, rougeL_recall: their means.
"""
_CITATION = """\
@inproceedings{lin-2004-rouge, title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
  author = "Lin, Chin-Yew", booktitle = "Text Summarization Branches Out", year = "2004", pages = "74--81"}
"""


class RougeL(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "https://github.com/google-research/google-research/tree/master/rouge")

    def _compute(self, predictions, references):
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        scores = []
        for prediction, refs in zip(predictions, reference_lists(references)):
            scores.append(scorer.score_multi(refs, prediction)["rougeL"])
        n = max(len(scores), 1)
        return {
            "rougeL": sum(s.fmeasure for s in scores) / n,
            "rougeL_precision": sum(s.precision for s in scores) / n,
            "rougeL_recall": sum(s.recall for s in scores) / n,
        }
