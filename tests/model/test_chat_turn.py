"""One chat turn: `processing_gzllava.user_turn` is what the evaluator, the chat engine, the llama.cpp runtime and the
pipeline ask with, and the dataset rows render to the same prompt."""

from types import SimpleNamespace

import pytest

from dataset_builder.instructions import conversation, image_turn
from gzllava.app.engine import Conversation
from gzllava.evaluation.inference import LlavaEvaluator
from gzllava.export.runtime import chat_messages
from pipeline_gzllava import GZLlavaImageToTextPipeline
from processing_gzllava import assistant_turn, chat_prompt, user_turn

QUESTION = "Is there any sign of a bar feature through the centre of the galaxy?"


def render(processor, messages, generation=True):
    return processor.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)


def test_user_turn_is_image_blocks_then_the_question():
    assert user_turn(QUESTION) == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    assert user_turn(QUESTION, n_images=0)[0]["content"] == [{"type": "text", "text": QUESTION}]
    assert [block["type"] for block in user_turn(QUESTION, n_images=2)[0]["content"]] == ["image", "image", "text"]
    assert assistant_turn("A bar.") == {"role": "assistant", "content": [{"type": "text", "text": "A bar."}]}


def test_image_block_replaces_the_placeholder_without_being_shared():
    block = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    content = user_turn(QUESTION, n_images=2, image_block=block)[0]["content"]
    assert content[:2] == [block, block] and content[0] is not block and content[0] is not content[1]
    assert chat_messages("data:image/png;base64,AA", QUESTION) == user_turn(QUESTION, image_block=block)


def test_a_question_that_is_not_text_is_named():
    with pytest.raises(TypeError, match="question must be a string, got list"):
        user_turn(["What is it?"])


def test_evaluator_engine_pipeline_and_dataset_rows_render_the_same_prompt(tiny_mlp):
    model, processor = tiny_mlp
    expected = chat_prompt(processor, QUESTION)
    assert expected == "USER: <image>\n" + QUESTION + "\nASSISTANT:"
    assert LlavaEvaluator(model, processor).prompt(QUESTION) == expected
    assert GZLlavaImageToTextPipeline._prompt_text(SimpleNamespace(processor=processor), QUESTION) == expected
    engine_messages = Conversation(image=object()).messages(QUESTION)
    assert engine_messages == user_turn(QUESTION) and render(processor, engine_messages) == expected
    assert render(processor, [image_turn(QUESTION)]) == expected  # rows keep {"type": "image", "text": None}


def test_later_turns_are_text_only_and_answers_are_assistant_turns(tiny_mlp):
    _, processor = tiny_mlp
    chat = Conversation(image=object(), turns=[("What is it?", "A spiral.")])
    messages = chat.messages(QUESTION)
    assert messages == [*user_turn("What is it?"), assistant_turn("A spiral."), *user_turn(QUESTION, n_images=0)]
    rows = conversation([("What is it?", "A spiral."), (QUESTION, "No bar.")])
    assert render(processor, messages) == render(processor, rows[:3])
