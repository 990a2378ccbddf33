"""GZ-LLaVA's prompt format for the runtimes: a Jinja template for the GGUF and a Go template for Ollama's Modelfile.

transformers renders `USER: <image>\\n{question}\\nASSISTANT:` and expands `<image>` into one token per image patch.
llama.cpp's mtmd (llama-server, llama-mtmd-cli, llama-cpp-python's MTMDChatHandler) replaces each image part of a chat
message by a text part holding its media marker `<__media__>` and puts the image embeddings where the marker is; so
the GGUF template writes `<__media__>\\n` where ours writes `<image>\\n` and the runtime sees the same token sequence.
"""

from __future__ import annotations

from gzllava.export.errors import ExportError

MEDIA_MARKER = "<__media__>"  # mtmd_default_marker()
IMAGE_BLOCK = "{%- if block['type'] == 'image' -%}{{ '<image>\n' }}"
GGUF_IMAGE_BLOCK = (
    "{%- if block['type'] in ['image', 'image_url'] or (block['type'] == 'text' and block['text'] == '" + MEDIA_MARKER
    + "') -%}{{ '" + MEDIA_MARKER + "\n' }}"
)


def gguf_chat_template(chat_template: str) -> str:
    """The processor's chat template with image blocks written as mtmd's media marker."""
    if IMAGE_BLOCK not in chat_template:
        raise ExportError(
            "the processor's chat_template does not place images as GZ-LLaVA's template does "
            f"({IMAGE_BLOCK!r}); export a model saved with GZ-LLaVA's chat template."
        )
    return chat_template.replace(IMAGE_BLOCK, GGUF_IMAGE_BLOCK)


def ollama_template(eos_token: str) -> str:
    """The same turns as Ollama's Go template (Ollama puts its image placeholders in the user message content)."""
    return (
        "{{- if .System }}{{ .System }}\n{{ end }}"
        "{{- range .Messages }}"
        "{{- if eq .Role \"user\" }}USER: {{ .Content }}\n"
        "{{ else if eq .Role \"assistant\" }}ASSISTANT: {{ .Content }}" + eos_token + "\n"
        "{{ end }}{{- end }}ASSISTANT:"
    )
