"""What the four metric modules share: their inputs (each prediction with one or several references) and the
`evaluate.MetricInfo` that declares them.

The modules import it from the installed package (`from gzllava.metrics.shared import ...`): `evaluate.load` copies a
metric script alone into its module cache, so a sibling file is out of reach, while an installed package is a
library import. Functions only: `evaluate` takes the first `evaluate.Metric` subclass in a script's namespace as the
metric, so an imported base class would be taken for it.
"""

import datasets
import evaluate

# The inputs part of every module's `_KWARGS_DESCRIPTION` (its "Returns:" part follows).
INPUTS_DESCRIPTION = """
Args:
    predictions: list of generated texts.
    references: list of reference texts, or of lists of reference texts (any number per prediction).
"""

# A prediction with a list of references, or with a single reference string.
TEXT_FEATURES = [
    datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}),
    datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
]


def text_metric_info(description: str, citation: str, inputs_description: str, reference_url: str) -> evaluate.MetricInfo:
    """The `MetricInfo` of a metric of generated texts against reference texts (`TEXT_FEATURES`)."""
    return evaluate.MetricInfo(description=description, citation=citation, inputs_description=inputs_description,
                               features=TEXT_FEATURES, reference_urls=[reference_url])


def reference_lists(references) -> list[list[str]]:
    """Each prediction's references as a list (a single string becomes a list of one); ValueError when one has none."""
    lists = [[r] if isinstance(r, str) else list(r) for r in references]
    if any(not refs for refs in lists):
        raise ValueError("every prediction needs at least one reference")
    return lists
