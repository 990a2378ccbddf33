"""Comment cleaning: markup, mentions, URLs, mojibake, hashtags, noise, and tags kept from rejected comments."""

from __future__ import annotations

import pytest

from dataset_builder.clean import CommentReject, clean_comment, clean_text
from dataset_builder.grouping import group_by_subject
from dataset_builder.records import Comment, Reject


def comment(body: str, cid: str = "1", subject: str = "s1", tags=None) -> Comment:
    return Comment(comment_id=cid, subject_id=subject, body=body, source="test.json", tags=list(tags or []))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<p>Ring galaxy &amp; a <b>bar</b><br/>nice</p>", "Ring galaxy & a bar\nnice"),
        ("see [this paper](https://arxiv.org/abs/1) and www.example.com/a?b=1.", "see this paper and."),
        ("merger!\n\n![Example Alt Text](https://i.imgur.com/JgLLNnC.png)", "merger!"),
        ("lens\n![[KGU2012] 240.6+42.5](https://x.org/a.jpg)\nmore", "lens\nmore"),  # nested brackets
        ("[see [1]](https://x.org) ok", "see [1] ok"),
        ("blue dot that *might* be a __lens__", "blue dot that might be a lens"),
        ("Ã©toile spirale â€œringâ€\x9d", 'étoile spirale "ring"'),  # mojibake
        ("too   many\tspaces \n\n\n next line  ", "too many spaces\nnext line"),
        ("object #3 is odd", "object #3 is odd"),  # "#3" is a number, not a tag
        ("> quoted reply\nmy own words", "my own words"),
        ("zero\u200bwidth", "zerowidth"),
        ("see the guide :arrow_right: at 16:28:22", "see the guide at 16:28:22"),  # emoji code, not a time
        ("lucky to have you! :)", "lucky to have you! :)"),
    ],
)
def test_markup_and_whitespace(raw, clean):
    assert clean_text(raw)[0] == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Great observation @49Cupcakes! Nice", "Great observation! Nice"),
        ("Adding @Trisarahtop1228's tag here", "Adding tag here"),
        ("ask @first.last-name about it", "ask about it"),
        ("mail me at jane.doe@example.com please", "mail me at please"),
        ("Looks like a ring.\n~Stargazer_99", "Looks like a ring."),
        ("Thanks! ~~Bob", "Thanks!"),
        ("about ~5 arcsec across", "about ~5 arcsec across"),  # an approximation, not a signature
        # issue 8: the forms that used to survive cleaning
        ("ring! mail alice@localhost", "ring! mail"),
        ("ring, carol [at] example [dot] com", "ring,"),
        ("ask @ SpacedUser about it", "ask about it"),
        ("A ring.\n-- DrHubbleFan", "A ring."),
        ("A bar. Cheers, Jane Smith", "A bar."),
        ("my name is Jane Smith, a ring", "a ring"),
        ("call +44 20 7946 0958 now", "call now"),
        ("see zooniverse.org/users/alice_w too", "see too"),
        ("Star -- White Dwarf", "Star -- White Dwarf"),  # a classification, not a signature
    ],
)
def test_user_names_never_leak(raw, clean):
    assert clean_text(raw)[0] == clean


@pytest.mark.parametrize(
    ("raw", "clean", "tags"),
    [
        ("a #spiral galaxy", "a spiral galaxy", ["spiral"]),
        ("Possible #gravitational_lens", "Possible gravitational lens", ["gravitational_lens"]),
        ("Nice spiral! #spiral #Merger", "Nice spiral!", ["spiral", "merger"]),
        ("I love these #starburst #edge-on galaxies", "I love these starburst edge-on galaxies",
         ["starburst", "edge-on"]),
        ("#asteroid (three blue blobs)", "asteroid (three blue blobs)", ["asteroid"]),
        ("Merger #merger", "Merger", ["merger"]),
        ("#merger #ring. Nice one", "Nice one", ["merger", "ring"]),
        ("#bar & #lens", "", ["bar", "lens"]),
        ("see https://x.org/page#section now", "see now", []),  # a URL fragment is not a tag
    ],
)
def test_hashtags_split_out_and_inline_words_kept(raw, clean, tags):
    assert clean_text(raw) == (clean, tags)


def test_tags_merge_with_export_tags_lowercased_and_deduplicated():
    out = clean_comment(comment("Two arms #Spiral #tidal_tail", tags=["spiral", "#Merger"]))
    assert isinstance(out, Comment)
    assert out.tags == ["spiral", "merger", "tidal_tail"]
    assert out.body == "Two arms"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("first!", "noise-only"),
        ("+1", "noise-only"),
        ("LOL !", "noise-only"),
        ("Thank you.", "noise-only"),
        ("hahaha", "noise-only"),
        ("\U0001f44d\U0001f44d", "noise-only"),
        ("?!", "noise-only"),
        ("https://example.org/only-a-link.png", "empty after cleaning"),
        ("This comment has been deleted", "deleted comment"),
    ],
)
def test_noise_is_rejected_with_reason(raw, reason):
    out = clean_comment(comment(raw))
    assert isinstance(out, Reject) and out.stage == "clean" and out.id == "1"
    assert out.reason.split(":")[0] == reason


def test_meaningful_short_comments_are_kept():
    for body in ("nice spiral", "Merger?", "ring", "2 arms"):
        assert isinstance(clean_comment(comment(body)), Comment), body


def test_hashtag_only_comment_keeps_its_tags_on_the_subject():
    stream = [
        clean_comment(comment("#relativityjet #jet ?", cid="1", subject="s1", tags=["jet"])),
        clean_comment(comment("bright core", cid="2", subject="s1")),
        clean_comment(comment("#merger #disturbed", cid="3", subject="s2")),
    ]
    first = stream[0]
    assert isinstance(first, CommentReject) and first.reason == "hashtags only"
    assert first.tags == ["jet", "relativityjet"]
    rejects: list[Reject] = []
    subjects = group_by_subject(stream, rejects)
    assert subjects["s1"].tags == ["jet", "relativityjet"]
    assert [c.body for c in subjects["s1"].comments] == ["bright core"]
    assert subjects["s2"].tags == ["merger", "disturbed"] and subjects["s2"].comments == []
    assert [r.id for r in rejects] == ["1", "3"]
    assert "subject_id" in rejects[0].to_json()


def test_cleaning_is_deterministic_and_idempotent():
    raw = "Adding @bob's tag: #merging <i>and</i> a [link](http://x.y) ~bob"
    once = clean_text(raw)
    assert once == clean_text(raw)
    assert clean_text(once[0])[0] == once[0]


def test_known_identities_leave_the_body_and_the_hashtags():
    """The export's logins (privacy.identities_from_export) named without "@", and tagged, are removed."""
    from dataset_builder.privacy import Scrubber

    known = Scrubber({"starfinder_7", "1234501"})
    comment = Comment("1", "9", "Nice ring, as StarFinder_7 said (user 1234501). #ring #StarFinder_7 #bar", "t.json")
    cleaned = clean_comment(comment, known)
    assert cleaned.body == "Nice ring, as said (user)." and cleaned.tags == ["ring", "bar"]
    assert known.redactions == 1
    assert clean_comment(comment).body.count("StarFinder_7") == 1  # without `known`, only the patterns apply
    tags_only = clean_comment(Comment("2", "9", "#StarFinder_7 #merger", "t.json"), known)
    assert isinstance(tags_only, CommentReject) and tags_only.tags == ["merger"]
