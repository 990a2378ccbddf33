"""METEOR as an offline `evaluate` metric module: pycocoevalcap's METEOR 1.5 jar.

The jar ships inside the pycocoevalcap wheel (with its English paraphrase table) and runs under
Java, which must be on PATH; nltk's METEOR would need the wordnet corpus, which is not on PyPI.
"""

import shutil

import evaluate
from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor

from gzllava.metrics.shared import INPUTS_DESCRIPTION, reference_lists, text_metric_info

_DESCRIPTION = "METEOR 1.5 (pycocoevalcap jar, English, normalised), corpus score in [0, 1]; needs Java."
_KWARGS_DESCRIPTION = INPUTS_DESCRIPTION + """\
Returns:
    meteor: corpus METEOR (the jar's aggregate over all segments); meteor_per_prediction.
"""
_CITATION = """\
@inproceedings{denkowski-lavie-2014-meteor, title = "Meteor Universal: Language Specific Translation
  Evaluation for Any Target Language", author = "Denkowski, Michael and Lavie, Alon",
  booktitle = "Proceedings of the Ninth Workshop on Statistical Machine Translation", year = "2014"}
"""


def _one_line(text: str) -> str:
    # the jar speaks a line protocol with ' ||| ' separators
    return " ".join(text.replace("|||", " ").split())


class Meteor(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "https://www.cs.cmu.edu/~alavie/METEOR/")

    def _compute(self, predictions, references):
        if shutil.which("java") is None:
            raise RuntimeError("METEOR needs Java: `java` is not on PATH (apt-get install default-jre-headless)")
        if not predictions:
            return {"meteor": 0.0, "meteor_per_prediction": []}
        gts, res = {}, {}
        for i, (prediction, refs) in enumerate(zip(predictions, reference_lists(references))):
            gts[i] = [_one_line(r) or "." for r in refs]
            res[i] = [_one_line(prediction) or "."]
        scorer = CocoMeteor()
        try:
            score, scores = scorer.compute_score(gts, res)
        finally:
            # stop the Java process now rather than whenever the wrapper is garbage-collected
            scorer.meteor_p.stdin.close()
            scorer.meteor_p.kill()
            scorer.meteor_p.wait()
        return {"meteor": float(score), "meteor_per_prediction": [float(s) for s in scores]}
