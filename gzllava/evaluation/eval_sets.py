"""`load_eval_set`: the one entry to the evaluation sets, picking the loader of the source given.

    gz-talk-instruct config/split  -> `instruct_split.load_instruct_split`
    folder of labelled images      -> `image_folder.load_image_folder`
    real-galaxy catalogue          -> `catalogue.load_catalogue` (one side of the fixed split)
"""

from __future__ import annotations

from .catalogue import load_catalogue
from .image_folder import load_image_folder
from .instruct_split import load_instruct_split
from .samples import EvalSet


def load_eval_set(dataset: str | None = None, config: str | None = None, split: str = "test",
                  image_folder: str | None = None, max_samples: int | None = None, seed: int = 0,
                  catalogue: str | None = None, images: str | None = None, catalogue_id_column: str | None = None,
                  twins: str | None = None, questions: list[str] | None = None) -> EvalSet:
    """`questions`: a decision_tree config keeps only rows asking them before `max_samples` is drawn (the other
    sources' items are filtered by the caller: a galaxy there answers several questions)."""
    if sum(x is not None for x in (dataset, image_folder, catalogue)) != 1:
        raise ValueError("give exactly one of a gz-talk-instruct dataset (with its config), an image folder "
                         "or a catalogue")
    if catalogue is not None:
        return load_catalogue(catalogue, images, catalogue_id_column, split, max_samples, seed, twins)
    if image_folder is not None:
        return load_image_folder(image_folder, max_samples, seed)
    if not config:
        raise ValueError("a gz-talk-instruct dataset needs --config (description, conversation or decision_tree)")
    return load_instruct_split(dataset, config, split, max_samples, seed, questions)
