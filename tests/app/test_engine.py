"""ChatEngine: streamed answers, multi-turn prompts, context limits, stopping, question checks."""

from __future__ import annotations

import threading
import time

import pytest

from gzllava.app.engine import MAX_QUESTION_CHARS, ChatEngine, Conversation, InputError, check_question
from gzllava.tiny import toy_galaxy


def test_answer_streams_token_by_token(engine):
    parts = list(engine.stream(Conversation(toy_galaxy()), "Is there a bar?", max_new_tokens=8))
    assert len(parts) >= 2  # several updates, not one block
    for shorter, longer in zip(parts, parts[1:]):
        assert longer.startswith(shorter.rstrip()) or longer.startswith(shorter)
    # greedy: the same text as a plain generate of the same prompt
    assert parts[-1].strip() == engine.answer(Conversation(toy_galaxy()), "Is there a bar?", max_new_tokens=8)


def test_messages_put_the_image_in_the_first_turn_only():
    conversation = Conversation(toy_galaxy(), [("Is it smooth?", "No."), ("Spiral?", "Yes.")])
    messages = conversation.messages("How many arms?")
    images = [(i, b) for i, m in enumerate(messages) for b in m["content"] if b["type"] == "image"]
    assert [i for i, _ in images] == [0]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[-1]["content"][-1]["text"] == "How many arms?"


def test_multi_turn_prompt_holds_the_earlier_turns(engine):
    conversation = Conversation(toy_galaxy(), [("Is it smooth?", "No, it has features.")])
    inputs = engine._inputs(conversation, "How many arms?", max_new_tokens=4)
    text = engine.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=False)
    assert text.index("Is it smooth?") < text.index("No, it has features.") < text.index("How many arms?")
    assert inputs["pixel_values"].shape[0] == 1  # (1, 3, 32, 32): one galaxy


def test_oldest_turns_are_dropped_to_fit_the_context(engine):
    long_turns = [(f"question {i} " + "galaxy " * 40, "answer " * 40) for i in range(12)]
    conversation = Conversation(toy_galaxy(), long_turns)
    inputs = engine._inputs(conversation, "Last question?", max_new_tokens=8)
    length = inputs["input_ids"].shape[1]
    assert length + 8 <= engine.context_length
    text = engine.tokenizer.decode(inputs["input_ids"][0])
    assert "question 11" in text and "question 0 " not in text and "Last question?" in text


def test_sampling_uses_temperature_top_p_and_seed(engine):
    conversation = Conversation(toy_galaxy())
    first = engine.answer(conversation, "Describe it.", temperature=1.5, top_p=0.9, max_new_tokens=8, seed=3)
    again = engine.answer(conversation, "Describe it.", temperature=1.5, top_p=0.9, max_new_tokens=8, seed=3)
    greedy = engine.answer(conversation, "Describe it.", max_new_tokens=8)
    assert first == again
    others = {engine.answer(conversation, "Describe it.", temperature=1.5, top_p=0.9, max_new_tokens=8, seed=s)
              for s in range(4, 8)}
    assert len(others | {greedy}) > 1  # sampling changes the answer


def test_closing_the_stream_stops_generation(engine):
    before = {t.ident for t in threading.enumerate() if t.name == "gzllava-generate"}
    stream = engine.stream(Conversation(toy_galaxy()), "Describe it.", max_new_tokens=900)
    next(stream)
    start = time.perf_counter()
    stream.close()  # what gradio's Stop does to the generator
    assert time.perf_counter() - start < 5
    alive = [t for t in threading.enumerate() if t.name == "gzllava-generate" and t.ident not in before]
    assert not alive


def test_no_image_and_bad_questions_are_input_errors(engine):
    with pytest.raises(InputError, match="No galaxy image"):
        list(engine.stream(Conversation(), "Is there a bar?"))
    with pytest.raises(InputError, match="empty"):
        check_question("   ")
    with pytest.raises(InputError, match="20,000 characters long; the limit is"):
        check_question("x" * 20_000)
    assert check_question("  Bar?  ") == "Bar?"
    assert len(check_question("y" * MAX_QUESTION_CHARS)) == MAX_QUESTION_CHARS
    with pytest.raises(InputError, match="max new tokens"):
        list(engine.stream(Conversation(toy_galaxy()), "Bar?", max_new_tokens=0))


def test_prompt_over_the_context_is_refused(engine):
    with pytest.raises(InputError, match="over the model's context"):
        list(engine.stream(Conversation(toy_galaxy()), "Bar?", max_new_tokens=engine.context_length))


def test_from_pretrained_loads_the_saved_folder(tiny_model_dir):
    loaded = ChatEngine.from_pretrained(tiny_model_dir, device="cpu")
    assert loaded.model.config.model_type == "gzllava"
    assert loaded.context_length == 1024  # the tiny Llama's max_position_embeddings
