"""The summary validator: refusals and unsupported facts are rejected, supported text passes."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from dataset_builder.summarise.validator import is_refusal, validate_summary

SOURCE = (
    "Beautiful #ring galaxy, two arms and a bar. Possibly a merger with the companion on the left?\n"
    "#ring #merger\nHow many spiral arms are there? 2 (most volunteers)"
)

BAD = [
    # (generated text, expected reason or reason prefix)
    ("I'm sorry, but there is not enough information to describe this galaxy.", "refusal"),
    ("There is not enough information in the comments to determine the morphology.", "refusal"),
    ("The morphology cannot be determined from the comments provided.", "refusal"),
    ("Unable to determine whether this is a merger.", "refusal"),
    ("The comments do not provide any details about the galaxy's shape.", "refusal"),
    ("Insufficient information.", "refusal"),
    ("As an AI language model, I cannot see images.", "refusal"),
    ("I don't have access to the image.", "refusal"),
    ("N/A", "refusal"),
    ("", "empty"),
    ("  ...  ", "empty"),
    ("A ring galaxy at a redshift of about 0.05.", "mentions redshift"),
    ("A ring galaxy with z = 0.1 and a bar.", "mentions redshift"),
    ("A ring galaxy about 300 million light-years away.", "mentions distance"),
    ("A barred ring galaxy at 120 Mpc.", "mentions distance"),
    ("The ring spans 30 kpc.", "mentions distance"),
    ("A distant ring galaxy with a bar.", "mentions distance"),
    ("A ring galaxy similar to NGC 1300.", "names an object"),
    ("It resembles M51, the Whirlpool.", "names an object"),
    ("A ring galaxy like UGC 12591.", "names an object"),
    ("This looks like the Sombrero galaxy.", "names an object"),
    ("The ring of Saturn seen around a star.", "names an object"),
    ("A ring galaxy with three spiral arms.", "adds a number"),
    ("A ring galaxy whose bar is 3.2 times longer than the bulge.", "adds a number"),
    ("A ring galaxy with 4 arms.", "adds a number"),
    ("About 80% of volunteers see a ring.", "adds a number"),
    ("See https://skyserver.sdss.org for the ring.", "contains a URL"),
    ("A ring galaxy; more details here [link].", "contains a placeholder"),
    ("Created by your lens of [LensName].", "contains a placeholder"),
    ("A ring galaxy with a bar [1].", "contains a placeholder"),
    ("The Ring Nebula seen from above.", "names an object"),
    ("A ring galaxy, www.legacysurvey.org/viewer shows the bar.", "contains a URL"),
]

GOOD = [
    "A ring galaxy with two spiral arms and a bar; it may be merging with the companion on the left.",
    "Volunteers see a ring and 2 arms.",  # digit supported by the votes' "2"
    "Probably a merger; the ring looks disturbed and one of the arms is faint.",  # "one" is a pronoun here
    "A barred spiral with a ring. Volunteers are not sure about the merger.",  # human doubt is not a refusal
    "The companion on the left may be interacting; the spiral arms look disturbed.",
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_outputs_are_rejected_with_their_reason(text, expected):
    reason = validate_summary(text, SOURCE)
    assert reason == expected, (text, reason)
    # Reasons are published (rejects.jsonl, report, stats): they never quote the text they reject.
    assert "'" not in reason and not any(word in reason for word in re.findall(r"\w{4,}", text)
                                         if word not in {"redshift", "distance", "refusal"}), reason


@pytest.mark.parametrize("text", GOOD)
def test_supported_outputs_pass(text):
    assert validate_summary(text, SOURCE) is None


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("A ring galaxy similar to NGC 1300.", "Looks a lot like NGC1300 to me"),  # name in the comments
        ("The arc may be a lensed source at redshift 1.9.", "lensed image of outer source at redshift 1.9"),
        ("A foreground star from the Milky Way overlaps the disk.", "that is a star from our Milky Way"),
        ("Three galaxies in a chain.", "three galaxies lined up, #chain"),
        ("A spiral with 3 arms.", "I count three arms"),  # digit and word are the same number
        ("Twelve knots along the arm.", "I see 12 bright knots"),
        ("It is 1,000 pixels wide.", "1000 pixels"),
    ],
)
def test_facts_that_the_source_states_are_allowed(text, source):
    assert validate_summary(text, source) is None


def test_unsupported_number_is_named_even_when_others_are_supported():
    assert validate_summary("Two arms and 5 knots.", "two arms") == "adds a number"


@pytest.mark.parametrize(
    "text",
    [
        "Not sure what this is, maybe a merger?",
        "Sorry, but that is most probably a foreground star.",
        "Cannot tell what it is.",
        "I can't see an arc here, but it is interesting.",
        "I'm not sure about being a lens.",
    ],
)
def test_human_hedges_are_not_refusals(text):
    assert not is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I apologize, but the comments are unclear.",
        "The information provided is insufficient information to answer.",
        "No information is provided about the galaxy.",
        "The bar is not mentioned in the comments.",
        "It is not possible to determine the type of galaxy.",
        "Unknown.",
    ],
)
def test_model_refusals_are_refusals(text):
    assert is_refusal(text)


def test_rules_are_not_over_eager_on_real_talk_comments(shared_data):
    """Raw volunteer comments, judged against their own subject's thread, are almost never flagged.

    Comments are human text about the image: a refusal rule that fired on them, or a number rule
    that flagged numbers present in the thread, would be rejecting good data.
    """
    comments = json.loads((shared_data / "talk_weird_wonderful" / "comments_pseudonymized.json").read_text())
    threads: dict[str, list[str]] = {}
    for c in comments:
        threads.setdefault(str(c["comment_focus_id"]), []).append(c["comment_body"] or "")
    refusals = [c["comment_body"] for c in comments if c["comment_body"] and is_refusal(c["comment_body"])]
    reasons = Counter()
    for c in comments:
        body = c["comment_body"] or ""
        reason = validate_summary(body, "\n".join(threads[str(c["comment_focus_id"])]))
        if reason is not None:
            reasons[reason.split(" '")[0]] += 1
    assert len(refusals) <= 0.002 * len(comments), refusals  # measured: 1 of 4,915 (see benchmarks/README.md)
    assert reasons["adds number"] == 0 and reasons["names an object"] == 0  # their source contains them
