"""What a pushed model card may quote: portable paths, no credentials (issue 8 item 3)."""

from pathlib import Path

from gzllava.model_card import PROJECT_ROOT, card_command, card_safe, portable_path, redact


def test_paths_inside_the_project_are_relative_and_outside_only_named(tmp_path):
    assert portable_path(str(PROJECT_ROOT / "recipes" / "tiny_cpu_align.yaml")) == "recipes/tiny_cpu_align.yaml"
    assert portable_path(str(PROJECT_ROOT / "recipes" / ".." / "recipes" / "x.yaml")) == "recipes/x.yaml"
    assert portable_path("/home/someone/runs/gz-llava/final") == "<local>/final"
    assert portable_path("~/models/base") == "<local>/base"
    (tmp_path / "data").mkdir()
    assert portable_path(str(tmp_path / "data")) == "<local>/data"
    # Hub ids, URLs and relative names that are no local file stay as they are
    for value in ("HuggingFaceTB/SmolLM2-135M-Instruct", "tiny", "https://huggingface.co/org/gz", ""):
        assert portable_path(value) == value


def test_credentials_are_redacted_from_text_and_nested_values():
    assert redact("https://user:pa55@hub.example/v1 and hf_AbCdEfGhIjKl01") == "https://hub.example/v1 and <redacted>"
    assert redact("sk-proj-1234567890abcdef ghp_abcdefghijklmnop") == "<redacted> <redacted>"
    safe = card_safe({"hub_token": "anything", "api_key": "k", "num_query_tokens": 64, "push_to_hub": False,
                      "recipe": {"path": str(PROJECT_ROOT / "recipes" / "a.yaml"), "settings": {"hub_token": None}},
                      "paths": [Path("/home/someone/x.yaml"), "/srv/data/set"]})
    assert safe == {"hub_token": "<redacted>", "api_key": "<redacted>", "num_query_tokens": 64, "push_to_hub": False,
                    "recipe": {"path": "recipes/a.yaml", "settings": {"hub_token": None}},
                    "paths": ["<local>/x.yaml", "<local>/set"]}


def test_the_recorded_command_line_hides_secret_flags_and_local_paths():
    command = card_command(["--config", str(PROJECT_ROOT / "recipes" / "tiny_cpu_align.yaml"), "--hub_token",
                            "hf_abcdefghijklmnop", "--output_dir", "/home/someone/out", "--hub-token=xyz",
                            "--report_to", "none", "--judge_url", "http://me:secret@127.0.0.1:8000/v1"])
    assert command == ("python train_sft.py --config recipes/tiny_cpu_align.yaml --hub_token <redacted> "
                       "--output_dir '<local>/out' --hub-token=<redacted> --report_to none "
                       "--judge_url http://127.0.0.1:8000/v1")
    for leaked in ("hf_abcdefghijklmnop", "xyz", "someone", "secret"):
        assert leaked not in command
