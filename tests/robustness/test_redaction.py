"""One secret redaction (issue 12): the dataset builder's logs and card and the model card mask the same credentials,
each with its own mask (`dataset_builder.redaction`)."""

from __future__ import annotations

import logging

import pytest

from dataset_builder.privacy import redact_secrets as builder_redact
from dataset_builder.redaction import RedactingFilter, is_secret_name, strip_url_credentials
from gzllava.model_card import redact as card_redact

SECRETS = [  # (text, the secret)
    ("--base-url http://user:pw0rd@host/v1", "pw0rd"),
    ("https://host/v1?api_key=s3cr3t&x=1", "s3cr3t"),
    ("https://host/v1?hf_token=s3cr3t", "s3cr3t"),
    ("--token hf_abcdefghijklmnopqrstuvwx", "hf_abcdefghijklmnopqrstuvwx"),
    ("--hub_token abcdef", "abcdef"),
    ("--judge-api-key=abcdef", "abcdef"),
    ("OPENAI_API_KEY=sk-abcdefghijklmnopqrstuv python evaluate_gzllava.py", "sk-abcdefghijklmnopqrstuv"),
    ("a short hub token hf_AbCdEfGhIjKl01 in a log line", "hf_AbCdEfGhIjKl01"),
    ("ghp_abcdefghijklmnop", "ghp_abcdefghijklmnop"),
    ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_the_builder_and_the_model_card_mask_the_same_secrets(text, secret):
    builder, card = builder_redact(text), card_redact(text)
    assert secret not in builder and "***" in builder
    assert secret not in card and ("<redacted>" in card or "@" in text)  # the card drops URL user-info


def test_url_user_info_is_masked_in_logs_and_dropped_where_the_url_must_stay_usable():
    assert builder_redact("http://me:pw@127.0.0.1:8000/v1") == "http://***@127.0.0.1:8000/v1"
    assert strip_url_credentials("see http://me:pw@127.0.0.1:8000/v1 and https://h/x") == \
        "see http://127.0.0.1:8000/v1 and https://h/x"
    assert card_redact("http://me:pw@127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize("text", ["--max_new_tokens 16", "--tokenizer_name x", "--author Jane", "hf_hub_download",
                                  "task-abcdefghijkl", "--output_dir out", "the key point"])
def test_words_that_only_look_like_secrets_are_kept(text):
    assert builder_redact(text) == text == card_redact(text)


def test_secret_names_of_keys_and_flags():
    assert all(map(is_secret_name, ["hub_token", "--hub-token", "api_key", "--judge-api-key", "password", "auth"]))
    assert not any(map(is_secret_name, ["num_query_tokens", "max_new_tokens", "tokenizer", "author", "push_to_hub"]))


def test_the_log_filter_masks_the_formatted_message():
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST %s", ("http://u:pw@host/v1",), None)
    assert RedactingFilter().filter(record) and record.getMessage() == "POST http://***@host/v1"
