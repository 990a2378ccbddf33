"""GZ-LLaVA processor: galaxy images + chat text -> model inputs; the chat turn every caller asks with.

Like transformers' `LlavaProcessor`, it alone expands each `<image>` placeholder into the number of image tokens the
model's projector produces (patches, or the resampler's queries, optionally wrapped in begin/end-of-image tokens), and
it holds the chat template. The pixel work is elsewhere: images are read by `image_processing_gzllava.load_image`
(PIL, arrays, paths, URLs, bytes, FITS) with the limits and stretch saved in this processor, resized and normalised
by the wrapped CLIP/SigLIP image processor, then optionally standardised per image (`standardize_pixels`).
`user_turn` / `chat_prompt` build the one-image chat that the evaluation, the chat app, the llama.cpp runtime and
the pipeline ask with.
"""

from PIL import Image
from transformers.processing_utils import ProcessorMixin


try:  # Hub remote code lives in a package (transformers_modules.<repo>); a source checkout imports it top-level
    from .image_processing_gzllava import STRETCHES, LoadOptions, load_image, standardize_pixels
except ImportError:
    from image_processing_gzllava import STRETCHES, LoadOptions, load_image, standardize_pixels


READING = LoadOptions()  # how images are read unless a processor saves other limits or stretch

DEFAULT_PROMPT = "Describe this galaxy's morphology."

# llava-1.5 style turns. `{% generation %}` marks what the assistant says, so TRL's assistant-only loss
# (return_assistant_tokens_mask) trains on the answers only; the leading space sits inside the marker so
# the first answer token is counted.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}"
    "{%- set blocks = [{'type': 'text', 'text': message['content']}] -%}"
    "{%- else -%}{%- set blocks = message['content'] -%}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- for block in blocks if block['type'] == 'text' -%}{{ block['text'] }}{%- endfor -%}{{ '\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ 'USER: ' }}"
    "{%- for block in blocks -%}"
    "{%- if block['type'] == 'image' -%}{{ '<image>\n' }}"
    "{%- elif block['type'] == 'text' -%}{{ block['text'] }}{%- endif -%}"
    "{%- endfor -%}{{ '\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ 'ASSISTANT:' }}{% generation %}"
    "{%- for block in blocks if block['type'] == 'text' -%}{{ ' ' + block['text'] }}{%- endfor -%}"
    "{{ eos_token }}{% endgeneration %}{{ '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)


def user_turn(question: str, n_images: int = 1, image_block: dict | None = None) -> list[dict]:
    """The chat every GZ-LLaVA caller asks with: one user message, `n_images` image blocks, then the question.

    `image_block` replaces the `{"type": "image"}` placeholder (an OpenAI-style `image_url` block for a server).
    """
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, got {type(question).__name__}")
    images = [dict(image_block or {"type": "image"}) for _ in range(n_images)]
    return [{"role": "user", "content": [*images, {"type": "text", "text": question}]}]


def assistant_turn(answer: str) -> dict:
    """The assistant message that answers a `user_turn`."""
    return {"role": "assistant", "content": [{"type": "text", "text": answer}]}


def chat_prompt(processor, question: str = DEFAULT_PROMPT, n_images: int = 1) -> str:
    """The generation prompt for `user_turn(question, n_images)`, rendered with the processor's chat template."""
    return processor.apply_chat_template(user_turn(question, n_images), add_generation_prompt=True, tokenize=False)


class GZLlavaProcessor(ProcessorMixin):
    r"""
    An image processor (CLIP or SigLIP) and a tokenizer with the GZ-LLaVA chat template.

    Args:
        patch_size (`int`): the vision tower's patch size (patch projectors).
        vision_feature_select_strategy (`str`): `"default"` drops the CLS token, `"full"` keeps it (as the model's config).
        num_additional_image_tokens (`int`): tokens the vision tower adds to the patches (CLS: 1).
        num_query_tokens (`int`, *optional*): set for the resampler projector: every image becomes this many tokens.
        image_token / boi_token / eoi_token (`str`): the placeholder and the optional begin/end-of-image delimiters.
        image_standardization (`bool`): standardise each image's pixel values (zero mean, unit variance) after the image
            processor; needed to learn from dark-sky cutouts with an untrained vision tower.
        stretch (`str`): `"lupton"` (default), `"asinh"` or `"percentile"` for FITS and raw array data (16/32-bit PIL
            images always get `"percentile"`). Folders saved with `"asinh"` keep it.
        max_image_pixels (`int`): images with more pixels are refused (no decompression bombs).
        min_image_size (`int`): images with a side shorter than this are refused.
        url_timeout (`float`): seconds allowed for downloading one image URL.
        max_download_bytes (`int`): image downloads larger than this are refused while streaming.
        default_prompt (`str`): the question asked when a pipeline gets an image and no text.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        chat_template=None,
        patch_size=None,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        num_query_tokens=None,
        image_token="<image>",
        boi_token=None,
        eoi_token=None,
        image_standardization=False,
        stretch=READING.stretch,
        max_image_pixels=READING.max_pixels,
        default_prompt=DEFAULT_PROMPT,
        min_image_size=READING.min_size,
        url_timeout=READING.timeout,
        max_download_bytes=READING.max_bytes,
        **kwargs,
    ):
        self.patch_size = patch_size
        self.vision_feature_select_strategy = vision_feature_select_strategy
        self.num_additional_image_tokens = num_additional_image_tokens
        self.num_query_tokens = num_query_tokens
        self.image_token = image_token
        self.boi_token = boi_token
        self.eoi_token = eoi_token
        self.image_standardization = image_standardization
        self.stretch = stretch
        self.max_image_pixels = max_image_pixels
        self.default_prompt = default_prompt
        self.min_image_size = min_image_size
        self.url_timeout = url_timeout
        self.max_download_bytes = max_download_bytes
        if stretch not in STRETCHES:
            raise ValueError(f"GZLlavaProcessor stretch={stretch!r}: expected one of {', '.join(map(repr, STRETCHES))}.")
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"The tokenizer has no {image_token!r} token: compose the model with gzllava.compose to add it.")
        if patch_size is None and num_query_tokens is None:
            raise ValueError("GZLlavaProcessor needs patch_size (patch projectors) or num_query_tokens (resampler).")
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHAT_TEMPLATE)

    def num_image_tokens(self, height: int, width: int) -> int:
        """`<image>` tokens for one image of the processed size (without boi/eoi)."""
        if self.num_query_tokens is not None:
            return self.num_query_tokens
        count = (height // self.patch_size) * (width // self.patch_size) + self.num_additional_image_tokens
        return count - 1 if self.vision_feature_select_strategy == "default" else count

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        height, width = image_inputs["pixel_values"][image_idx].shape[-2:]
        tokens = self.image_token * self.num_image_tokens(height, width)
        return f"{self.boi_token}{tokens}{self.eoi_token}" if self.boi_token else tokens

    def load_image(self, image, timeout: float | None = None) -> Image.Image:
        """One image (any input `load_image` reads) as RGB, with this processor's stretch, size and download limits."""
        return load_image(
            image,
            stretch=self.stretch,
            max_pixels=self.max_image_pixels,
            min_size=self.min_image_size,
            timeout=self.url_timeout if timeout is None else timeout,
            max_bytes=self.max_download_bytes,
        )

    def _load(self, images):
        """Nested lists of any supported image input -> the same nesting of RGB PIL images."""
        if isinstance(images, (list, tuple)):
            return [self._load(image) for image in images]
        return self.load_image(images)

    def __call__(self, images=None, text=None, **kwargs):
        if images is not None:
            images = self._load(images)
            texts = [text] if isinstance(text, str) else text
            if texts is not None and isinstance(images, list) and len(images) == len(texts):
                for index, (sample_images, sample_text) in enumerate(zip(images, texts)):
                    n_images = len(sample_images) if isinstance(sample_images, list) else 1
                    n_placeholders = sample_text.count(self.image_token)
                    if isinstance(sample_images, list) and n_images != n_placeholders:
                        raise ValueError(
                            f"Sample {index} has {n_images} image(s) but {n_placeholders} {self.image_token} "
                            "placeholder(s) in its text: each image needs exactly one placeholder."
                        )
        # ProcessorMixin refuses a truncation that cuts image tokens ("Mismatch in `image` token count ...").
        inputs = super().__call__(images=images, text=text, **kwargs)
        if images is not None and "pixel_values" in inputs and self.image_standardization:
            inputs["pixel_values"] = standardize_pixels(inputs["pixel_values"])
        return inputs

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values"]

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' `save_pretrained` (auto_map + this file, as for any registered custom processor), with the
        tokenizer saved for inference: left padding (batched generation, pipelines: a row's answer must not change
        with the batch; training collators such as TRL's pass `padding_side="right"` per call) and no truncation or
        padding state left in tokenizer.json by an earlier call (users would get truncated prompts)."""
        tokenizer = self.tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            backend.no_truncation()
            backend.no_padding()
        saved_state = tokenizer.padding_side, dict(tokenizer.init_kwargs)
        tokenizer.padding_side = tokenizer.init_kwargs["padding_side"] = "left"  # init_kwargs are what gets written
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            tokenizer.padding_side, tokenizer.init_kwargs = saved_state


# Saving a processor writes its auto_map entry and this file (transformers' custom-code mechanism).
GZLlavaProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["CHAT_TEMPLATE", "DEFAULT_PROMPT", "GZLlavaProcessor", "assistant_turn", "chat_prompt", "user_turn"]
