"""The README.md written into each export folder: what the files are and the exact commands to run them."""

from __future__ import annotations


def _image_question() -> str:
    return "Describe this galaxy's morphology."


def llava_readme(name: str, image_token_id: int) -> str:
    return f"""# {name} (llava-hf format)

A plain `LlavaForConditionalGeneration` checkpoint of a GZ-LLaVA model (no remote code), with the same logits.

```python
from transformers import AutoProcessor, LlavaForConditionalGeneration
model = LlavaForConditionalGeneration.from_pretrained(".")
processor = AutoProcessor.from_pretrained(".")
```

## vLLM (OpenAI-compatible server)

```bash
vllm serve . --chat-template chat_template.jinja --served-model-name {name}
curl http://localhost:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{{"model": "{name}",
  "messages": [{{"role": "user", "content": [{{"type": "image_url", "image_url": {{"url": "https://example.org/galaxy.jpg"}}}},
  {{"type": "text", "text": "{_image_question()}"}}]}}], "temperature": 0}}'
```

The model never writes the image token itself (id {image_token_id}); pass `"logit_bias": {{"{image_token_id}": -100}}` if a
sampler should exclude it as transformers' `suppress_tokens` does.
"""


def gguf_readme(manifest: dict) -> str:
    name = manifest["name"]
    lms = manifest["language_models"]
    lm = lms.get("f16") or next(iter(lms.values()))
    mmproj = manifest["mmproj"].get("f16") or next(iter(manifest["mmproj"].values()))
    rows = "\n".join(f"| `{file}` | {info['bytes'] / 1e6:.1f} MB |" for file, info in manifest["files"].items())
    bias = manifest["image_token_id"]
    return f"""# {name} (GGUF for llama.cpp)

| file | size |
|---|---:|
{rows}

`{name}-<type>.gguf` is the language model (llama.cpp's converter), `mmproj-{name}-<type>.gguf` the CLIP tower and
the LLaVA `mlp` projector. The chat template and the stop token (`{manifest['eos_token']}`) are in the GGUF. Images
are resized to {manifest['image_size']} px and become {manifest['image_tokens']} embeddings. The image token (id {bias})
is never meant to be generated: exclude it with a logit bias.

## llama.cpp

```bash
llama-mtmd-cli -m {lm} --mmproj {mmproj} --image galaxy.jpg -p "{_image_question()}" --temp 0 --logit-bias {bias}-inf
llama-server -m {lm} --mmproj {mmproj} --host 127.0.0.1 --port 8080
```

## llama-cpp-python (OpenAI-compatible endpoint)

```bash
pip install "llama-cpp-python[server]"
python -m llama_cpp.server --model {lm} --clip_model_path {mmproj} --chat_format mtmd --host 127.0.0.1 --port 8000
```

```python
from openai import OpenAI
client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
reply = client.chat.completions.create(model="{name}", temperature=0, logit_bias={{"{bias}": -100}}, messages=[
    {{"role": "user", "content": [{{"type": "image_url", "image_url": {{"url": "data:image/png;base64,..."}}}},
                                 {{"type": "text", "text": "{_image_question()}"}}]}}])
print(reply.choices[0].message.content)
```
"""


def ollama_readme(manifest: dict, model_name: str) -> str:
    return gguf_readme(manifest) + f"""
## Ollama

```bash
ollama create {model_name} -f Modelfile
ollama run {model_name} "{_image_question()} ./galaxy.jpg"
```

`Modelfile` names both GGUF files (two `FROM` lines), GZ-LLaVA's prompt template and its stop strings.
"""
