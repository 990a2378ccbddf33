"""CIDEr as an offline `evaluate` metric module: pycocoevalcap's CIDEr-D scorer.

The coco-caption scorer (Vedantam et al. 2015; clipped counts and a Gaussian length penalty,
i.e. CIDEr-D) on text tokenised like coco-caption's PTB tokeniser does it (lowercase, punctuation
dropped), but in Python so no Java process is needed. The TF-IDF weights come from the references
of the whole call, so score a whole evaluation set in one call: with a single image every n-gram
has zero IDF and CIDEr is 0 by construction.
"""

import re

import evaluate
from pycocoevalcap.cider.cider_scorer import CiderScorer

from gzllava.metrics.shared import INPUTS_DESCRIPTION, reference_lists, text_metric_info

_DESCRIPTION = "CIDEr-D (pycocoevalcap), corpus TF-IDF over the given references; 0 for a single image."
_KWARGS_DESCRIPTION = INPUTS_DESCRIPTION + """\
Returns:
    cider: corpus CIDEr-D (mean of the per-prediction scores); cider_per_prediction: the scores.
"""
_CITATION = """\
@inproceedings{vedantam2015cider, title={CIDEr: Consensus-based image description evaluation},
  author={Vedantam, Ramakrishna and Lawrence Zitnick, C and Parikh, Devi}, booktitle={CVPR}, year={2015}}
"""

# Words and numbers ("0.8", "don't" kept whole); coco-caption's PTBTokenizer drops punctuation too.
_TOKEN = re.compile(r"[a-z0-9]+(?:['.][a-z0-9]+)*")


def ptb_like_tokenize(text: str) -> str:
    return " ".join(_TOKEN.findall(text.lower()))


class Cider(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "https://github.com/salaniz/pycocoevalcap")

    def _compute(self, predictions, references, n: int = 4, sigma: float = 6.0):
        scorer = CiderScorer(n=n, sigma=sigma)
        for prediction, refs in zip(predictions, reference_lists(references)):
            scorer += (ptb_like_tokenize(prediction), [ptb_like_tokenize(r) for r in refs])
        if not predictions:
            return {"cider": 0.0, "cider_per_prediction": []}
        score, scores = scorer.compute_score()
        return {"cider": float(score), "cider_per_prediction": [float(s) for s in scores]}
