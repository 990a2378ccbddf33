"""gz-llava library: composing, saving and publishing GZ-LLaVA models (the model itself is the top-level remote code).

Importing this package registers GZ-LLaVA with transformers' Auto classes, so `AutoConfig`, `AutoModel`,
`AutoModelForImageTextToText` and `AutoProcessor` work on local folders without `trust_remote_code`.
"""

from .registration import register_gzllava

register_gzllava()

from configuration_gzllava import GZLlavaConfig  # noqa: E402
from modeling_gzllava import GZLlavaForConditionalGeneration, GZLlavaModel  # noqa: E402
from processing_gzllava import GZLlavaProcessor  # noqa: E402

__all__ = ["GZLlavaConfig", "GZLlavaForConditionalGeneration", "GZLlavaModel", "GZLlavaProcessor", "register_gzllava"]
