"""`pipeline("image-to-text", model=<gz-llava repo>, trust_remote_code=True)(image)` describes a galaxy.

In transformers 5, "image-to-text" became an alias of "image-text-to-text", which refuses a call
without text. A model repository's `custom_pipelines` entry is looked up before that renaming, so
GZ-LLaVA ships this small pipeline for "image-to-text": an image alone (path, URL, PIL, array, bytes
or FITS) is asked the processor's `default_prompt`; `prompt=` (or `text=`) asks another question, or,
when it already holds `<image>`, is used as the whole prompt (as llava-hf's pipeline does); chats
behave as image-text-to-text. Images are read by the processor with its saved settings (stretch,
size limits, URL timeout and byte cap), never by transformers' generic loader.
"""

from transformers.pipelines.image_text_to_text import ImageTextToTextPipeline


try:  # Hub remote code lives in a package (transformers_modules.<repo>); a source checkout imports it top-level
    from .processing_gzllava import user_turn
except ImportError:
    from processing_gzllava import user_turn


class GZLlavaImageToTextPipeline(ImageTextToTextPipeline):
    """Image(s) in, `[{"generated_text": description}]` out (one list per image for a batch)."""

    def __call__(self, images=None, text=None, prompt=None, **kwargs):
        if prompt is not None and text is not None:
            raise ValueError("Pass the question as `prompt=` or as `text=`, not both.")
        question = prompt if prompt is not None else text
        if images is None or _is_chat(images) or _is_chat(question) or not isinstance(question, (str, type(None))):
            return super().__call__(images=images, text=text if prompt is None else prompt, **kwargs)
        prompt_text = self._prompt_text(question)
        single = not isinstance(images, (list, tuple))
        kwargs.setdefault("return_full_text", False)
        results = [
            super(GZLlavaImageToTextPipeline, self).__call__(images=[image], text=prompt_text, **kwargs)
            for image in ([images] if single else images)
        ]
        return results[0] if single else results

    def _prompt_text(self, question) -> str:
        """The text for one image: the default question, a question, or a full prompt that holds `<image>`."""
        image_token = getattr(self.processor, "image_token", "<image>")
        if question is None:
            question = getattr(self.processor, "default_prompt", None) or "Describe this galaxy."
        elif not question.strip():
            raise ValueError(
                "prompt is empty: pass a question, or leave prompt out to ask the default question "
                f"{getattr(self.processor, 'default_prompt', None)!r}."
            )
        if image_token in question:  # a complete prompt, e.g. "USER: <image>\nWhat is it?\nASSISTANT:"
            return question
        return self.processor.apply_chat_template(user_turn(question), add_generation_prompt=True, tokenize=False)

    def preprocess(self, inputs=None, timeout=None, continue_final_message=None, **processing_kwargs):
        # transformers' loader has no download limits and no FITS stretch: the processor reads the images instead.
        if isinstance(inputs, dict) and "images" in inputs and hasattr(self.processor, "load_image"):
            inputs = {**inputs, "images": _nested(inputs["images"], lambda image: self.processor.load_image(image, timeout))}
        return super().preprocess(inputs, timeout=timeout, continue_final_message=continue_final_message, **processing_kwargs)


def _nested(value, function):
    if isinstance(value, (list, tuple)):
        return [_nested(item, function) for item in value]
    return function(value)


def _is_chat(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and isinstance(value[0], (dict, list, tuple))


__all__ = ["GZLlavaImageToTextPipeline"]
