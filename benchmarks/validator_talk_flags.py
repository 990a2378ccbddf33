"""How often would the summary validator flag real, human-written Talk comments?

The validator must catch model refusals and invented facts without rejecting ordinary volunteer
language ("not sure", "sorry, but that is a star", "two arms"). Raw comments are a good negative
set: none of them is a model refusal, and every number or name in a comment is supported by its
own thread. Printed for the validator's rules AND for a naive keyword rule (the reference), with
the ratio.

    python benchmarks/validator_talk_flags.py [--data ../shared/data] [--show 20]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from dataset_builder.summarise.validator import is_refusal, validate_summary

# What a first attempt at refusal detection looks like: any apology or inability keyword.
NAIVE_REFUSAL = re.compile(r"\b(?:sorry|cannot|can't|unable|not sure|don't know|no idea|not enough|insufficient)\b", re.I)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    parser.add_argument("--show", type=int, default=10, help="print this many flagged comments per rule")
    args = parser.parse_args()
    path = args.data / "talk_weird_wonderful" / "comments_pseudonymized.json"
    if not path.exists():
        raise SystemExit(f"{path} not found (the real Talk sample lives in ../shared/data)")
    comments = [c for c in json.loads(path.read_text()) if (c.get("comment_body") or "").strip()]
    threads: dict[str, list[str]] = {}
    for c in comments:
        threads.setdefault(str(c["comment_focus_id"]), []).append(c["comment_body"])

    ours = [c["comment_body"] for c in comments if is_refusal(c["comment_body"])]
    naive = [c["comment_body"] for c in comments if NAIVE_REFUSAL.search(c["comment_body"])]
    own_thread, no_source = Counter(), Counter()
    examples: dict[str, list[str]] = {}
    for c in comments:
        body = c["comment_body"]
        if reason := validate_summary(body, "\n".join(threads[str(c["comment_focus_id"])])):
            own_thread[reason.split(" '")[0]] += 1
        if reason := validate_summary(body, ""):
            rule = reason.split(" '")[0]
            no_source[rule] += 1
            examples.setdefault(rule, []).append(body)

    n = len(comments)
    print(f"{n} non-empty raw comments on {len(threads)} subjects ({path})")
    print(f"refusal rule flags:        {len(ours):5d} ({100 * len(ours) / n:.2f}%)")
    print(f"naive keyword rule flags:  {len(naive):5d} ({100 * len(naive) / n:.2f}%)  [reference]")
    print(f"ratio ours / naive:        {len(ours) / max(1, len(naive)):.3f}")
    for text in ours[: args.show]:
        print(f"  refusal: {text[:160]!r}")
    print("validate_summary(comment, its own thread), flags by rule:", dict(own_thread.most_common()) or "none")
    print("validate_summary(comment, empty source), flags by rule (what a model adding these would lose):")
    for rule, count in no_source.most_common():
        print(f"  {rule:18s} {count:5d} ({100 * count / n:.1f}%)  e.g. {examples[rule][0][:100]!r}")


if __name__ == "__main__":
    main()
