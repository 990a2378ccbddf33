"""Tiny GZ-LLaVA models built offline: `--model_name_or_path tiny`, the CPU demo, tests and benchmarks.

No CLIP/SigLIP weights exist offline, so the vision tower is a small random CLIP (or SigLIP) and the
LM a small random Llama; the tokenizer is a byte-level BPE trained here on Galaxy Zoo vocabulary, so
every string encodes and common galaxy words are single tokens.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from .compose import ComposeSettings, compose_gzllava


# A resampler of the tiny model reads its 16 patches into 4 queries.
TINY_SETTINGS = ComposeSettings(num_query_tokens=4)


GALAXY_CORPUS = """
Describe this galaxy's morphology. What do you see in this image? Is the galaxy simply smooth and rounded,
with no sign of a disk? Could this be a disk viewed edge-on? Is there any sign of a bar feature through the
centre of the galaxy? Is there any sign of a spiral arm pattern? How prominent is the central bulge, compared
with the rest of the galaxy? How tightly wound do the spiral arms appear? How many spiral arms are there?
Does the galaxy have a bulge at its centre? How rounded is it? Is the galaxy currently merging or is there any
sign of tidal debris? Do you see any of these odd features in the image? Smooth. Features or disk. Star or
artifact. Yes. No. Bar. No bar. Spiral. No spiral. No bulge. Obvious. Dominant. Tight. Medium. Loose. 1 2 3 4.
More than 4. Rounded. Boxy. Completely round. In between. Cigar shaped. Merging. Tidal debris. Both. Neither.
None. Ring. Lens or arc. Irregular. Other. Dust lane. Overlapping. Most volunteers said, probably, possibly,
confident, uncertain, about half of the volunteers. This is a smooth elliptical galaxy, a barred spiral galaxy
with two loose arms and an obvious bulge, an edge-on disk with a dust lane, a merger with tidal tails, a ring
galaxy, a bright foreground star, an artefact, a satellite trail. The galaxy looks red, blue, faint, bright,
compact, extended, round, elongated, disturbed, clumpy. Galaxy Zoo volunteers, Talk comments, hashtags.
"""


def tiny_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A byte-level BPE (GPT-2 style) trained on Galaxy Zoo words; bos `<s>`, eos `</s>`, pad `<pad>`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([GALAXY_CORPUS] * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def tiny_vision_tower(kind: str = "clip", image_size: int = 32, patch_size: int = 8, hidden_size: int = 32, layers: int = 2):
    """A random CLIP or SigLIP vision tower of the given (small) shape."""
    shape = dict(
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
    )
    if kind == "clip":
        return CLIPVisionModel(CLIPVisionConfig(**shape))
    if kind == "siglip":
        return SiglipVisionModel(SiglipVisionConfig(**shape))
    raise ValueError(f"Unknown vision tower kind {kind!r}: expected 'clip' or 'siglip'.")


def tiny_language_model(vocab_size: int, hidden_size: int = 64, layers: int = 2, tie_word_embeddings: bool = False):
    """A random Llama causal LM of the given (small) shape."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=tie_word_embeddings,
    )
    return LlamaForCausalLM(config)


def tiny_model_and_processor(
    projector_type: str | None = None,
    seed: int = 0,
    vision: str = "clip",
    image_size: int = 32,
    patch_size: int = 8,
    vision_hidden_size: int = 32,
    text_hidden_size: int = 64,
    layers: int = 2,
    settings: ComposeSettings = TINY_SETTINGS,
    **compose_kwargs,
):
    """A composed tiny GZ-LLaVA `(model, processor)`; deterministic for a given seed. 32 px CLIP, patch 8 -> 16 tokens.

    `projector_type` and other keywords naming a `ComposeSettings` field override `settings`, as in `compose_gzllava`.
    """
    import torch

    if projector_type is not None:
        compose_kwargs["projector_type"] = projector_type
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    vision_model = tiny_vision_tower(vision, image_size, patch_size, vision_hidden_size, layers)
    language_model = tiny_language_model(len(tokenizer), text_hidden_size, layers)
    model, processor = compose_gzllava(
        vision_model,
        language_model,
        tokenizer=tokenizer,
        settings=settings,
        resampler_num_heads=4,
        seed=seed,
        **compose_kwargs,
    )
    return model.eval(), processor


def toy_galaxy(seed: int = 0, size: int = 48):
    """A small RGB cutout for tests: a red core and a bluer elongated disk on a noisy dark sky."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size / 2 + rng.normal(0, 2, 2)[:, None, None]
    radius = np.hypot(x, y * rng.uniform(1, 2.5))
    core, disk = np.exp(-radius / 2.0), np.exp(-radius / 8.0)
    rgb = np.stack([core + 0.5 * disk, 0.8 * core + 0.6 * disk, 0.5 * core + 0.7 * disk], -1)
    rgb = rgb + rng.normal(0.03, 0.01, rgb.shape)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
