"""Throughput of Talk ingest + cleaning + grouping at the scale of the GZ Talk export.

Writes a synthetic GZ Talk CSV with the size and mix of the real one (159,704 comments on 99,591
subjects, ~22 words per subject; hashtags, @mentions, links, HTML, mojibake, noise, duplicate ids),
then times `read_talk_export` -> `clean_comment` -> `group_by_subject`. The reference in the same
run is the floor for the same file: Python's `csv.reader` reading every row and splitting each
body into words, with nothing else done.

    OMP_NUM_THREADS=1 python benchmarks/bench_talk_ingest.py            # 160k comments
    OMP_NUM_THREADS=1 python benchmarks/bench_talk_ingest.py --comments 20000
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_builder.clean import clean_comment  # noqa: E402
from dataset_builder.grouping import group_by_subject  # noqa: E402
from dataset_builder.records import Comment, Reject  # noqa: E402
from dataset_builder.talk import read_talk_export  # noqa: E402

SENTENCES = [
    "Looks like a barred spiral with two loose arms",
    "There is a faint tidal tail to the lower left",
    "Possible merger with the small companion at the top",
    "Smooth and round, probably an elliptical",
    "Edge-on disk with a clear dust lane",
    "Is that a ring around the bulge?",
    "Very blue clumpy arms, lots of star formation",
    "Could be a gravitational lens, there is an arc above the centre",
    "Overlapping galaxies rather than an interaction I think",
    "The bulge looks boxy, maybe a bar seen side on",
]
TAGS = ["spiral", "merger", "ring", "bar", "tidal_tail", "lens", "dust_lane", "disturbed", "elliptical", "clumpy"]
NOISE = ["first!", "+1", "Nice", "\U0001f60d\U0001f60d", "LOL"]


def body(rng: random.Random) -> str:
    text = " ".join(rng.sample(SENTENCES, rng.choice((1, 1, 2)))) + rng.choice((".", "!", "?", ""))
    roll = rng.random()
    if roll < 0.20:
        text += " " + " ".join(f"#{t}" for t in rng.sample(TAGS, rng.randint(1, 3)))
    elif roll < 0.25:
        text = f"@Volunteer{rng.randint(1, 9999)} {text}"
    elif roll < 0.30:
        text += (f" see https://example.org/gal/{rng.randint(1, 10**6)}.png"
                 f" and [paper](https://arxiv.org/abs/2101.{rng.randint(1000, 9999)})")
    elif roll < 0.32:
        text = f"<p>{text} &amp; more<br/>detail</p>"
    elif roll < 0.35:
        text = text.replace("'", "\u2019").encode("utf-8").decode("cp1252", errors="replace") + " cafÃ©"
    elif roll < 0.38:
        text = rng.choice(NOISE)
    elif roll < 0.40:
        text = "#" + rng.choice(TAGS) + " #" + rng.choice(TAGS)
    return text


def write_csv(path: Path, comments: int, subjects: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["locations", "subject_id", "subject_set_id", "board_id", "board_title", "board_description",
                         "discussion_title", "comment_id", "comment_body"])
        for i in range(comments):
            # Every subject gets one comment, the rest go to random subjects (~1.6 per subject).
            sid = 10_000_000 + (i if i < subjects else rng.randrange(subjects))
            cid = 5_000_000 + (i if rng.random() > 0.01 else max(0, i - 1))  # ~1% duplicate ids
            url = f"https://panoptes-uploads.zooniverse.org/production/subject_location/{sid}.jpeg"
            writer.writerow([json.dumps({"0": url}), sid, 7, 1, "Notes", "Comments on subjects", f"Subject {sid}",
                             cid, body(rng)])


def reference_pass(path: Path) -> int:
    words = 0
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            words += len(row[-1].split())
    return words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comments", type=int, default=160_000)
    parser.add_argument("--subjects", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "talk.csv"
        write_csv(path, args.comments, min(args.subjects, args.comments))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        start = time.perf_counter()
        reference_pass(path)
        reference_s = time.perf_counter() - start

        timings = {"ingest": 0.0, "clean": 0.0}
        rejects: list[Reject] = []

        def timed_stream():
            items = read_talk_export(path)
            while True:
                t0 = time.perf_counter()
                item = next(items, None)
                t1 = time.perf_counter()
                timings["ingest"] += t1 - t0
                if item is None:
                    return
                if isinstance(item, Comment):
                    item = clean_comment(item)
                    timings["clean"] += time.perf_counter() - t1
                yield item

        start = time.perf_counter()
        subjects = group_by_subject(timed_stream(), rejects)
        total_s = time.perf_counter() - start
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    kept = sum(len(s.comments) for s in subjects.values())
    print(f"input: {args.comments:,} comments on {min(args.subjects, args.comments):,} subjects (GZ Talk CSV)")
    print(f"output: {kept:,} comments kept, {len(rejects):,} rejects, {len(subjects):,} subjects")
    print(f"ingest+clean+group: {total_s:.2f} s = {args.comments / total_s:,.0f} comments/s "
          f"(ingest {timings['ingest']:.2f} s, clean {timings['clean']:.2f} s, "
          f"grouping {total_s - timings['ingest'] - timings['clean']:.2f} s)")
    print(f"reference (csv.reader + str.split, same file): {reference_s:.2f} s = "
          f"{args.comments / reference_s:,.0f} rows/s")
    print(f"ratio ours/reference: {total_s / reference_s:.1f}x")
    print(f"peak RSS: {rss_peak:,.0f} MiB (before the timed runs: {rss_before:,.0f} MiB)")


if __name__ == "__main__":
    main()
