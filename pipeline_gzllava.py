"""`pipeline("image-to-text", model=<gz-llava repo>, trust_remote_code=True)(image)` describes a galaxy.

In transformers 5, "image-to-text" became an alias of "image-text-to-text", which refuses a call
without text. A model repository's `custom_pipelines` entry is looked up before that renaming, so
GZ-LLaVA ships this small pipeline for "image-to-text": an image alone (path, URL, PIL, array, bytes
or FITS) is asked the processor's `default_prompt`; anything else behaves as image-text-to-text.
"""

from transformers.pipelines.image_text_to_text import ImageTextToTextPipeline


try:
    from .processing_gzllava import load_image
except ImportError:
    from processing_gzllava import load_image


class GZLlavaImageToTextPipeline(ImageTextToTextPipeline):
    """Image(s) in, `[{"generated_text": description}]` out (one list per image for a batch)."""

    def __call__(self, images=None, text=None, prompt=None, **kwargs):
        if images is None or text is not None or _is_chat(images):
            return super().__call__(images=images, text=text, **kwargs)
        single = not isinstance(images, (list, tuple))
        question = prompt or getattr(self.processor, "default_prompt", None) or "Describe this galaxy."
        chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        prompt_text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        kwargs.setdefault("return_full_text", False)
        results = [
            super(GZLlavaImageToTextPipeline, self).__call__(images=[load_image(image)], text=prompt_text, **kwargs)
            for image in ([images] if single else images)
        ]
        return results[0] if single else results


def _is_chat(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and isinstance(value[0], (dict, list, tuple))


__all__ = ["GZLlavaImageToTextPipeline"]
