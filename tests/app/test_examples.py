"""The example galaxies: synthetic (never the shared real data), one of each kind, the same every start."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dataset_builder.synthetic import generate_galaxy
from gzllava.app.examples import KINDS, render_examples


def test_one_synthetic_galaxy_of_each_kind(tmp_path):
    examples = render_examples(tmp_path / "a")
    assert {caption for _, caption, _ in examples} == {"spiral", "smooth", "edge-on disk", "barred"}
    for path, caption, question in examples:
        index = int(path.stem.rsplit("_", 1)[1])
        galaxy = generate_galaxy(index, seed=0, size=128)
        predicate = next(k[0] for k in KINDS if k[1] == caption)
        assert predicate(galaxy.truth)  # the galaxy is of the kind its caption says
        assert question == next(k[2] for k in KINDS if k[1] == caption)
        assert np.array_equal(np.asarray(Image.open(path)), galaxy.image)  # lossless PNG of the generator's image
    again = render_examples(tmp_path / "b")
    assert [p.name for p, _, _ in again] == [p.name for p, _, _ in examples]
