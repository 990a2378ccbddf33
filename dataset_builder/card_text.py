"""The fixed texts of the dataset card: licence notes, the citation, the acknowledgement, config descriptions."""

from __future__ import annotations

TALK_LICENCE_NOTE = (
    "The instruction texts of a Talk build are derived from comments that Zooniverse volunteers posted "
    "on Galaxy Zoo Talk. Those comments are the volunteers' contributions under the "
    "[Zooniverse User Agreement](https://www.zooniverse.org/privacy); they are **not** released under an "
    "open licence by this builder, so the card says `license: other`. Ask the Galaxy Zoo / Zooniverse team "
    "before publishing a Talk-derived build outside your organisation. Volunteer identities (user ids, "
    "logins) are dropped at ingest; mentions of volunteers, e-mail addresses, signatures, names, phone numbers, profile "
    "URLs and links are removed by the cleaner and from generated summaries, and a last pass removes them, "
    "and the export's logins and user ids, from every file of the build. The Galaxy Zoo vote "
    "catalogues (GZ2, GZ DECaLS) are published openly with their papers (the GZ DECaLS catalogue on Zenodo "
    "under CC BY 4.0); cite them as below. Survey images keep the terms of their survey (SDSS, DESI Legacy "
    "Imaging Surveys), which allow reuse with acknowledgement."
)
SYNTHETIC_LICENCE_NOTE = (
    "A synthetic build contains only generated images, comments and vote fractions (made by "
    "`dataset_builder.synthetic` from a seed); nothing in it comes from volunteers or surveys. It is "
    "released under CC0 1.0 (the builder code itself is Apache-2.0)."
)

_JOURNAL = "Monthly Notices of the Royal Astronomical Society"
# (key, title, authors, volume, number, pages, year, doi) of the papers the card asks users to cite
_REFERENCES = (
    ("walmsley2022decals", "Galaxy Zoo DECaLS: Detailed visual morphology measurements from volunteers and deep "
     "learning for 314,000 galaxies", "Walmsley, Mike and Lintott, Chris and G{\\'e}ron, Tobias and others",
     509, 3, "3966--3988", 2022, "10.1093/mnras/stab2093"),
    ("willett2013gz2", "Galaxy Zoo 2: detailed morphological classifications for 304,122 galaxies from the Sloan "
     "Digital Sky Survey", "Willett, Kyle W. and Lintott, Chris J. and Bamford, Steven P. and others",
     435, 4, "2835--2860", 2013, "10.1093/mnras/stt1458"),
    ("hart2016gz2", "Galaxy Zoo: comparing the demographics of spiral arm number and a new method for correcting "
     "redshift bias", "Hart, Ross E. and Bamford, Steven P. and Willett, Kyle W. and others",
     461, 4, "3663--3682", 2016, "10.1093/mnras/stw1588"),
    ("lintott2008gz1", "Galaxy Zoo: morphologies derived from visual inspection of galaxies from the Sloan Digital "
     "Sky Survey", "Lintott, Chris J. and Schawinski, Kevin and Slosar, An{\\v{z}}e and others",
     389, 3, "1179--1189", 2008, "10.1111/j.1365-2966.2008.13689.x"),
)


def _bibtex(key: str, title: str, author: str, volume: int, number: int, pages: str, year: int, doi: str) -> str:
    fields = {"title": title, "author": author, "journal": _JOURNAL, "volume": volume, "number": number,
              "pages": pages, "year": year, "doi": doi}
    return f"@article{{{key},\n" + ",\n".join(f"  {name:<7} = {{{value}}}" for name, value in fields.items()) + "\n}"


CITATION = "\n\n".join(_bibtex(*reference) for reference in _REFERENCES)

ZOONIVERSE_ACKNOWLEDGEMENT = (
    "This dataset uses data generated via the [Zooniverse.org](https://www.zooniverse.org) platform, "
    "development of which is funded by generous support, including a Global Impact Award from Google, "
    "and by a grant from the Alfred P. Sloan Foundation. We thank the Galaxy Zoo volunteers."
)

CONFIG_DESCRIPTIONS = {
    "description": "one describe-this-galaxy instruction (from a pool of phrasings) answered with a summary "
    "of what volunteers wrote about the galaxy on Talk.",
    "conversation": "a multi-turn conversation about the visible features: the summary, the features "
    "volunteers pointed out, vote-grounded answers, Talk hashtags, and how sure the volunteers were.",
    "decision_tree": "one row per Galaxy Zoo DECaLS decision-tree question that the galaxy reaches when the "
    "majority answers are followed (`question`, `answer`, `answer_fraction` filled), plus one multi-turn row "
    "(`id` ending in `-walk`) that walks the whole path. Answers start with the answer label and their "
    "wording follows the vote fraction: confident (>= 0.8), likely (>= 0.5), uncertain (< 0.5, naming the "
    "runner-up).",
}
