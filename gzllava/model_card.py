"""The README.md model card of a GZ-LLaVA Hub repository (YAML metadata + usage)."""

from __future__ import annotations

import json

from huggingface_hub import ModelCard, ModelCardData


USAGE = """\
```python
from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline

model = AutoModelForImageTextToText.from_pretrained("{repo_id}", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("{repo_id}", trust_remote_code=True)

# An image alone: the repository's image-to-text pipeline asks "{default_prompt}"
describe = pipeline("image-to-text", model="{repo_id}", trust_remote_code=True)
describe("galaxy.jpg")

# A conversation
chat = pipeline("image-text-to-text", model="{repo_id}", trust_remote_code=True)
messages = [{{"role": "user", "content": [{{"type": "image", "url": "galaxy.jpg"}},
                                        {{"type": "text", "text": "Is there any sign of a spiral arm pattern?"}}]}}]
chat(text=messages, max_new_tokens=64)
```
"""


def build_model_card(
    config,
    repo_id: str = "org/gz-llava",
    base_models: list[str] | None = None,
    datasets: list[str] | None = None,
    license: str = "apache-2.0",
    default_prompt: str = "Describe this galaxy's morphology.",
    training: dict | None = None,
    metrics_table: str | None = None,
    training_curve: str | None = None,
) -> ModelCard:
    """A model card: metadata for the Hub (pipeline tag, library, base models, datasets, licence) and how to use it."""
    data = ModelCardData(
        pipeline_tag="image-text-to-text",
        library_name="transformers",
        license=license,
        tags=["galaxy-zoo", "astronomy", "llava", "vision-language", "custom_code", "image-to-text"],
        base_model=base_models or None,
        datasets=datasets or ["org/gz-talk-instruct"],
        language=["en"],
    )
    vision, text = config.vision_config, config.text_config
    architecture = (
        f"- vision tower: `{vision.model_type}` (hidden {vision.hidden_size}, {vision.num_hidden_layers} layers, "
        f"{vision.image_size} px, patch {vision.patch_size})\n"
        f"- projector: `{config.projector_type}`, {config.num_image_tokens} image tokens per image"
        + (" wrapped in `<boi>`/`<eoi>`" if config.use_image_delimiters else "")
        + f"\n- language model: `{text.model_type}` (hidden {text.hidden_size}, {text.num_hidden_layers} layers, "
        f"vocabulary {text.vocab_size})\n"
    )
    sections = [
        f"# GZ-LLaVA: {repo_id}\n",
        "A LLaVA-style vision-language model for Galaxy Zoo: it describes galaxy images and answers the Galaxy Zoo "
        "decision-tree questions (smooth or featured, edge-on, bar, spiral arms, bulge, mergers, odd features).\n",
        "## Usage\n",
        USAGE.format(repo_id=repo_id, default_prompt=default_prompt),
        "## Architecture\n",
        architecture,
        "The weights use llava-hf's layout: with a `linear` or `mlp2x_gelu` projector, `gzllava.llava_export` "
        "writes a plain `LlavaForConditionalGeneration` checkpoint (for vLLM, llama.cpp, Ollama).\n",
    ]
    if training:
        sections += ["## Training\n", "```json\n" + json.dumps(training, indent=2, default=str) + "\n```\n"]
    if training_curve:
        sections += [f"![training loss]({training_curve})\n"]
    if metrics_table:
        sections += ["## Evaluation\n", metrics_table + "\n"]
    sections += [
        "## Limitations\n",
        "Trained on volunteer comments and vote fractions: it describes what is visible, not physical quantities "
        "(redshift, distance, mass). Check answers against the Galaxy Zoo catalogues before scientific use.\n",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(sections))
