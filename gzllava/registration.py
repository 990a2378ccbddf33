"""Register GZ-LLaVA with the Auto classes (in this process) and for saving (the `auto_map` of saved repos)."""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

# The remote-code files sit at the repository root (that layout is what the Hub model repo holds).
from configuration_gzllava import GZLlavaConfig
from modeling_gzllava import GZLlavaForConditionalGeneration, GZLlavaModel
from processing_gzllava import GZLlavaProcessor

# What a saved GZ-LLaVA repo's config.json maps each Auto class to (module.Class inside the repo).
AUTO_MAP = {
    "AutoConfig": "configuration_gzllava.GZLlavaConfig",
    "AutoModel": "modeling_gzllava.GZLlavaModel",
    "AutoModelForImageTextToText": "modeling_gzllava.GZLlavaForConditionalGeneration",
}
PROCESSOR_AUTO_MAP = {"AutoProcessor": "processing_gzllava.GZLlavaProcessor"}

_registered = False


def register_gzllava() -> None:
    """Idempotent: in-process Auto registration plus `register_for_auto_class` so saving writes the auto_map."""
    global _registered
    if _registered:
        return
    AutoConfig.register("gzllava", GZLlavaConfig, exist_ok=True)
    AutoModel.register(GZLlavaConfig, GZLlavaModel, exist_ok=True)
    AutoModelForImageTextToText.register(GZLlavaConfig, GZLlavaForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(GZLlavaConfig, GZLlavaProcessor, exist_ok=True)
    GZLlavaConfig.register_for_auto_class("AutoConfig")
    GZLlavaModel.register_for_auto_class("AutoModel")
    GZLlavaForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")
    GZLlavaProcessor.register_for_auto_class("AutoProcessor")
    _registered = True
