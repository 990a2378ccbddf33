"""Does llama.cpp answer as transformers does? Greedy tokens of an exported GGUF pair against the original model.

Two references, both from the transformers model that was exported:

- `transformers`: `model.generate` on the processor's inputs (what users of the HF model get);
- `transformers_llama_cpp_order`: the same model, but its image features computed the way the LLaVA-1.5 clip graph of
  the llama.cpp that llama-cpp-python 0.3.36 vendors computes them: the class embedding is appended AFTER the patch
  embeddings (`tools/mtmd/models/llava.cpp:36`), position embedding row i is added to sequence row i (`:43`,
  `clip.cpp:5195`), and rows 1..n are kept (`llava.cpp:160`, `clip.cpp:5205`), so patch 0 is dropped, every patch
  gets its neighbour's position embedding and the CLS output is the last image token (llama.cpp issue #25814, fix in
  PR #25844). No mmproj can undo this: the kept rows hold n-1 patches and the CLS token whatever the weights are.

`image_embedding_gaps` measures which of the two a runtime computes (llama.cpp's image embeddings against both
references' image features); `agreement(...)` counts images whose first `max_new_tokens` greedy tokens are identical
(stopping at the stop token) and reports those gaps.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gzllava.export.runtime import LlamaCppGZLlava
from processing_gzllava import chat_prompt


def _inputs(processor, image, question):
    return processor(images=image, text=chat_prompt(processor, question), return_tensors="pt")


def _generated(ids: list[int], eos_ids: set[int], n: int) -> list[int]:
    out = []
    for token in ids:
        if token in eos_ids:
            break
        out.append(token)
    return out[:n]


def _eos_ids(model) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()


@torch.no_grad()
def transformers_greedy(model, processor, image, question: str, max_new_tokens: int = 20) -> list[int]:
    """transformers' greedy continuation (token ids, without the stop token)."""
    inputs = _inputs(processor, image, question)
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return _generated(output[0, inputs["input_ids"].shape[1]:].tolist(), _eos_ids(model), max_new_tokens)


@torch.no_grad()
def llama_cpp_order_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """Image features as llama.cpp's LLaVA clip graph orders them: [1, n_patches, text_hidden] (see module docstring)."""
    tower = model.model.vision_tower
    embeddings = tower.embeddings
    patches = embeddings.patch_embedding(pixel_values.to(embeddings.patch_embedding.weight.dtype))  # [1,D,h,w]
    patches = patches.flatten(2).transpose(1, 2)  # [1,n,D]
    n = patches.shape[1]
    cls = embeddings.class_embedding.expand(patches.shape[0], 1, -1)  # [1,1,D]
    hidden = torch.cat([patches, cls], dim=1) + embeddings.position_embedding.weight[: n + 1]  # [1,n+1,D]
    hidden = tower.pre_layrnorm(hidden)
    states = [hidden]  # hidden_states[0] = embeddings, then one per encoder layer: [1,n+1,D] each
    for layer in tower.encoder.layers:
        output = layer(states[-1], None)
        states.append(output[0] if isinstance(output, tuple) else output)
    layers = model.config.vision_feature_layer
    layers = layers if isinstance(layers, list) else [layers]
    selected = torch.cat([states[layer] for layer in layers], dim=-1)[:, 1:]  # rows 1..n, [1,n,D*len(layers)]
    return model.model.multi_modal_projector(selected)  # [1,n,text_hidden]


@torch.no_grad()
def transformers_image_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """transformers' own image features (`get_image_features`): [1, n_patches, text_hidden]."""
    config = model.config
    output = model.model.get_image_features(pixel_values, vision_feature_layer=config.vision_feature_layer,
                                            vision_feature_select_strategy=config.vision_feature_select_strategy)
    return output.pooler_output[0][None]


IMAGE_FEATURES = {"transformers": transformers_image_features, "transformers_llama_cpp_order": llama_cpp_order_features}


def image_embedding_gaps(runtime: LlamaCppGZLlava, model, processor, image) -> dict[str, float]:
    """{reference: max |llama.cpp's image embeddings - the reference's image features|} for one PIL `image`."""
    pixel_values = _inputs(processor, image, "")["pixel_values"]
    embeddings = torch.from_numpy(runtime.image_embeddings(image))  # [n_patches, text_hidden]
    return {name: float((embeddings - features(model, pixel_values)[0]).abs().max())
            for name, features in IMAGE_FEATURES.items()}


def computed_reference(gaps: dict[str, float], rtol: float = 1e-2) -> str | None:
    """The reference whose image features llama.cpp reproduces (gap <= rtol x the other gap), None if neither."""
    near, far = sorted(gaps, key=gaps.get)
    return near if gaps[near] <= rtol * gaps[far] else None


@torch.no_grad()
def transformers_greedy_llama_cpp_order(model, processor, image, question: str, max_new_tokens: int = 20) -> list[int]:
    """transformers' greedy continuation with the image features in llama.cpp's CLIP order."""
    inputs = _inputs(processor, image, question)
    input_ids = inputs["input_ids"]
    embeds = model.get_input_embeddings()(input_ids)  # [1,T,H]
    features = llama_cpp_order_features(model, inputs["pixel_values"])
    mask = input_ids[0] == model.config.image_token_id
    embeds[0, mask] = features[0].to(embeds.dtype)
    output = model.generate(inputs_embeds=embeds, attention_mask=inputs["attention_mask"], max_new_tokens=max_new_tokens,
                            do_sample=False)
    return _generated(output[0].tolist(), _eos_ids(model), max_new_tokens)


GREEDY = {"transformers": transformers_greedy, "transformers_llama_cpp_order": transformers_greedy_llama_cpp_order}


def agreement(model, processor, export_dir, images, question: str = "Describe this galaxy's morphology.",
              types=("f32", "f16", "q8_0"), max_new_tokens: int = 20, n_threads: int | None = None) -> dict:
    """{type: {"transformers": k, "transformers_llama_cpp_order": k, "images": n, "image_embeddings_max_abs_diff":
    {reference: gap on the first image}}} over `images` (PIL)."""
    import json

    export_dir = Path(export_dir)
    manifest = json.loads((export_dir / "gguf_export.json").read_text(encoding="utf-8"))
    references = {name: [greedy(model, processor, image, question, max_new_tokens) for image in images]
                  for name, greedy in GREEDY.items()}
    results = {}
    for outtype in types:
        mmproj = manifest["mmproj"].get("f32" if outtype == "f32" else "f16") or next(iter(manifest["mmproj"].values()))
        runtime = LlamaCppGZLlava(export_dir / manifest["language_models"][outtype], export_dir / mmproj,
                                  n_threads=n_threads, suppress_token_ids=manifest["suppress_token_ids"])
        try:
            answers = [runtime.answer(image, question, max_new_tokens)[1] for image in images]
            gaps = image_embedding_gaps(runtime, model, processor, images[0])
        finally:
            runtime.close()
        results[outtype] = {name: sum(a == r for a, r in zip(answers, refs)) for name, refs in references.items()}
        results[outtype].update(images=len(images), image_embeddings_max_abs_diff=gaps)
    return results
