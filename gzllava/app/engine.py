"""The chat engine behind the app and the terminal chat: one loaded GZ-LLaVA, streamed answers.

A conversation is one galaxy image and the question/answer turns asked about it. The image sits in the
first user turn (the chat template expands its `<image>` there); later turns are text. Answers stream
token by token through transformers' `TextIteratorStreamer`, with `generate` in a worker thread that
stops as soon as the reader goes away (a stop button, a closed browser tab, Ctrl-C).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from processing_gzllava import assistant_turn, user_turn

MAX_QUESTION_CHARS = 2000
MAX_IMAGE_PIXELS = 4096 * 4096  # a galaxy cutout is a few hundred pixels a side; larger uploads are refused


class InputError(ValueError):
    """Input a user can fix (wrong file, empty or overlong question): the message is shown to them as is."""


@dataclass
class Conversation:
    """One galaxy and the turns about it. `image` is RGB; `turns` are (question, answer) pairs."""

    image: Image.Image | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)

    def messages(self, question: str) -> list[dict]:
        """Chat-template messages for asking `question` next; the image goes in the first user turn."""
        if self.image is None:
            raise InputError("No galaxy image yet: upload one (JPEG, PNG or FITS) before asking.")
        messages: list[dict] = []
        for index, (asked, answered) in enumerate([*self.turns, (question, None)]):
            messages += user_turn(asked, n_images=1 if index == 0 else 0)
            if answered is not None:
                messages.append(assistant_turn(answered))
        return messages


def check_question(question: str | None) -> str:
    """The stripped question, or InputError for an empty or overlong one."""
    question = (question or "").strip()
    if not question:
        raise InputError("The question is empty: type (or say) a question about the galaxy.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(
            f"The question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. Ask something shorter."
        )
    return question


def read_image(source, name: str | None = None) -> Image.Image:
    """An RGB galaxy image from a path/bytes/PIL/array through the processor's loader; InputError when unusable."""
    from image_processing_gzllava import load_image  # the processor's reader: JPEG, PNG, FITS, arrays, pixel-bomb checks

    label = name or (Path(source).name if isinstance(source, (str, Path)) else None)
    try:
        return load_image(source, name=label, max_pixels=MAX_IMAGE_PIXELS)
    except (ValueError, TypeError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"Cannot use {label or 'the upload'} as a galaxy image: {message}") from error
    except ImportError as error:  # FITS without astropy
        raise InputError(str(error)) from error


class _Cancelled(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class ChatEngine:
    """A loaded model + processor that answers questions about a galaxy, streaming."""

    def __init__(self, model, processor, default_max_new_tokens: int = 128):
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.default_max_new_tokens = default_max_new_tokens
        self.context_length = self._context_length()

    @classmethod
    def from_pretrained(cls, model_id: str | Path, device: str | None = None, dtype: str = "auto", **kwargs) -> "ChatEngine":
        """Load a GZ-LLaVA (or any llava-interface) folder or Hub id with the Auto classes."""
        import gzllava  # noqa: F401  registers GZ-LLaVA with the Auto classes for local folders
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(str(model_id), trust_remote_code=True, dtype=dtype)
        processor = AutoProcessor.from_pretrained(str(model_id), trust_remote_code=True)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device), processor, **kwargs)

    def _context_length(self) -> int:
        config = getattr(self.model.config, "text_config", self.model.config)
        return int(getattr(config, "max_position_embeddings", 0) or 4096)

    # ----------------------------------------------------------------- prompts
    def _inputs(self, conversation: Conversation, question: str, max_new_tokens: int) -> dict:
        """Processor inputs for the next answer; the oldest turns are dropped while the prompt would not fit."""
        conversation = Conversation(conversation.image, list(conversation.turns))
        while True:
            prompt = self.processor.apply_chat_template(
                conversation.messages(question), add_generation_prompt=True, tokenize=False
            )
            inputs = self.processor(images=[conversation.image], text=[prompt], return_tensors="pt")
            length = inputs["input_ids"].shape[1]  # (1, T): image tokens expanded
            if length + max_new_tokens <= self.context_length or not conversation.turns:
                break
            conversation.turns.pop(0)
        if length + max_new_tokens > self.context_length:
            raise InputError(
                f"The image and question take {length} tokens; with {max_new_tokens} new tokens that is over the "
                f"model's context of {self.context_length}. Ask a shorter question or lower 'max new tokens'."
            )
        device = self.model.device
        return {k: (v.to(device, self.model.dtype) if k == "pixel_values" else v.to(device)) for k, v in inputs.items()}

    # ----------------------------------------------------------------- answers
    def stream(
        self,
        conversation: Conversation,
        question: str,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the answer so far (growing text) as tokens arrive; closing the iterator stops generation."""
        question = check_question(question)
        max_new_tokens = self.default_max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        if not 1 <= max_new_tokens <= 4096:
            raise InputError(f"max new tokens must be between 1 and 4096, got {max_new_tokens}.")
        inputs = self._inputs(conversation, question, max_new_tokens)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        cancel = threading.Event()
        sample = temperature is not None and temperature > 0
        kwargs = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
        )
        if sample:
            kwargs.update(temperature=float(temperature), top_p=float(top_p))
        errors: list[BaseException] = []

        def run():
            try:
                with torch.inference_mode():
                    if seed is not None:
                        torch.manual_seed(seed)
                    self.model.generate(**kwargs)
            except BaseException as error:  # noqa: BLE001 -- handed to the reading side
                errors.append(error)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True, name="gzllava-generate")
        worker.start()
        text = ""
        try:
            for piece in streamer:
                text += piece
                yield text.lstrip()
        finally:
            cancel.set()  # the reader stopped (or finished): let generate return at the next token
            worker.join()
        if errors:
            raise errors[0]

    def answer(self, conversation: Conversation, question: str, **kwargs) -> str:
        """The whole answer at once (the last value of `stream`)."""
        text = ""
        for text in self.stream(conversation, question, **kwargs):
            pass
        return text.strip()

