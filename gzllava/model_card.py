"""The README.md model card of a GZ-LLaVA Hub repository (YAML metadata + usage), and its `model-index`
with an evaluation's results (`update_model_card`, for `evaluate_gzllava.py --update-model-card`).

A card is meant to be pushed: what it quotes about the run (`card_safe`) names local files relative to the
project (or, outside it, by their name only, as `<local>/name`), never the user's home or temporary folders,
and carries no credentials (URL user-info, Hub/OpenAI/GitHub tokens, values of `*_token`/`*password`/
`*secret`/`*api_key` keys and flags).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from dataset_builder.redaction import is_secret_name, redact_secrets, strip_url_credentials


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


PROJECT_ROOT = Path(__file__).resolve().parents[1]
REDACTED = "<redacted>"
LOCAL_PREFIX = "<local>/"


def redact(text: str) -> str:
    """`text` without URL user-info (`https://user:pass@host` -> `https://host`, the URL stays usable) and with
    the other credentials `dataset_builder.redaction` knows (tokens, secret options and parameters) as <redacted>."""
    return redact_secrets(strip_url_credentials(text), mask=REDACTED)


def portable_path(value: str) -> str:
    """A local path as the card may show it: relative to the project (or the working folder) when inside it,
    else `<local>/<name>`; Hub ids, URLs and relative paths that do not exist are returned unchanged."""
    if not value or "://" in value or value.startswith(LOCAL_PREFIX):
        return value
    path = Path(value).expanduser()
    if not (path.is_absolute() or value.startswith("~") or path.exists()):
        return value
    resolved = Path(os.path.abspath(path))  # ".." folded, symlinks kept (a linked data/ stays data/)
    for root in (PROJECT_ROOT, Path.cwd()):
        try:
            relative = resolved.relative_to(os.path.abspath(root)).as_posix()
        except ValueError:
            continue
        return relative if relative != "." else root.name
    return LOCAL_PREFIX + resolved.name


def card_safe(value, key: str | None = None):
    """`value` (dicts, lists, strings, ...) with secrets redacted and local paths made portable, recursively."""
    if key is not None and is_secret_name(key) and value not in (None, False, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {k: card_safe(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [card_safe(v) for v in value]
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return portable_path(redact(value))
    return value


def card_command(argv: list[str], program: str = "train_sft.py") -> str:
    """A command line for the card: secret flag values redacted (`--hub_token X`, `--api-key=X`), paths portable."""
    out, hide_next = [f"python {program}"], False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            out.append(f"{name}={REDACTED if is_secret_name(name) else card_safe(value)}")
            continue
        if arg.startswith("--") and is_secret_name(arg):
            hide_next = True
        out.append(shlex.quote(card_safe(arg)))
    return " ".join(out)


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


# ----------------------------------------------------------------------- evaluation results
def eval_results(metrics: dict):
    """`huggingface_hub.EvalResult`s of the model (not the baselines) in an evaluation's metrics.json (as
    `evaluate_gzllava.py` writes it), for the card's model-index."""
    es = metrics["eval_set"]
    settings = metrics["settings"]
    # a local dataset folder is named as the card names local paths (relative to the project, or <local>/name)
    dataset_type = portable_path(settings.get("dataset_name") or "") or es["name"]
    common = dict(task_type="image-text-to-text", task_name="Galaxy morphology", dataset_type=dataset_type,
                  dataset_name=es["name"], dataset_config=settings.get("dataset_config"),
                  dataset_split=settings.get("split") if settings.get("dataset_name") or settings.get("catalogue") else None)
    model = metrics["models"]["model"]
    entries: list[tuple[str, str, Any]] = []
    if "morphology" in model:
        for method in ("generation", "likelihood"):
            overall = model["morphology"][method]["overall"]
            entries.append(("accuracy", f"decision-tree accuracy ({method})", overall.get("accuracy")))
            entries.append(("f1", f"decision-tree mean macro-F1 ({method})", overall.get("mean_macro_f1")))
        entries.append(("brier", "decision-tree Brier score vs vote fractions",
                        model["morphology"]["likelihood"]["overall"].get("brier")))
    names = {"bleu4": ("bleu", "BLEU-4"), "rouge_l": ("rouge", "ROUGE-L"), "meteor": ("meteor", "METEOR"),
             "cider": ("cider", "CIDEr")}
    for key, (metric_type, label) in names.items():
        if key in model.get("descriptions", {}):
            entries.append((metric_type, label, model["descriptions"][key]))
    if "retrieval" in model:
        for direction in ("image_to_text", "text_to_image"):
            entries.append(("recall", f"{direction.replace('_', '->')} top-5% retrieval", model["retrieval"][direction]["top_5%"]))
    if "hallucination" in model:
        entries.append(("hallucination_rate", "contradicted-feature rate", model["hallucination"]["contradiction_rate"]))
    return [EvalResult(metric_type=t, metric_name=n, metric_value=round(float(v), 4), **common)
            for t, n, v in entries if v is not None and math.isfinite(float(v))]


def update_model_card(model: str, metrics: dict) -> str:
    """Put the results into the model card's `model-index` (replacing earlier results on the
    same dataset/config/split). A local folder's README.md is edited in place; a Hub repo's card
    is pushed back with `huggingface_hub`. Returns where the card went."""
    from gzllava.evaluation.report import jsonable

    results = eval_results(jsonable(metrics))
    folder = Path(model)
    if folder.is_dir():
        path = folder / "README.md"
        card = ModelCard.load(path) if path.is_file() else ModelCard.from_template(ModelCardData())
    else:
        card = ModelCard.load(model)
    keep = [r for r in (card.data.eval_results or [])
            if (r.dataset_type, r.dataset_config, r.dataset_split) != (results[0].dataset_type, results[0].dataset_config,
                                                                      results[0].dataset_split)] if results else []
    card.data.eval_results = keep + results
    card.data.model_name = card.data.model_name or folder.name
    if folder.is_dir():
        card.save(path)
        return str(path)
    card.push_to_hub(model, commit_message="Add evaluation results (evaluate_gzllava.py)")
    return f"hub:{model}"
