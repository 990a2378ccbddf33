"""BLEU-4 as an offline `evaluate` metric module, computed by sacrebleu.

Corpus-level BLEU with up to 4-grams, sacrebleu's standard "13a" tokenisation, lowercased (the
references are free-text galaxy summaries, where case carries no meaning). Scaled to [0, 1].
"""

import evaluate
import sacrebleu

from gzllava.metrics.shared import INPUTS_DESCRIPTION, reference_lists, text_metric_info

_DESCRIPTION = "Corpus BLEU-4 (sacrebleu, 13a tokenisation, lowercased), in [0, 1]."
_KWARGS_DESCRIPTION = INPUTS_DESCRIPTION + """\
Returns:
    bleu: corpus BLEU-4 in [0, 1]; precisions: the four n-gram precisions; brevity_penalty;
    length_ratio: hypothesis length / reference length.
Examples:
    >>> bleu = evaluate.load("gzllava/metrics/bleu")
    >>> bleu.compute(predictions=["a barred spiral galaxy"], references=[["a barred spiral galaxy"]])["bleu"]
    1.0
"""
_CITATION = """\
@inproceedings{post-2018-call,
  title = "A Call for Clarity in Reporting {BLEU} Scores", author = "Post, Matt",
  booktitle = "Proceedings of the Third Conference on Machine Translation", year = "2018", pages = "186--191"}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
    def _info(self):
        return text_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, "https://github.com/mjpost/sacrebleu")

    def _compute(self, predictions, references):
        references = reference_lists(references)
        # sacrebleu wants reference *streams* of equal length; repeating a reference changes
        # neither the clipped n-gram counts (max over references) nor the closest reference length.
        streams = max(len(r) for r in references)
        padded = [r + [r[-1]] * (streams - len(r)) for r in references]
        result = sacrebleu.corpus_bleu(
            list(predictions), [list(stream) for stream in zip(*padded)], lowercase=True, tokenize="13a"
        )
        return {
            "bleu": result.score / 100.0,
            "precisions": [p / 100.0 for p in result.precisions],
            "brevity_penalty": result.bp,
            "length_ratio": result.ratio,
        }
