"""Run an exported GZ-LLaVA GGUF pair in llama.cpp (through llama-cpp-python) and answer about a galaxy image.

`LlamaCppGZLlava(model_gguf, mmproj_gguf)` loads both files with llama-cpp-python's `MTMDChatHandler` (mtmd, the
multimodal library of current llama.cpp, with the prompt format the GGUF carries) and answers greedily; the token ids
it chose are recorded so they can be compared with transformers'. `check_gguf` reads a GGUF's header and tensor table
first, so a broken or truncated file fails with its name and what is wrong instead of crashing the runtime.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np


class GGUFFileError(ValueError):
    """A file that is not a complete GGUF."""


def check_gguf(path: str | os.PathLike) -> dict:
    """Parse `path` with llama.cpp's gguf reader; raise GGUFFileError when it is not a GGUF or is cut short."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise GGUFFileError(f"{path}: no such GGUF file")
    size = path.stat().st_size
    try:
        reader = gguf.GGUFReader(path)
    except Exception as error:  # the reader raises ValueError, IndexError, struct errors... on a damaged header
        raise GGUFFileError(f"{path}: not a readable or complete GGUF file ({type(error).__name__}: {error})") from error
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise GGUFFileError(f"{path}: truncated GGUF ({size} bytes, its tensors need {end})")
    arch = reader.fields.get("general.architecture")
    return {
        "architecture": bytes(arch.parts[arch.data[0]]).decode() if arch else None,
        "tensors": len(reader.tensors),
        "bytes": size,
    }


def image_data_uri(image) -> str:
    """A PNG data URI for a PIL image (what an OpenAI-style `image_url` carries)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def chat_messages(image_url: str, question: str) -> list[dict]:
    from processing_gzllava import user_turn

    return user_turn(question, image_block={"type": "image_url", "image_url": {"url": image_url}})


class LlamaCppGZLlava:
    """An exported GZ-LLaVA (language-model GGUF + mmproj GGUF) in llama.cpp."""

    def __init__(self, model_gguf, mmproj_gguf, n_ctx: int = 2048, n_threads: int | None = None,
                 suppress_token_ids: list[int] = (), verbose: bool = False):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import MTMDChatHandler

        for path in (model_gguf, mmproj_gguf):
            check_gguf(path)
        self.handler = MTMDChatHandler(clip_model_path=str(mmproj_gguf), verbose=verbose, use_gpu=False)
        self.llm = Llama(
            model_path=str(model_gguf), chat_handler=self.handler, n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(),
            n_threads_batch=n_threads or os.cpu_count(), n_batch=512, verbose=verbose, seed=0,
        )
        self.suppress = list(suppress_token_ids)
        self.verbose = verbose

    def answer(self, image, question: str, max_tokens: int = 20, ignore_eos: bool = False) -> tuple[str, list[int]]:
        """Greedy answer to `question` about a PIL `image`: (text, generated token ids, without the stop token).

        The chat handler renders the GGUF's chat template and evaluates text and image chunks (mtmd); then each step
        takes the argmax of the last logits (the suppressed ids excluded) and feeds it back, exactly as greedy search.
        """
        from llama_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=self.verbose):  # mtmd logs every chunk it adds
            self.llm.create_chat_completion(
                messages=chat_messages(image_data_uri(image), question), max_tokens=1, temperature=0.0,
            )
        stop = set() if ignore_eos else set(self._eog_ids())
        ids: list[int] = []
        for _ in range(max_tokens):
            logits = self._last_logits()  # [n_vocab]
            logits[self.suppress] = -np.inf
            token = int(np.argmax(logits))
            if token in stop:
                break
            ids.append(token)
            self.llm.eval([token])
        text = self.llm.detokenize(ids).decode("utf-8", errors="replace")
        return text, ids

    def image_embeddings(self, image) -> np.ndarray:
        """What mtmd feeds the language model for `image`: [n_image_tokens, text_hidden] (a copy)."""
        from llama_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=self.verbose):
            return self._image_embeddings(image)

    def _image_embeddings(self, image) -> np.ndarray:
        import ctypes

        import llama_cpp.mtmd_cpp as mtmd

        handler = self.handler
        handler._init_mtmd_context(self.llm)
        bitmap = handler._create_bitmap_from_bytes(base64.b64decode(image_data_uri(image).split(",", 1)[1]))
        chunks = mtmd.mtmd_input_chunks_init()
        try:
            text = mtmd.mtmd_input_text()
            marker = mtmd.mtmd_default_marker()
            text.text, text.text_len, text.add_special, text.parse_special = marker, len(marker), False, True
            bitmaps = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
            if mtmd.mtmd_tokenize(handler.mtmd_ctx, chunks, ctypes.byref(text), bitmaps, 1) != 0:
                raise RuntimeError("mtmd could not tokenize the image")
            for index in range(mtmd.mtmd_input_chunks_size(chunks)):
                chunk = mtmd.mtmd_input_chunks_get(chunks, index)
                if mtmd.mtmd_input_chunk_get_type(chunk) != mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    continue
                n_tokens = mtmd.mtmd_input_chunk_get_n_tokens(chunk)
                if mtmd.mtmd_encode_chunk(handler.mtmd_ctx, chunk) != 0:
                    raise RuntimeError("mtmd could not encode the image")
                n_embd = self.llm.n_embd()
                output = mtmd.mtmd_get_output_embd(handler.mtmd_ctx)
                return np.ctypeslib.as_array(output, shape=(n_tokens * n_embd,)).reshape(n_tokens, n_embd).copy()
            raise RuntimeError("mtmd produced no image chunk")
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            mtmd.mtmd_bitmap_free(bitmap)

    def _last_logits(self) -> np.ndarray:
        """The logits llama.cpp computed for the last token it evaluated (a copy), [n_vocab]."""
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.llm.n_vocab(),)).astype(np.float32)

    def _eog_ids(self) -> list[int]:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        return [i for i in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]

    def close(self) -> None:
        self.llm.close()
