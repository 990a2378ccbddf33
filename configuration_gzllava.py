"""GZ-LLaVA configuration: a LLaVA config plus a choice of projector and optional image delimiters.

`GZLlavaConfig` extends transformers' `LlavaConfig`, so every LLaVA field keeps its name and meaning
(`image_token_id`, `projector_hidden_act`, `vision_feature_layer`, `vision_feature_select_strategy`,
`image_seq_length`, `multimodal_projector_bias`, ...) and tooling written for llava-hf keeps working.
It is a composite config: `vision_config` (any CLIP or SigLIP vision config) and `text_config` (any
causal LM config: Llama, Phi-3, Qwen2, SmolLM2, ...), resolved through `AutoConfig`.
"""

from transformers import LlavaConfig
from transformers.activations import ACT2FN
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.configuration_auto import AutoConfig


PROJECTOR_TYPES = ("linear", "mlp2x_gelu", "resampler")
FEATURE_SELECT_STRATEGIES = ("default", "full")
# 1: the image as given; 8: the mean of the tower's features over the image's 8 dihedral views (modeling_gzllava).
FEATURE_VIEWS = (1, 8)
# Vision towers whose first output token is a CLS token that the "default" strategy drops.
VISION_TOWERS_WITH_CLS = ("clip_vision_model",)
SUPPORTED_VISION_TOWERS = ("clip_vision_model", "siglip_vision_model")


def _fail(field: str, value, expected: str):
    raise ValueError(f"GZLlavaConfig: invalid {field}={value!r}; expected {expected}.")


class GZLlavaConfig(LlavaConfig):
    r"""
    projector_type (`str`, defaults to `"mlp2x_gelu"`):
        `"linear"`: one linear layer; `"mlp2x_gelu"`: the llava-1.5 projector (`linear_1`, GELU, `linear_2`, the same
        weight names as llava-hf); `"resampler"`: `num_query_tokens` learned queries cross-attend to the patch features,
        so every image costs a fixed, small number of tokens (Open LLaMA Eyes used 10).
    num_query_tokens (`int`, defaults to 64):
        Image tokens per image for the resampler projector (ignored by the other projectors).
    resampler_num_heads (`int`, defaults to 8):
        Attention heads of the resampler's cross-attention; must divide the language model's hidden size.
    use_image_delimiters (`bool`, defaults to `False`):
        Wrap each image's tokens in `boi_token_id` / `eoi_token_id` (Open LLaMA Eyes' [boi] ... [eoi]).
    vision_feature_views (`int`, defaults to 1):
        `1`: the tower sees the image as given. `8`: it sees the image's 8 dihedral views (4 quarter turns, each
        also mirrored) and the projector gets the mean of their features, patch tokens turned back onto the image's
        grid first: features that do not depend on how the galaxy lies on the sky (a galaxy has no up), at 8 times
        the tower's cost. Needs square images.

    Example:

    ```python
    >>> from transformers import CLIPVisionConfig, LlamaConfig
    >>> config = GZLlavaConfig(vision_config=CLIPVisionConfig(), text_config=LlamaConfig(), projector_type="resampler")
    >>> config.image_seq_length
    64
    ```
    """

    model_type = "gzllava"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="clip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    projector_type: str = "mlp2x_gelu"
    num_query_tokens: int = 64
    resampler_num_heads: int = 8
    use_image_delimiters: bool = False
    boi_token_id: int | None = None
    eoi_token_id: int | None = None
    vision_feature_views: int = 1

    def __post_init__(self, **kwargs):
        # A llava-hf config.json says model_type "llava": this is a GZ-LLaVA config now (and its weights must get
        # the renamings registered for "gzllava").
        kwargs.pop("model_type", None)
        super().__post_init__(**kwargs)
        self._validate()
        # The number of image tokens per image follows from the projector (LLaVA tooling reads this field).
        self.image_seq_length = self.num_image_tokens

    @property
    def num_patch_tokens(self) -> int:
        """Vision tokens per image before projection: (image_size / patch_size)^2 (+1 CLS kept by "full" on CLIP)."""
        patches = (self.vision_config.image_size // self.vision_config.patch_size) ** 2
        has_cls = self.vision_config.model_type in VISION_TOWERS_WITH_CLS
        return patches + int(has_cls and self.vision_feature_select_strategy == "full")

    @property
    def num_image_tokens(self) -> int:
        """`<image>` tokens per image in the language model's sequence (without the boi/eoi delimiters)."""
        return self.num_query_tokens if self.projector_type == "resampler" else self.num_patch_tokens

    def _validate(self):
        if self.projector_type not in PROJECTOR_TYPES:
            _fail("projector_type", self.projector_type, f"one of {PROJECTOR_TYPES}")
        if self.projector_hidden_act not in ACT2FN:
            _fail("projector_hidden_act", self.projector_hidden_act, f"an activation name, one of {sorted(ACT2FN)}")
        if self.vision_feature_select_strategy not in FEATURE_SELECT_STRATEGIES:
            _fail("vision_feature_select_strategy", self.vision_feature_select_strategy, f"one of {FEATURE_SELECT_STRATEGIES}")
        if self.vision_feature_views not in FEATURE_VIEWS:
            _fail("vision_feature_views", self.vision_feature_views, f"one of {FEATURE_VIEWS}")
        vision_type = self.vision_config.model_type
        if vision_type not in SUPPORTED_VISION_TOWERS:
            _fail("vision_config.model_type", vision_type, f"one of {SUPPORTED_VISION_TOWERS}")
        if vision_type not in VISION_TOWERS_WITH_CLS and self.vision_feature_select_strategy == "default":
            _fail(
                "vision_feature_select_strategy",
                "default",
                f"'full' for {vision_type}, which has no CLS token for 'default' to drop",
            )
        num_layers = self.vision_config.num_hidden_layers
        layers = [self.vision_feature_layer] if isinstance(self.vision_feature_layer, int) else self.vision_feature_layer
        if not layers or any(not isinstance(i, int) or not -num_layers - 1 <= i <= num_layers for i in layers):
            _fail("vision_feature_layer", self.vision_feature_layer, f"an int or list of ints in [-{num_layers + 1}, {num_layers}]")
        if self.projector_type == "resampler":
            if not isinstance(self.num_query_tokens, int) or self.num_query_tokens < 1:
                _fail("num_query_tokens", self.num_query_tokens, "a positive int")
            if self.resampler_num_heads < 1 or self.text_config.hidden_size % self.resampler_num_heads:
                _fail(
                    "resampler_num_heads",
                    self.resampler_num_heads,
                    f"a positive divisor of text_config.hidden_size={self.text_config.hidden_size}",
                )
        if self.use_image_delimiters and (self.boi_token_id is None or self.eoi_token_id is None):
            _fail("use_image_delimiters", True, "boi_token_id and eoi_token_id to be set (compose the model to add them)")
        for name in ("image_token_id", "boi_token_id", "eoi_token_id"):
            token_id = getattr(self, name)
            if token_id is not None and not 0 <= token_id < self.text_config.vocab_size:
                _fail(name, token_id, f"a token id below text_config.vocab_size={self.text_config.vocab_size}")


# Saving a config writes its auto_map entry and this file (transformers' custom-code mechanism).
GZLlavaConfig.register_for_auto_class("AutoConfig")

__all__ = ["GZLlavaConfig"]
