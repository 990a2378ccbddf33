"""Volunteer identities and credentials never reach a build's files or logs (issue 8, items 2 and 3).

The end-to-end case is the issue's: an OpenAI-compatible summariser that repeats its input (and adds
identities of its own) on a Talk export whose comments carry every form; afterwards no file of the
build (parquet rows, rejects.jsonl, build_stats.json, reports/, README.md) holds any of them, and
neither do the card's command line or the log records.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dataset_builder.cli import main
from dataset_builder.privacy import (
    Scrubber,
    identities_from_export,
    redact_secrets,
    scrub_identities,
)
from dataset_builder.scrub_outputs import finalise_outputs

IDENTITY_FORMS = [
    # (text with an identity, what must be gone)
    ("mail alice@localhost about it", "alice@localhost"),
    ("write to carol [at] example [dot] com please", "carol"),
    ("or carol AT example DOT com", "example"),
    ("ask @ SpacedUser about the arm", "SpacedUser"),
    ("ask @first.last-name's view", "first.last-name"),
    ("Lovely ring\n-- DrHubbleFan", "DrHubbleFan"),
    ("Lovely ring -- DrHubbleFan", "DrHubbleFan"),
    ("Lovely ring.\n~Stargazer_99", "Stargazer_99"),
    ("Nice bar. Cheers, Jane Smith", "Jane Smith"),
    ("my name is Jane Smith and this is a ring", "Jane Smith"),
    ("call me on +44 20 7946 0958", "7946"),
    ("or 555-123-4567 after six", "4567"),
    ("see zooniverse.org/users/alice_w for more", "alice_w"),
    ("https://www.zooniverse.org/projects/zookeeper/galaxy-zoo/users/Sintecnoplaya", "Sintecnoplaya"),
]

KEPT = [  # volunteers' words that look a little like the forms above and must stay
    "look @ the arm, it bends",
    "Star -- White Dwarf",
    "Thanks :D",
    "about ~5 arcsec across",
    "ra 213.6737 dec 13.2417-01",
    "observed 1998-2005 and 2013 2016",
    "look at the dot in the middle",
    "Possibly a merger, best seen in the g band",
]


@pytest.mark.parametrize(("text", "gone"), IDENTITY_FORMS)
def test_each_identity_form_is_removed(text, gone):
    assert gone not in scrub_identities(text)


@pytest.mark.parametrize("text", KEPT)
def test_look_alikes_in_real_comments_are_kept(text):
    assert scrub_identities(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("python -m dataset_builder build --base-url http://user:secret@host/v1 --out x", "secret"),
        ("HTTP Request: POST http://user:secret@host/v1/chat/completions", "user:secret"),
        ("--base-url 'https://host/v1?api_key=s3cr3t&x=1'", "s3cr3t"),
        ("--token hf_abcdefghijklmnopqrstuvwx", "hf_abcdefghijklmnopqrstuvwx"),
        ("OPENAI_API_KEY=sk-abcdefghijklmnopqrstuv python -m dataset_builder", "sk-abcdefghijklmnopqrstuv"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
    ],
)
def test_secrets_are_redacted_from_command_lines_and_log_lines(text, secret):
    redacted = redact_secrets(text)
    assert secret not in redacted and "***" in redacted


# ------------------------------------------------------------------------------ end to end
LOGINS = ["DrHubbleFan", "alice_w", "SpacedUser", "carol1984"]
COMMENTS = [  # one subject each; every identity form of the issue, plus a bare login
    "A ring galaxy. mail alice@localhost or carol [at] example [dot] com",
    "Two spiral arms, ask @ SpacedUser\n-- DrHubbleFan",
    "A bar and a ring, thanks carol1984 for spotting it. my name is Jane Smith",
    "Tidal tail to the left, call +44 20 7946 0958 or see zooniverse.org/users/alice_w",
    "A dust lane across the bulge.",
]
ADDED_BY_MODEL = " Contact alice@localhost, @ SpacedUser or Jane Smith (555-123-4567)."
FORBIDDEN = ["alice", "localhost", "carol", "SpacedUser", "DrHubbleFan", "Jane", "Smith", "7946", "4567",
             "zooniverse.org/users", "skyserver", "hunter2"]


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(out, format="JPEG")
    return out.getvalue()


def _export(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    rows = []
    for i, body in enumerate(COMMENTS):
        subject = 7000 + i
        (folder / "images" / f"{subject}.jpg").write_bytes(_jpeg(i))
        rows.append({"board_id": 1, "board_title": "Notes", "discussion_id": 10 + i,
                     "discussion_title": f"Subject {subject}", "comment_id": 100 + i, "comment_body": body,
                     "comment_focus_id": subject, "comment_focus_type": "Subject", "comment_user_id": 1234500 + i,
                     "comment_user_login": LOGINS[i % len(LOGINS)], "comment_user_display_name": "Jane Smith",
                     "comment_created_at": "2020-01-01T00:00:00Z"})
    (folder / "comments.json").write_text(json.dumps(rows))
    return folder / "comments.json"


class EchoServer:
    """An OpenAI-compatible endpoint whose model repeats the comments of its prompt, adds identities of
    its own, and (for the subject whose comment mentions the dust lane) a URL the validator rejects."""

    def __init__(self) -> None:
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.auth.append(self.headers.get("Authorization"))
                prompt = body["messages"][-1]["content"]
                comments = prompt.split("Comments:\n", 1)[-1].replace("- ", "").replace("\n", " ")
                description = comments + ADDED_BY_MODEL
                if "dust lane" in comments:
                    description += " See https://skyserver.sdss.org/dr18/alice_w for it."
                content = {"description": description, "visible_features": ["ring", "-- DrHubbleFan"],
                           "uncertainty": "low"}
                data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                            "content": json.dumps(content)}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _all_texts(out: Path) -> dict[str, str]:
    """Every text of a build folder, by file (parquet: every message text and tag)."""
    texts = {}
    for path in sorted(out.rglob("*")):
        if path.suffix == ".parquet":
            table = pq.read_table(path, columns=["messages", "tags"]).to_pylist()
            texts[str(path)] = json.dumps(table, ensure_ascii=False)
        elif path.suffix in (".md", ".json", ".jsonl"):
            texts[str(path)] = path.read_text(encoding="utf-8")
    return texts


def test_echoing_summariser_leaks_no_identity_or_credential_anywhere(tmp_path, monkeypatch, caplog):
    talk = _export(tmp_path / "export")
    out = tmp_path / "out"
    with EchoServer() as server:
        base_url = f"http://volunteer:hunter2@127.0.0.1:{server.port}/v1"
        argv = ["build", "--talk", str(talk), "--images", str(tmp_path / "export" / "images"), "--summariser",
                "openai", "--summariser-model", "echo", "--base-url", base_url, "--configs",
                "description,conversation", "--keep-near-duplicates", "--output_dir", str(out)]
        monkeypatch.setattr(sys, "argv", ["python -m dataset_builder", *argv])
        caplog.set_level(logging.INFO)
        code = main(["-q", *argv])
    assert code == 0
    stats = json.loads((out / "build_stats.json").read_text())
    assert stats["reconciled"] and stats["input_records"] == len(COMMENTS)

    texts = _all_texts(out)
    assert any(p.endswith(".parquet") for p in texts) and "ring" in " ".join(texts.values())
    for path, text in texts.items():
        for word in FORBIDDEN:
            assert word.lower() not in text.lower(), (word, path)
    # the validator's reject says why without quoting the URL it rejected
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert {"stage": "summarise", "kind": "subject", "id": "7004", "reason": "contains a URL",
            "source": "talk:comments.json"} in rejects
    # the command line is in the card, without the credentials; httpx logged requests, without them
    card = (out / "README.md").read_text()
    assert "--base-url" in card and "***@127.0.0.1" in card
    assert "HTTP Request" in caplog.text and "hunter2" not in caplog.text
    assert server.auth and all(a and a.startswith("Basic ") for a in server.auth)  # sent as a header instead
    # identities the cleaner cannot know (a display name the model repeats) were removed by the last pass,
    # and counted, without recording what was removed
    assert stats["privacy"]["texts_scrubbed"] > 0 and any(f.startswith("data/") for f in stats["privacy"]["by_file"])
    # the rewritten shards still load as the Hub dataset they were (features kept: Image, messages)
    import datasets

    rows = datasets.load_dataset(str(out), "description", split="train")
    assert isinstance(rows.features["image"], datasets.Image) and len(rows) == len(COMMENTS) - 1
    assert rows[0]["image"].size == (32, 32) and rows[0]["messages"][1]["role"] == "assistant"


def test_final_pass_scrubs_every_output_file_and_counts(tmp_path):
    talk = _export(tmp_path / "export")
    out = tmp_path / "out"
    (out / "reports").mkdir(parents=True)
    (out / "rejects.jsonl").write_text(json.dumps(
        {"stage": "summarise", "kind": "subject", "id": "7000", "reason": "odd: see zooniverse.org/users/alice_w",
         "source": "talk:comments.json"}) + "\n")
    (out / "build_stats.json").write_text(json.dumps({"rejects": {"top_reasons": {"mail carol1984": 1}}, "rows": 3}))
    (out / "reports" / "report.json").write_text(json.dumps({"rejects_by_reason": [{"reason": "ask @ SpacedUser"}]}))
    (out / "reports" / "report.md").write_text("# report\n\n| reason | n |\n|---|---:|\n| by DrHubbleFan | 1 |\n")
    (out / "README.md").write_text("---\nlicense: other\n---\n\n# card\n\nthanks to Jane Smith\n\n@article{x2020,\n")

    summary = finalise_outputs(out, identity_sources=[talk])
    texts = _all_texts(out)
    for path, text in texts.items():
        for word in ("alice_w", "carol1984", "SpacedUser", "DrHubbleFan", "Jane", "Smith"):
            assert word not in text, (word, path)
    assert summary["texts_scrubbed"] == 5 and set(summary["by_file"]) == {
        "rejects.jsonl", "build_stats.json", "reports/report.json", "reports/report.md", "README.md"}
    assert json.loads((out / "build_stats.json").read_text())["privacy"] == summary
    assert "@article{x2020," in (out / "README.md").read_text()  # BibTeX is not a mention
    assert json.loads((out / "rejects.jsonl").read_text())["id"] == "7000"  # ids and labels untouched


def test_identities_are_read_from_the_export_columns_only(tmp_path):
    talk = _export(tmp_path / "export")
    found = identities_from_export(talk)
    assert {"drhubblefan", "alice_w", "spaceduser", "carol1984", "jane", "smith", "1234500"} <= found
    assert not any(re.search(r"ring|spiral|notes|subject", i) for i in found)  # not the comments or boards


def test_the_builders_own_card_texts_pass_the_final_pass_unchanged():
    """The last pass must not eat the card's own words ("@article{" in BibTeX, the licence note)."""
    from dataset_builder.card import CITATION, CONFIG_DESCRIPTIONS, SYNTHETIC_LICENCE_NOTE, TALK_LICENCE_NOTE

    for text in (TALK_LICENCE_NOTE, SYNTHETIC_LICENCE_NOTE, *CONFIG_DESCRIPTIONS.values(), *CITATION.split("\n")):
        assert scrub_identities(text) == text, text


def test_logins_that_comments_mention_are_identities_everywhere(tmp_path):
    rows = [{"comment_id": 1, "comment_focus_id": 5, "comment_body": "@JuggoVuggo look at the ring, @team"},
            {"comment_id": 2, "comment_focus_id": 6, "comment_body": "thanks JuggoVuggo, a team effort"}]
    path = tmp_path / "comments.json"
    path.write_text(json.dumps(rows))
    found = identities_from_export(path)
    assert "juggovuggo" in found and "team" not in found
    assert Scrubber(found).scrub(rows[1]["comment_body"]) == "thanks , a team effort"


def test_real_talk_logins_left_by_the_cleaner_are_removed_by_the_final_pass(shared_data):
    """In the real W&W sample, cleaned comments still name volunteers without an "@" ("Thank you,
    c_cld.", "from participants Anjanatal and mutabilitie"): the logins those threads @mention."""
    from dataset_builder.clean import clean_text
    from dataset_builder.privacy import _TOKEN

    path = shared_data / "talk_weird_wonderful" / "comments_pseudonymized.json"
    found = identities_from_export(path)
    cleaned = [clean_text(r["comment_body"] or "")[0] for r in json.loads(path.read_text())]
    leaks = [t for t in cleaned if set(_TOKEN.findall(t.lower())) & found]
    assert len(leaks) >= 3
    scrubber = Scrubber(found)
    assert not any(set(_TOKEN.findall(scrubber.scrub(t).lower())) & found for t in leaks)
    assert scrubber.scrub("Thank you, c_cld.") == "Thank you, ."
