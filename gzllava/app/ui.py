"""The Gradio app: chat about an uploaded galaxy, spoken questions, the Galaxy Zoo decision tree.

Layout: a Chatbot (messages), a multimodal textbox (text + image/FITS/audio upload + microphone),
generation settings, and the buttons Stop / Regenerate / Clear / "Answer the Galaxy Zoo questions".
The conversation lives in the Chatbot's messages: an uploaded image starts a new conversation about that
galaxy (the model sees the turns since the newest image); user text after a recording is its
transcript, marked with MIC; problems are assistant messages starting with WARN and never reach the model.

Every handler turns bad input into a chat message (never an exception), so one user's bad file does not
disturb the others. Concurrency: `queue_settings` documents how the queue bounds memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
from PIL import Image

from processing_gzllava import DEFAULT_PROMPT

from .engine import ChatEngine, Conversation, InputError, check_question, read_image
from .speech import Transcriber, is_audio
from .tree import steps_markdown, walk_tree

logger = logging.getLogger(__name__)

MIC = "🎤 "
WARN = "⚠️ "
TREE_TITLE = "Galaxy Zoo decision tree"
IMAGE_TYPES = ["image", ".fits", ".fit", ".fts", ".fz", ".fits.gz"]
AUDIO_TYPES = ["audio", ".wav", ".mp3", ".ogg", ".flac", ".webm", ".m4a"]
SHOWN_CHARS = 300  # longer questions are shown cut in the chat
MAX_FILE_SIZE = "50mb"  # uploads above this are refused by gradio before they reach a handler


# ---------------------------------------------------------------------------------------------- history
def _blocks(message: dict) -> list[dict]:
    """A chat message's content as a list of {"type": "text"|"file", ...} blocks (any gradio form)."""
    content = message.get("content")
    items = content if isinstance(content, list) else [content]
    blocks = []
    for item in items:
        if isinstance(item, str):
            blocks.append({"type": "text", "text": item})
        elif isinstance(item, dict) and item.get("type") == "file":
            blocks.append({"type": "file", "path": item["file"]["path"]})
        elif isinstance(item, dict) and item.get("type") == "text":
            blocks.append({"type": "text", "text": item.get("text", "")})
        elif isinstance(item, dict) and "path" in item:
            blocks.append({"type": "file", "path": item["path"]})
    return blocks


def _is_note(message: dict) -> bool:
    """Assistant messages that are not model answers: problems and decision-tree tables."""
    metadata = message.get("metadata") or {}
    return bool(metadata.get("title")) or any(
        b["type"] == "text" and b["text"].startswith(WARN) for b in _blocks(message)
    )


def history_to_conversation(history: list[dict], load: Callable[[str], Image.Image] = read_image) -> Conversation:
    """The conversation the model continues: the newest image and the answered turns after it."""
    conversation = Conversation()
    pending: str | None = None
    for message in history:
        if message["role"] == "user":
            for block in _blocks(message):
                if block["type"] == "file" and not is_audio(block["path"]):
                    conversation = Conversation(load(block["path"]))
                    pending = None
                elif block["type"] == "text":
                    pending = block["text"].removeprefix(MIC).strip()
        elif message["role"] == "assistant":
            if _is_note(message):
                if any(b["type"] == "text" and b["text"].startswith(WARN) for b in _blocks(message)):
                    pending = None  # the question that failed is not part of the conversation
                continue
            text = " ".join(b["text"] for b in _blocks(message) if b["type"] == "text").strip()
            if pending is not None and text:
                conversation.turns.append((pending, text))
                pending = None
    return conversation


def _newest_image(history: list[dict]) -> str | None:
    for message in reversed(history):
        if message["role"] == "user":
            for block in reversed(_blocks(message)):
                if block["type"] == "file" and not is_audio(block["path"]):
                    return block["path"]
    return None


def _warn(text: str) -> dict:
    return {"role": "assistant", "content": WARN + text}


def _path(file) -> str:
    return file if isinstance(file, str) else (file.get("path") if isinstance(file, dict) else getattr(file, "path"))


# ---------------------------------------------------------------------------------------------- handlers
class ChatHandlers:
    """The event handlers, separate from the layout so that tests can call them directly."""

    def __init__(self, engine: ChatEngine, transcriber: Transcriber | None = None, update_interval: float = 0.1):
        self.engine = engine
        self.transcriber = transcriber
        self.update_interval = update_interval  # seconds between streamed updates (at most ~10 per second)

    def _stream_answer(self, history: list[dict], question: str, temperature: float, top_p: float,
                       max_new_tokens: int) -> Iterator[list[dict]]:
        """Append the model's answer to `history` (ending with the question), yielding it as it grows."""
        conversation = history_to_conversation(history[:-1])
        history.append({"role": "assistant", "content": ""})
        try:
            shown, last = "", 0.0
            for text in self.engine.stream(conversation, question, temperature=temperature, top_p=top_p,
                                           max_new_tokens=max_new_tokens):
                history[-1] = {"role": "assistant", "content": text}
                if time.monotonic() - last >= self.update_interval:  # coalesce tokens: each update re-sends the chat
                    shown, last = text, time.monotonic()
                    yield history
            if not history[-1]["content"]:
                history[-1] = {"role": "assistant", "content": "(the model ended its answer without any text)"}
            if history[-1]["content"] != shown:
                yield history
        except InputError as error:
            history[-1] = _warn(str(error))
            yield history
        except Exception as error:  # noqa: BLE001 -- a model failure must not take the app down for others
            logger.exception("generation failed")
            history[-1] = _warn(f"The model failed on this question ({type(error).__name__}: {error}).")
            yield history

    def respond(self, message: dict | str | None, history: list[dict] | None, temperature: float = 0.0,
                top_p: float = 1.0, max_new_tokens: int = 128):
        """Submit: files (image / FITS / audio) and text -> (history, textbox) as the answer streams."""
        history = list(history or [])
        cleared = {"text": "", "files": []}
        message = {"text": message} if isinstance(message, str) else dict(message or {})
        text = (message.get("text") or "").strip()
        image_path, audio_path = None, None
        for file in message.get("files") or []:
            path = _path(file)
            if is_audio(path):
                audio_path = path
                continue
            try:
                read_image(path)
            except InputError as error:
                history += [{"role": "user", "content": f"📎 {Path(path).name}"}, _warn(str(error))]
                yield history, cleared
                return
            image_path = path
        if image_path:
            history.append({"role": "user", "content": {"path": image_path}})
        if audio_path:
            history.append({"role": "user", "content": {"path": audio_path}})
            yield history, cleared
            if self.transcriber is None:
                history.append(_warn("Speech recognition is off: start the app with --asr-model (a Whisper model)."))
                yield history, gr.skip()
                return
            try:
                text = self.transcriber.transcribe(audio_path)
            except InputError as error:
                history.append(_warn(str(error)))
                yield history, gr.skip()
                return
            history.append({"role": "user", "content": MIC + text})
        elif text or not image_path:
            if text:  # an overlong question is shown cut (it is refused below anyway)
                shown = text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}… ({len(text):,} characters)"
                history.append({"role": "user", "content": shown})
        else:
            text = DEFAULT_PROMPT  # an image alone: the model describes it
            history.append({"role": "user", "content": text})
        yield history, cleared
        try:
            question = check_question(text)
        except InputError as error:
            history.append(_warn(str(error)))
            yield history, gr.skip()
            return
        for history in self._stream_answer(history, question, temperature, top_p, max_new_tokens):
            yield history, gr.skip()

    def regenerate(self, history: list[dict] | None, temperature: float = 0.0, top_p: float = 1.0,
                   max_new_tokens: int = 128):
        """Answer the last question again (with the current settings)."""
        history = list(history or [])
        last_question = max((i for i, m in enumerate(history) if m["role"] == "user"
                             and any(b["type"] == "text" for b in _blocks(m))), default=None)
        if last_question is None:
            history.append(_warn("Nothing to regenerate yet: ask a question first."))
            yield history
            return
        if any(m["role"] == "assistant" and any(b["type"] == "text" and b["text"].startswith(WARN) for b in _blocks(m))
               for m in history[last_question + 1:]):
            history.append(_warn("The last question was not answered (see the message above): ask it again."))
            yield history
            return
        history = history[: last_question + 1]
        question = " ".join(b["text"] for b in _blocks(history[-1]) if b["type"] == "text").removeprefix(MIC).strip()
        try:
            question = check_question(question)
        except InputError as error:
            history.append(_warn(str(error)))
            yield history
            return
        yield from self._stream_answer(history, question, temperature, top_p, max_new_tokens)

    def answer_tree(self, history: list[dict] | None, message: dict | None = None):
        """Walk the decision tree for the newest image (the one in the textbox, else the conversation's)."""
        from gzllava.evaluation.inference import LlavaEvaluator

        history = list(history or [])
        files = [_path(f) for f in (message or {}).get("files") or [] if not is_audio(_path(f))]
        try:
            if files:
                image = read_image(files[-1])
                history.append({"role": "user", "content": {"path": files[-1]}})
            else:
                path = _newest_image(history)
                if path is None:
                    raise InputError("No galaxy image yet: upload one (JPEG, PNG or FITS), then press the button.")
                image = read_image(path)
        except InputError as error:
            history.append(_warn(str(error)))
            yield history
            return
        history.append({"role": "user", "content": "Answer the Galaxy Zoo questions."})
        note = {"role": "assistant", "content": steps_markdown([], done=False), "metadata": {"title": TREE_TITLE}}
        history.append(note)
        yield history
        steps = []
        try:
            evaluator = LlavaEvaluator(self.engine.model, self.engine.processor, batch_size=1)
            for step in walk_tree(evaluator, image):
                steps.append(step)
                history[-1] = {**note, "content": steps_markdown(steps, done=False)}
                yield history
        except Exception as error:  # noqa: BLE001
            logger.exception("decision-tree walk failed")
            history[-1] = _warn(f"The decision-tree walk failed ({type(error).__name__}: {error}).")
            yield history
            return
        history[-1] = {**note, "content": steps_markdown(steps, done=True)}
        yield history


# ---------------------------------------------------------------------------------------------- layout
def queue_settings(concurrency: int, max_queue: int) -> dict:
    """Arguments of `Blocks.queue`: at most `concurrency` generations run at once (each holds a KV cache and
    activations); up to `max_queue` more requests wait; beyond that gradio answers "queue full" at once."""
    if concurrency < 1 or max_queue < 1:
        raise ValueError(f"concurrency and max_queue must be >= 1, got {concurrency} and {max_queue}")
    return {"default_concurrency_limit": concurrency, "max_size": max_queue}


def build_app(engine: ChatEngine, transcriber: Transcriber | None = None, examples: list[tuple[Path, str, str]] = (),
              title: str = "Talk to GZ-LLaVA", model_name: str = "") -> gr.Blocks:
    """The Blocks app. Call `.queue(**queue_settings(...))` and `.launch(...)` on the result."""
    handlers = ChatHandlers(engine, transcriber)
    sources = ["upload", "microphone"] if transcriber is not None else ["upload"]
    with gr.Blocks(title=title) as demo:
        gr.Markdown(
            f"# {title}\nUpload a galaxy (JPEG, PNG or FITS) and ask about it"
            + (", by typing or speaking" if transcriber else "")
            + f". Model: `{model_name or 'GZ-LLaVA'}`."
        )
        chatbot = gr.Chatbot(label="Conversation", height=620, elem_id="chatbot", buttons=["copy"],
                             feedback_options=None)
        textbox = gr.MultimodalTextbox(
            placeholder="Ask about the galaxy, or upload an image / FITS cutout" + (" / recording" if transcriber else ""),
            file_types=IMAGE_TYPES + (AUDIO_TYPES if transcriber else []),
            file_count="multiple", sources=sources, show_label=False, elem_id="question",
        )
        with gr.Row():
            stop = gr.Button("Stop", variant="stop", elem_id="stop")
            regenerate = gr.Button("Regenerate", elem_id="regenerate")
            clear = gr.Button("Clear", elem_id="clear")
            tree = gr.Button("Answer the Galaxy Zoo questions", variant="primary", elem_id="tree")
        with gr.Accordion("Generation settings", open=False):
            temperature = gr.Slider(0.0, 2.0, value=0.0, step=0.05, label="Temperature (0: greedy)")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
            max_new_tokens = gr.Slider(1, 512, value=engine.default_max_new_tokens, step=1, label="Max new tokens")
        if examples:
            gr.Examples(
                examples=[[{"text": question, "files": [str(path)]}] for path, _, question in examples],
                example_labels=[f"synthetic {caption} galaxy" for _, caption, _ in examples],
                inputs=[textbox], label="Example galaxies (synthetic)",
            )
        settings = [temperature, top_p, max_new_tokens]
        submit = textbox.submit(handlers.respond, [textbox, chatbot, *settings], [chatbot, textbox], api_name="chat")
        again = regenerate.click(handlers.regenerate, [chatbot, *settings], [chatbot], api_name="regenerate")
        retry = chatbot.retry(handlers.regenerate, [chatbot, *settings], [chatbot], api_visibility="private")
        walk = tree.click(handlers.answer_tree, [chatbot, textbox], [chatbot], api_name="answer_tree")
        running = [submit, again, retry, walk]
        stop.click(None, cancels=running, api_visibility="private")
        clear.click(lambda: ([], {"text": "", "files": []}), None, [chatbot, textbox], cancels=running,
                    api_name="clear")
    return demo
