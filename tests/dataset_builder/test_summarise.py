"""Summariser interface: prompt, parsing, validation into Rejects, the on-disk cache, the template backend."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest

from dataset_builder.records import Comment, Reject, Subject, Summary
from dataset_builder.summarise import (
    SUMMARY_JSON_SCHEMA,
    GenerationRequest,
    Summariser,
    SummaryCache,
    build_prompt,
    cache_key,
    get_summariser,
    parse_summary_output,
    summary_source_text,
)
from dataset_builder.summarise.template import TemplateSummariser, template_summary

SPIRAL_VOTES = {
    "smooth-or-featured_smooth_fraction": 0.05,
    "smooth-or-featured_featured-or-disk_fraction": 0.92,
    "smooth-or-featured_artifact_fraction": 0.03,
    "disk-edge-on_yes_fraction": 0.04,
    "disk-edge-on_no_fraction": 0.96,
    "bar_yes_fraction": 0.85,
    "bar_no_fraction": 0.15,
    "has-spiral-arms_yes_fraction": 0.9,
    "has-spiral-arms_no_fraction": 0.1,
    "spiral-winding_tight_fraction": 0.2,
    "spiral-winding_medium_fraction": 0.25,
    "spiral-winding_loose_fraction": 0.55,
    "spiral-arm-count_2_fraction": 0.82,
    "spiral-arm-count_3_fraction": 0.18,
    "bulge-size_obvious_fraction": 0.9,
    "bulge-size_no_fraction": 0.1,
    "merging_neither_fraction": 0.9,
    "merging_merger_fraction": 0.1,
    "odd-feature_none_fraction": 0.7,
    "odd-feature_ring_fraction": 0.3,
}
SPLIT_VOTES = {
    "smooth-or-featured_smooth_fraction": 0.42,
    "smooth-or-featured_featured-or-disk_fraction": 0.38,
    "smooth-or-featured_artifact_fraction": 0.2,
    "how-rounded_completely_fraction": 0.4,
    "how-rounded_in-between_fraction": 0.35,
    "how-rounded_cigar-shaped_fraction": 0.25,
}


def subject(subject_id="100", comments=(), tags=(), votes=None) -> Subject:
    return Subject(
        subject_id=subject_id,
        comments=[Comment(f"c{subject_id}-{i}", subject_id, body, "test.json") for i, body in enumerate(comments)],
        tags=list(tags),
        votes=dict(votes or {}),
        source="talk:test.json",
    )


class ScriptedSummariser(Summariser):
    """A backend whose outputs the test chooses; counts calls; can fail after a number of calls."""

    backend = "scripted"

    def __init__(self, cache_dir=None, *, outputs=None, fail_after=None, batch_size=1):
        super().__init__(cache_dir, batch_size=batch_size, show_progress=False)
        self.model = "scripted-1"
        self.outputs = outputs or {}
        self.fail_after = fail_after
        self.calls = 0
        self.prompts: list[str] = []

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.prompts += [r.prompt for r in requests]
        good = {"description": "A galaxy with a ring.", "visible_features": ["ring"], "uncertainty": "low"}
        return [self.outputs.get(r.subject.subject_id, json.dumps(good)) for r in requests]


# ------------------------------------------------------------------------------------- prompt
def test_prompt_states_the_rules_and_carries_tags_votes_and_comments():
    prompt = build_prompt(subject(comments=["Lovely ring around the core"], tags=["ring"], votes=SPIRAL_VOTES))
    for rule in ("JSON", '"description"', '"visible_features"', '"uncertainty"', "redshift", "distance", "NGC", "refuse"):
        assert rule in prompt
    assert "#ring" in prompt and "Lovely ring around the core" in prompt
    assert "How many spiral arms are there? 2 (almost all volunteers)" in prompt
    assert "%" not in prompt and "0.82" not in prompt  # fractions become words, not numbers to copy


def test_prompt_truncates_long_threads():
    long = subject(comments=["word " * 400] * 50)
    prompt = build_prompt(long)
    assert len(prompt) < 6000
    assert prompt.count("\n- ") <= 20


def test_source_text_lets_the_validator_accept_vote_backed_counts():
    text = summary_source_text(subject(tags=["two_arms"], votes=SPIRAL_VOTES))
    assert "2" in text and "two arms" in text


def test_schema_has_the_three_required_fields():
    assert SUMMARY_JSON_SCHEMA["required"] == ["description", "visible_features", "uncertainty"]
    assert SUMMARY_JSON_SCHEMA["properties"]["uncertainty"]["enum"] == ["low", "medium", "high"]


# ------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```json\n{"description": "A ring.", "visible_features": ["ring"], "uncertainty": "Low"}\n```', "low"),
        ('Here is the JSON: {"description": "A ring.", "visible_features": [], "uncertainty": "high"}', "high"),
    ],
)
def test_parse_accepts_wrapped_json(text, expected):
    parsed = parse_summary_output(text)
    assert isinstance(parsed, dict) and parsed["uncertainty"] == expected and parsed["description"] == "A ring."


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("A ring galaxy.", "output is not JSON"),
        ('{"description": "A ring", ', "output is not JSON"),
        ('{"description": "A ring", "visible_features": ["x"]', "output is not JSON"),
        ('{"description": "A ring", "visible_features": [}', "output is not valid JSON"),
        ('{"description": "A ring", "uncertainty": "low"}', "output JSON lacks key(s) visible_features"),
        ('{"description": 3, "visible_features": [], "uncertainty": "low"}', "description is not a string"),
        ('{"description": "A", "visible_features": "ring", "uncertainty": "low"}', "visible_features is not a list"),
        ('{"description": "A", "visible_features": [], "uncertainty": "maybe"}', "uncertainty is not one of"),
    ],
)
def test_parse_names_what_is_wrong(text, reason):
    parsed = parse_summary_output(text)
    assert isinstance(parsed, str) and parsed.startswith(reason), parsed


# ------------------------------------------------------------------------------ summarise()
def test_bad_outputs_become_rejects_and_good_ones_summaries_in_order():
    subjects = [subject(str(i), comments=["A ring galaxy"]) for i in range(5)]
    outputs = {
        "1": json.dumps({"description": "I'm sorry, there is not enough information.", "visible_features": [], "uncertainty": "high"}),
        "2": "not json at all",
        "3": json.dumps({"description": "A ring like NGC 1300.", "visible_features": ["ring"], "uncertainty": "low"}),
        "4": json.dumps({"description": "A ring.", "visible_features": ["ring", "at z = 0.3"], "uncertainty": "low"}),
    }
    results = ScriptedSummariser(outputs=outputs).summarise(subjects)
    assert [r.subject_id if isinstance(r, Summary) else r.id for r in results] == ["0", "1", "2", "3", "4"]
    assert isinstance(results[0], Summary) and results[0].backend == "scripted" and results[0].model == "scripted-1"
    assert [(r.stage, r.kind, r.reason) for r in results[1:]] == [
        ("summarise", "subject", "refusal"),
        ("summarise", "subject", "output is not JSON"),
        ("summarise", "subject", "names an object"),
        ("summarise", "subject", "mentions redshift"),  # features are validated too
    ]
    assert results[1].source == "talk:test.json"


def test_a_subject_listed_twice_is_generated_once():
    summariser = ScriptedSummariser()
    results = summariser.summarise([subject("7", ["ring"]), subject("8", ["ring"]), subject("7", ["ring"])])
    assert summariser.calls == 2 and len(results) == 3 and results[0] == results[2]


def test_interrupted_run_resumes_without_repeating_calls(tmp_path):
    """Killed after k of n generations, the rerun makes exactly n - k calls and gives the same results."""
    n, k = 7, 3
    subjects = [subject(str(i), [f"ring number {i}"]) for i in range(n)]
    first = ScriptedSummariser(tmp_path, fail_after=k)
    with pytest.raises(KeyboardInterrupt):
        first.summarise(subjects)
    assert first.calls == k
    first.close()

    rerun = ScriptedSummariser(tmp_path)
    results = rerun.summarise(subjects)
    assert rerun.calls == n - k
    assert all(isinstance(r, Summary) for r in results)

    third = ScriptedSummariser(tmp_path)
    assert third.summarise(subjects) == results and third.calls == 0


def test_cache_stores_raw_text_and_reuses_it_across_instances(tmp_path):
    raw = json.dumps({"description": "A ring.", "visible_features": [], "uncertainty": "low"})
    ScriptedSummariser(tmp_path, outputs={"1": raw}).summarise([subject("1", ["ring"])])
    with SummaryCache(tmp_path) as cache:
        assert len(cache) == 1
        key = cache_key("scripted", "scripted-1", build_prompt(subject("1", ["ring"])), "1", {})
        assert cache.get(key) == raw


@pytest.mark.parametrize(
    "change",
    [
        {"backend": "other"},
        {"model": "scripted-2"},
        {"prompt": "another prompt"},
        {"subject_id": "2"},
        {"settings": {"max_new_tokens": 64}},
    ],
)
def test_cache_key_depends_on_every_input(change):
    base = {"backend": "scripted", "model": "scripted-1", "prompt": "p", "subject_id": "1", "settings": {}}
    assert cache_key(**base) != cache_key(**{**base, **change})
    assert re.fullmatch(r"[0-9a-f]{64}", cache_key(**base))


def test_changed_comments_are_regenerated(tmp_path):
    summariser = ScriptedSummariser(tmp_path)
    summariser.summarise([subject("1", ["a ring"])])
    summariser.summarise([subject("1", ["a ring and a bar"])])  # new prompt, new key
    assert summariser.calls == 2


def test_corrupt_cache_file_is_reported_by_path(tmp_path):
    (tmp_path / "summaries.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RuntimeError, match="summaries.sqlite"):
        SummaryCache(tmp_path)


def test_unknown_backend_lists_the_choices():
    with pytest.raises(ValueError, match="template, transformers, openai"):
        get_summariser("llama")


# ----------------------------------------------------------------------------------- template
def test_template_is_the_default_style_backend_and_needs_no_model(tmp_path):
    summariser = get_summariser("template", cache_dir=tmp_path, show_progress=False)
    assert isinstance(summariser, TemplateSummariser) and summariser.backend == "template"
    [result] = summariser.summarise([subject(comments=["Nice barred spiral"], votes=SPIRAL_VOTES)])
    assert isinstance(result, Summary)
    assert "two loosely wound spiral arms" in result.description and "bar" in result.description
    assert result.uncertainty == "low"
    assert "two spiral arms" in result.visible_features


def test_template_is_deterministic_and_varies_between_subjects():
    texts = [template_summary(subject(str(i), votes=SPIRAL_VOTES))["description"] for i in range(30)]
    again = [template_summary(subject(str(i), votes=SPIRAL_VOTES))["description"] for i in range(30)]
    assert texts == again
    openers = {t.split(".")[0] for t in texts}
    assert len(openers) >= 3  # several phrasings of the same facts


def test_template_hedges_split_votes_and_is_confident_on_clear_ones():
    split = template_summary(subject("1", votes=SPLIT_VOTES))
    assert re.search(r"\b(possibly|may|could)\b", split["description"])
    assert split["uncertainty"] == "high"
    clear = template_summary(subject("1", votes=SPIRAL_VOTES))
    assert not re.search(r"\b(possibly|probably|may|could)\b", clear["description"].split(".")[0])


def test_template_names_visible_features_from_comments_and_tags():
    out = template_summary(subject(comments=["Looks like a merger with a tidal tail and a dust lane"], tags=["ring", "star_forming"]))
    assert "a merger" in out["description"] and "tidal features" in out["description"] and "a dust lane" in out["description"]
    assert "a ring" in out["description"] and "hashtag" not in out["description"]  # no meta-text about tags
    assert {"merger", "tidal features", "dust lane", "ring"} <= set(out["visible_features"])  # "star_forming" names no feature


def test_template_rejects_subjects_with_nothing_to_say():
    [result] = TemplateSummariser(show_progress=False).summarise([subject(comments=["Wow!"])])
    assert isinstance(result, Reject) and result.reason == "empty"


def test_template_output_always_passes_the_validator_on_vote_backed_numbers():
    three_arms = {**SPIRAL_VOTES, "spiral-arm-count_2_fraction": 0.1, "spiral-arm-count_3_fraction": 0.9}
    [result] = TemplateSummariser(show_progress=False).summarise([subject(votes=three_arms)])
    assert isinstance(result, Summary) and "three" in result.description
