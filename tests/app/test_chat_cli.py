"""Terminal chat (`python -m gzllava.chat`) and app.py start-up errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from gzllava.chat import chat_loop
from gzllava.tiny import toy_galaxy

REPO = Path(__file__).resolve().parents[2]


def test_chat_loop_streams_answers_and_switches_image(engine, galaxy_png, tmp_path):
    out = io.StringIO()
    other = tmp_path / "other.png"
    toy_galaxy(5).save(other)
    lines = ["Is there a bar?", "How many arms?", f"/image {other}", "Is it smooth?", "/image missing.png", "/tree",
             "/bogus", "", "x" * 20_000, "/quit", "never asked"]
    conversation = chat_loop(engine, toy_galaxy(), lines, out, max_new_tokens=4)
    text = out.getvalue()
    assert text.count("gz-llava> ") == 4  # three answers + the overlong question's attempt
    assert f"(now talking about {other})" in text
    assert "error: Cannot use missing.png as a galaxy image" in text
    assert "Is the galaxy simply smooth and rounded" in text and "(p=" in text  # /tree
    assert "unknown command '/bogus'" in text
    assert "characters long; the limit is 2,000" in text
    # the switch started a new conversation: only the question asked after it
    assert [q for q, _ in conversation.turns] == ["Is it smooth?"]
    assert list(conversation.image.getdata()) == list(toy_galaxy(5).getdata())


def test_chat_main_runs_on_piped_input(tiny_model_dir, galaxy_png):
    result = subprocess.run(
        [sys.executable, "-m", "gzllava.chat", "--model", str(tiny_model_dir), "--image", str(galaxy_png),
         "--max-new-tokens", "4"],
        input="Is there a bar?\n/quit\n", capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gz-llava> ") and len(result.stdout.strip()) > len("gz-llava>")


def test_missing_model_and_image_exit_2_with_one_line(galaxy_png, tmp_path, capsys):
    from gzllava.app.cli import main as app_main
    from gzllava.chat import main as chat_main

    assert app_main(["--model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --model {tmp_path / 'nothing'}: no model folder there (expected a config.json).\n"
    assert chat_main(["--image", str(tmp_path / "no.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no.jpg" in err
    assert chat_main(["--image", str(galaxy_png), "--model", str(tmp_path)]) == 2
    assert "no model folder there" in capsys.readouterr().err


def test_default_model_missing_says_how_to_make_it(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("GZLLAVA_MODEL", None)
    result = subprocess.run([sys.executable, str(REPO / "app.py")], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --model outputs/demo/instruct/final: no model folder there (expected a "
                                     "config.json). Run `bash scripts/demo.sh` first (it trains the demo model).")
