"""A synthetic Galaxy Zoo Talk thread per subject, in the Panoptes Talk export layout.

Volunteers talk about what they see (from the galaxy's true answers), with the noise of real
Talk: hashtags, @mentions, links (Legacy Survey viewer, SIMBAD, imgur images in markdown),
HTML fragments, typos, mojibake, emoji and off-topic chatter. Comment fields are those of the
Panoptes export (board_id, board_title, board_description, discussion_id, discussion_title
"Subject N", comment_id, comment_body, comment_focus_id, comment_focus_type, comment_user_id,
comment_created_at); the tags export has one record per hashtag (id, name, section, created_at,
user_id, comment_id, taggable_id, taggable_type, project_id), as Talk itself parses them:
`#word` at the start of the body or after whitespace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import numpy as np

PROJECT_ID = 20000
NOTES_BOARD = (4510, "Notes", "General comment threads about individual subjects")
CHAT_BOARDS = (
    (4514, "Tea", "Social chat and non-astronomical nattering. "),
    (4511, "General Galaxies Chat", "Talk about galaxies in general"),
)
HASHTAG_RE = re.compile(r"(?:^|(?<=\s))#([A-Za-z0-9][\w-]*)")

# --------------------------------------------------------------------------- phrase banks
# Feature -> (phrases, hashtags). {n} arm count, {w} winding.
FEATURE_TALK = {
    "elliptical": (("Nice smooth elliptical", "round and smooth, no features at all", "smooth galaxy with a bright core",
                    "classic elliptical", "just a smooth blob of old stars"), ("elliptical", "smooth", "E0")),
    "cigar": (("cigar shaped elliptical", "very elongated smooth galaxy", "could this be an edge on disk? looks smooth"),
              ("cigar", "elliptical")),
    "lenticular": (("lenticular? smooth disk with a big bulge", "no arms I can see, probably an S0",
                    "disk galaxy but no spiral structure"), ("S0", "lenticular")),
    "spiral": (("lovely {n} armed spiral", "beautiful spiral, {w} arms", "face on spiral with {n} arms",
                "nice spiral arms", "grand design spiral?", "the arms are quite {w}"), ("spiral", "spiral_galaxy")),
    "bar": (("nice bar through the centre", "barred spiral", "there's a bar in the middle", "strong bar"),
            ("bar", "barred", "barred_spiral")),
    "edge-on": (("edge on disk", "perfectly edge-on galaxy", "seen from the side, very thin disk", "needle galaxy"),
                ("edgeon", "edge-on", "edge_on")),
    "dust-lane": (("dust lane across the middle", "you can see the dust lane", "dark dust lane along the disk"),
                  ("dustlane", "dust_lane", "dust")),
    "boxy": (("boxy bulge?", "peanut shaped bulge"), ("boxy_bulge", "boxy")),
    "irregular": (("irregular galaxy, very clumpy", "lots of star forming knots", "no clear shape, irregular"),
                  ("irregular", "clumpy", "clumps")),
    "merger": (("two galaxies merging", "looks like a merger to me", "interacting pair", "these two are colliding"),
               ("merger", "merging", "interacting", "interaction")),
    "tidal": (("tidal tail on the left", "faint tidal debris around it", "long tidal tail", "there's a faint stream"),
              ("tidal_tail", "tidal-tail", "tidaltail", "disturbed")),
    "ring": (("nice ring around the core", "ring galaxy!", "look at that ring", "outer ring"),
             ("ring", "ringed", "outer_ring")),
    "lens-or-arc": (("blue arc around the elliptical", "possible lensed arc", "is that a gravitational lens?"),
                    ("gravitational_lens", "arc", "lens")),
    "overlapping": (("star in front of it", "overlapping objects", "another galaxy overlapping in projection"),
                    ("overlap", "overlapping")),
    "bright-star": (("just a bright star", "star, not a galaxy", "bright star with spikes"), ("star", "artifact")),
    "satellite-trail": (("satellite trail across the image", "satellite streak ruins this one", "plane trail"),
                        ("satellite", "satellite_trail", "artifact")),
    "blue-arms": (("blue arms, lots of star formation", "blue knots in the arms"), ("star-forming", "blue")),
    "red-core": (("yellow core", "red bulge"), ("red_core",)),
    "field": (("lots of stars in the field", "small red galaxies in the background", "busy field"), ("field",)),
}
QUESTIONS = ("Is this a merger?", "spiral or elliptical?", "Is that a bar?", "what is the thing on the right?",
             "Edge on?", "Can anyone tell me what this is?", "ring or arms?")
OFF_TOPIC = ("first!", "beautiful!", "wow", "Nice", "So pretty", "LOL !", "Thank you.", "Good morning everyone",
             "Interesting", "Love this one", "amazing image", "this one looks so cool", "hello from Germany",
             "Galaxy Zoo went new style!!", "anyone else classifying at 3am?", "😍", ":)")
REPLIES = ("@{user} agreed!", "I agree with @{user}", "Great catch @{user}!", "@{user} I think so too",
           "@{user} thanks!")
TAG_REPLY = "Adding @{user}'s tag here as well:"
NAME_PARTS = (("star", "cosmic", "galaxy", "nebula", "astro", "zoo", "night", "orbit", "comet", "nova"),
              ("gazer", "fan", "owl", "hunter", "lover", "ite", "cat", "pilot", "walker", "dreamer"))
SITE_URLS = (
    "https://www.legacysurvey.org/viewer?ra={ra:.4f}&dec={dec:.4f}&layer=ls-dr9&zoom=15",
    "http://skyserver.sdss.org/dr16/en/tools/chart/navi.aspx?ra={ra:.5f}&dec={dec:.5f}",
    "https://simbad.u-strasbg.fr/simbad/sim-coo?Coord={ra:.5f}+{dec:.5f}&Radius=10&Radius.unit=arcsec",
    "http://ned.ipac.caltech.edu/conesearch?coordinates={ra:.5f}d%20{dec:.5f}d&radius=0.5",
)
HTML_BITS = ("<br>", "<br/>", "<b>{t}</b>", "<i>{t}</i>", "<p>{t}</p>", "{t} &amp; more", "it&#39;s {t}", "&nbsp;{t}")


# --------------------------------------------------------------------------- helpers
def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def username(rng: np.random.Generator) -> str:
    first, second = _pick(rng, NAME_PARTS[0]), _pick(rng, NAME_PARTS[1])
    style = int(rng.integers(3))
    if style == 0:
        return f"{first.capitalize()}{second.capitalize()}{int(rng.integers(1, 2000))}"
    if style == 1:
        return f"{first}_{second}"
    return f"{first}{second}{int(rng.integers(10, 99))}"


def pseudonymous_id(name: str) -> str:
    """Like the pseudonymised Talk exports: "u_" + a short hash (no real identities exist here)."""
    return "u_" + hashlib.sha256(f"synthetic:{name}".encode()).hexdigest()[:10]


def _typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(3))
    if kind == 0:  # swap
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 1:  # drop
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # double


def _add_typos(rng: np.random.Generator, text: str) -> str:
    words = text.split(" ")
    for _ in range(int(rng.integers(1, 3))):
        j = int(rng.integers(len(words)))
        if not words[j].startswith(("#", "@", "http", "<", "&", "![")):
            words[j] = _typo(rng, words[j])
    return " ".join(words)


def mojibake(text: str) -> str:
    """UTF-8 read as Windows-1252: ’ -> â€™, é -> Ã©, the classic exporter accident."""
    return text.encode("utf-8").decode("cp1252", errors="replace")


def features_of(truth: dict) -> list[str]:
    """Talkable features, most salient first, from a galaxy's truth dict."""
    odd = truth.get("odd-feature") or []
    f: list[str] = []
    kind = truth.get("kind")
    if truth.get("artifact"):
        return [truth["artifact"], "field"]
    if kind == "elliptical":
        f.append("cigar" if truth.get("how-rounded") == "cigar-shaped" else "elliptical")
        f.append("red-core")
    elif kind == "lenticular":
        f.append("lenticular")
    elif kind == "spiral":
        f += ["spiral", "blue-arms"]
    elif kind == "edge-on":
        f.append("edge-on")
        if truth.get("edge-on-bulge") == "boxy":
            f.append("boxy")
    if truth.get("has_bar"):
        f.insert(1 if f else 0, "bar")
    if truth.get("merger") in ("merger", "both"):
        f.insert(0, "merger")
    if truth.get("merger") in ("tidal-debris", "both"):
        f.insert(1, "tidal")
    for o in odd:
        if o in FEATURE_TALK:
            f.insert(0 if o in ("ring", "lens-or-arc", "irregular") else len(f), o)
    if truth.get("stars", 0) > 8:
        f.append("field")
    return f


def _feature_sentence(rng, feature: str, truth: dict) -> tuple[str, list[str]]:
    phrases, tags = FEATURE_TALK[feature]
    winding = truth.get("spiral-winding") or "medium"
    text = _pick(rng, phrases).format(n=truth.get("arm_count") or 2, w={"tight": "tightly wound"}.get(winding, winding))
    used: list[str] = []
    if rng.random() < 0.5:
        tag = _pick(rng, tags)
        used.append(tag)
        text = f"{text} #{tag}" if rng.random() < 0.7 else f"#{tag} {text}"
    return text, used


# --------------------------------------------------------------------------- comments
def _comment_body(rng, truth: dict, previous_users: list[str], ra: float, dec: float) -> str:
    roll = rng.random()
    features = features_of(truth)
    if roll < 0.18 or not features:
        body = _pick(rng, OFF_TOPIC)
    elif roll < 0.27:
        body = _pick(rng, QUESTIONS)
    else:
        # the most salient feature, sometimes a second one
        chosen = [features[0]] + ([features[int(rng.integers(1, len(features)))]] if len(features) > 1 and rng.random() < 0.5 else [])
        sentences = [_feature_sentence(rng, f, truth)[0] for f in dict.fromkeys(chosen)]
        body = " ".join(s if s[-1] in "?!." else s + "." for s in sentences[:-1]) + (" " if len(sentences) > 1 else "") + sentences[-1]
        if rng.random() < 0.15:  # a bare hashtag list, as many volunteers post
            tags = list(dict.fromkeys(_pick(rng, FEATURE_TALK[f][1]) for f in features[:3]))
            body = " ".join(f"#{t}" for t in tags) if rng.random() < 0.5 else f"{body} " + " ".join(f"#{t}" for t in tags)
    if previous_users and rng.random() < 0.25:
        reply = TAG_REPLY if body.startswith("#") else _pick(rng, REPLIES)
        body = reply.format(user=_pick(rng, previous_users)) + " " + body
    if rng.random() < 0.12:
        body += " " + _pick(rng, SITE_URLS).format(ra=ra, dec=dec)
    if rng.random() < 0.04:
        body += f"\n\n![Example Alt Text](https://i.imgur.com/{''.join(_pick(rng, 'abcdefghijkLMNOPQ0123456789') for _ in range(7))}.png)"
    if rng.random() < 0.15:
        body = _add_typos(rng, body)
    if rng.random() < 0.06:
        bit = _pick(rng, HTML_BITS)
        body = bit.format(t=body) if "{t}" in bit else body + bit
    if rng.random() < 0.06:
        extra = _pick(rng, (" \u2014 wow", " it\u2019s lovely", " time for a caf\u00e9 break", " \U0001f60d", ""))
        body = mojibake(body.replace("'", "\u2019") + extra)
    if rng.random() < 0.2:
        body = body[:1].lower() + body[1:]
    if rng.random() < 0.1:
        body += _pick(rng, (" ", "  ", "\n", "!!", "?"))
    return body


def _timestamp(rng, start: dt.datetime) -> str:
    t = start + dt.timedelta(seconds=float(rng.uniform(0, 3e5)))
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def make_thread(subject_id: int, truth: dict, ra: float, dec: float, rng: np.random.Generator,
                n_comments: int | None = None) -> tuple[list[dict], list[dict]]:
    """(comments, tags) of one subject's Talk thread: 0-4 comments (about 1.6 when any)."""
    if n_comments is None:
        n_comments = int(rng.choice(5, p=[0.25, 0.42, 0.2, 0.09, 0.04]))
    if not 0 <= n_comments <= 4:
        raise ValueError(f"a synthetic thread has 0-4 comments (their ids are subject_id*10+1..4), got {n_comments}")
    board_id, board_title, board_description = NOTES_BOARD
    start = dt.datetime(2016, 1, 1) + dt.timedelta(days=float(rng.uniform(0, 2500)))
    comments, tags, users = [], [], []
    for k in range(n_comments):
        user = username(rng) if not users or rng.random() < 0.75 else _pick(rng, users)
        body = _comment_body(rng, truth, [u for u in users if u != user], ra, dec)
        comment_id = subject_id * 10 + k + 1
        created = _timestamp(rng, start)
        start = dt.datetime.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")
        comments.append(dict(
            board_id=board_id, board_title=board_title, board_description=board_description,
            discussion_id=subject_id * 10, discussion_title=f"Subject {subject_id}",
            comment_id=comment_id, comment_body=body, comment_focus_id=subject_id, comment_focus_type="Subject",
            comment_user_id=pseudonymous_id(user), comment_created_at=created,
        ))
        for j, name in enumerate(hashtags(body)):
            tags.append(dict(
                id=comment_id * 10 + j, name=name, section=f"project-{PROJECT_ID}", created_at=created,
                user_id=pseudonymous_id(user), comment_id=comment_id, taggable_id=subject_id,
                taggable_type="Subject", project_id=PROJECT_ID,
            ))
        users.append(user)
    return comments, tags


def hashtags(body: str) -> list[str]:
    """Hashtags as Talk records them: lower-cased, at most one record per tag and comment, at most 9."""
    return list(dict.fromkeys(m.lower() for m in HASHTAG_RE.findall(body)))[:9]


def chat_comments(subject_id: int, rng: np.random.Generator) -> list[dict]:
    """1-3 comments on a general board, about no subject (comment_focus_id None), as real exports hold.

    Ids are derived from a subject's (discussion sid*10+5, comments sid*10+6..8) so they never
    collide with that subject's own thread (sid*10, comments sid*10+1..4)."""
    board_id, board_title, board_description = CHAT_BOARDS[int(rng.integers(len(CHAT_BOARDS)))]
    start = dt.datetime(2016, 1, 1) + dt.timedelta(days=float(rng.uniform(0, 2500)))
    title = _pick(rng, ("Favourite galaxies", "Hello everyone", "What are these green dots?", "New here"))
    return [dict(
        board_id=board_id, board_title=board_title, board_description=board_description,
        discussion_id=subject_id * 10 + 5, discussion_title=title, comment_id=subject_id * 10 + 6 + k,
        comment_body=_pick(rng, OFF_TOPIC + ("Does anyone know how the images are made?",
                                             "Thanks to the science team for this project!")),
        comment_focus_id=None, comment_focus_type=None, comment_user_id=pseudonymous_id(username(rng)),
        comment_created_at=_timestamp(rng, start),
    ) for k in range(int(rng.integers(1, 4)))]
