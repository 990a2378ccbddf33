"""Bad input in the app: each case ends in a chat message naming the problem, and the app keeps answering."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gzllava.app.ui import MIC, WARN, ChatHandlers, history_to_conversation


def run(handler, *args) -> list[dict]:
    """Drain a handler generator; the last chat history."""
    history = None
    for output in handler(*args):
        history = output[0] if isinstance(output, tuple) else output
    return history


def texts(history: list[dict]) -> list[str]:
    return [m["content"] for m in history if isinstance(m["content"], str)]


def write_wav(path: Path, samples: np.ndarray, rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
def handlers(engine, transcriber):
    return ChatHandlers(engine, transcriber)


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    from astropy.io import fits

    files = {}
    files["text"] = tmp_path / "notes.txt"
    files["text"].write_text("not a galaxy")
    files["corrupt"] = tmp_path / "broken.png"
    files["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
    files["huge"] = tmp_path / "huge.png"
    Image.new("L", (5000, 5000)).save(files["huge"])  # 25 Mpixel, a few KB on disk
    files["fits_no_image"] = tmp_path / "table.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="flux", format="E", array=np.ones(3, "f4"))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(files["fits_no_image"])
    return files


@pytest.mark.parametrize("kind, expected", [
    ("text", "Cannot use notes.txt as a galaxy image"),
    ("corrupt", "Cannot use broken.png as a galaxy image: Cannot read image broken.png: corrupt"),
    ("huge", "5000x5000 pixels, above the limit"),
    ("fits_no_image", "Cannot read FITS image table.fits: no image HDU"),
])
def test_bad_image_uploads_get_a_message(handlers, bad_files, kind, expected):
    history = run(handlers.respond, {"text": "Is there a bar?", "files": [str(bad_files[kind])]}, [])
    assert history[-1]["role"] == "assistant"
    assert history[-1]["content"].startswith(WARN) and expected in history[-1]["content"]
    assert not any(isinstance(m["content"], dict) for m in history)  # the bad file never joins the conversation


def test_fits_cutout_is_a_galaxy_image(handlers, tmp_path, engine):
    from astropy.io import fits

    cube = np.random.default_rng(0).normal(0, 1, (3, 40, 40)).astype("f4")
    cube[:, 15:25, 15:25] += 20
    path = tmp_path / "cutout.fits"
    fits.PrimaryHDU(cube).writeto(path)
    history = run(handlers.respond, {"text": "Is it smooth?", "files": [str(path)]}, [], 0.0, 1.0, 4)
    assert history[0]["content"] == {"path": str(path)}
    assert not history[-1]["content"].startswith(WARN) and history[-1]["content"]


def test_empty_and_overlong_questions(handlers, galaxy_png):
    history = run(handlers.respond, {"text": "Describe it.", "files": [str(galaxy_png)]}, [], 0.0, 1.0, 4)
    empty = run(handlers.respond, {"text": "   ", "files": []}, history)
    assert "The question is empty" in empty[-1]["content"]
    long = run(handlers.respond, {"text": "why " * 5000, "files": []}, history)
    assert "19,999 characters long; the limit is 2,000" in long[-1]["content"]
    assert long[-2]["content"].endswith("… (19,999 characters)") and len(long[-2]["content"]) < 400  # shown cut
    # neither failed question reaches the model's context, and regenerate does not re-ask it
    assert history_to_conversation(long).turns == history_to_conversation(history).turns
    again = run(handlers.regenerate, long)
    assert "The last question was not answered" in again[-1]["content"]
    answered = run(handlers.regenerate, history, 0.0, 1.0, 4)
    assert answered[-1]["content"] == history[-1]["content"]  # greedy: the same answer again


def test_question_without_any_image(handlers):
    history = run(handlers.respond, {"text": "Is there a bar?", "files": []}, [])
    assert "No galaxy image yet" in history[-1]["content"]


@pytest.mark.parametrize("kind, expected", [
    ("silent", "is silent"),
    ("empty", "is empty (0 seconds)"),
    ("undecodable", "Cannot decode the audio file"),
    ("not_audio_ogg", "Cannot decode the audio file"),
])
def test_bad_recordings_get_a_message(handlers, tmp_path, kind, expected):
    if kind == "silent":
        path = write_wav(tmp_path / "silent.wav", np.zeros(32_000))
    elif kind == "empty":
        path = write_wav(tmp_path / "empty.wav", np.zeros(0))
    elif kind == "undecodable":
        path = tmp_path / "noise.wav"
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        path = tmp_path / "question.ogg"
        path.write_text("this is text, not Ogg Vorbis")
    history = run(handlers.respond, {"text": "", "files": [str(path)]}, [])
    assert history[-1]["content"].startswith(WARN) and expected in history[-1]["content"]
    assert path.name in history[-1]["content"]


def test_speech_off_is_explained(engine, tmp_path):
    path = write_wav(tmp_path / "q.wav", 0.3 * np.sin(np.linspace(0, 2000, 16_000)))
    history = run(ChatHandlers(engine, None).respond, {"text": "", "files": [str(path)]}, [])
    assert "Speech recognition is off" in history[-1]["content"]


def test_the_app_keeps_answering_after_every_bad_input(handlers, bad_files, galaxy_png):
    history: list[dict] = []
    for path in bad_files.values():
        history = run(handlers.respond, {"text": "Bar?", "files": [str(path)]}, history)
    history = run(handlers.respond, {"text": "Is there a bar?", "files": [str(galaxy_png)]}, history, 0.0, 1.0, 4)
    assert history[-2]["content"] == "Is there a bar?"
    assert history[-1]["role"] == "assistant" and not history[-1]["content"].startswith(WARN)
    assert history_to_conversation(history).turns == [("Is there a bar?", history[-1]["content"])]


def test_transcript_text_is_the_question(handlers):
    history = [{"role": "user", "content": [{"type": "file", "file": {"path": "/x/rec.wav"}}]},
               {"role": "user", "content": [{"type": "text", "text": MIC + "is there a bar"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "No bar."}]}]
    conversation = history_to_conversation([{"role": "user", "content": {"path": "img.png"}}, *history],
                                           load=lambda path: Image.new("RGB", (8, 8)))
    assert conversation.turns == [("is there a bar", "No bar.")]
