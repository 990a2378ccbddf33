"""Register GZ-LLaVA with the Auto classes in this process (local folders load without `trust_remote_code`).

What saved repositories need (`auto_map`, the remote code) the remote-code files arrange themselves, so that
transformers' own `save_pretrained` and `push_to_hub` write it: the config and processor classes are registered
with `register_for_auto_class` where they are defined, the model classes for the duration of each save.
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

# The remote-code files sit at the repository root (that layout is what the Hub model repo holds).
from configuration_gzllava import GZLlavaConfig
from modeling_gzllava import AUTO_MAP, GZLlavaForConditionalGeneration, GZLlavaModel
from processing_gzllava import GZLlavaProcessor


_registered = False


def register_gzllava() -> None:
    """Idempotent in-process registration of the config, both models and the processor with the Auto classes."""
    global _registered
    if _registered:
        return
    AutoConfig.register("gzllava", GZLlavaConfig, exist_ok=True)
    AutoModel.register(GZLlavaConfig, GZLlavaModel, exist_ok=True)
    AutoModelForImageTextToText.register(GZLlavaConfig, GZLlavaForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(GZLlavaConfig, GZLlavaProcessor, exist_ok=True)
    _registered = True


__all__ = ["AUTO_MAP", "register_gzllava"]
