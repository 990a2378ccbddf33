"""Exports of a GZ-LLaVA to where LLaVA users run models: `python -m gzllava.export {llava,gguf,ollama} MODEL OUT`.

- `llava`  (`gzllava.export.llava`): a plain llava-hf folder (`LlavaForConditionalGeneration`), for vLLM and transformers.
- `gguf`   (`gzllava.export.gguf_export`): the language model as GGUF (llama.cpp's own converter) and `mmproj-*.gguf`
           (CLIP tower + mlp projector, written with llama.cpp's `gguf` library) for llama.cpp / llama-cpp-python.
- `ollama` (`gzllava.export.ollama`): the two GGUF files plus a `Modelfile`.
"""

from gzllava.export.llava import save_as_llava, to_llava_config, to_llava_model, to_llava_processor

__all__ = ["save_as_llava", "to_llava_config", "to_llava_model", "to_llava_processor"]
