"""A tiny stock llava-hf model + processor built from configs, for the evaluation tests.

The harness must work for ANY llava-interface model, so its tests run it on stock
`LlavaForConditionalGeneration` as well as on the project's own model (`gzllava.tiny`).
Everything is built locally: a word-level tokenizer over a small vocabulary, random weights.
"""

from __future__ import annotations

import re

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

# Stock llava-1.5 style template; the assistant turn ends with eos like the project's template.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{{ '\n' }}{% else %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

WORDS = (
    "the a an is there any sign of galaxy galaxies smooth rounded with no disk features or star artifact "
    "could this be viewed edge on yes bar feature through centre spiral arm arms pattern how prominent central "
    "bulge compared rest obvious dominant tightly wound do appear tight medium loose many are 1 2 3 4 more than "
    "boxy completely round in between cigar shaped currently merging tidal debris both neither odd ring lens arc "
    "irregular other dust lane overlapping none describe what you see image it has two bright blue red faint "
    "elliptical redshift i cannot sorry most volunteers answer"
).split()


def build_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:"]
    punctuation = list(".,:;!?'\"()-—%\n")
    vocab = {token: i for i, token in enumerate(dict.fromkeys(specials + punctuation + WORDS))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", "USER:", "ASSISTANT:"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def tiny_stock_llava(seed: int = 0, image_size: int = 32, patch_size: int = 8):
    """(model, processor): CLIP vision hidden 32 + Llama hidden 64, 2 layers each, random weights."""
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=image_size, patch_size=patch_size, projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    config.pad_token_id = tokenizer.pad_token_id
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=patch_size,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    return model, processor


def token_id(processor, word: str) -> int:
    return processor.tokenizer.convert_tokens_to_ids(re.sub(r"\s", "", word.lower()))
