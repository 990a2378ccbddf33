"""GZ-LLaVA: a LLaVA model (vision tower + projector + causal LM) with a choice of projector.

The forward pass, generation and weight layout are transformers' own `LlavaModel` /
`LlavaForConditionalGeneration`: GZ-LLaVA only swaps in its projector (`linear`, `mlp2x_gelu` or
`resampler`) and fails with a clear message when image tokens and image features disagree.
Because the weight names are llava-hf's, a llava-hf checkpoint loads as is (both the legacy on-disk
key names and the new ones), and a GZ-LLaVA with a linear/mlp projector saves as one.

`save_pretrained` (and so transformers' `push_to_hub`) writes a complete remote-code repository: config.json
with `auto_map` for every Auto class and the `image-to-text` pipeline in `custom_pipelines`, and this file with
its relative imports (configuration_gzllava.py, pipeline_gzllava.py and, through the pipeline, processing_gzllava.py
and image_processing_gzllava.py), through transformers' own mechanism for classes registered with
`register_for_auto_class`.

Shapes: B images, P patch tokens per image, Dv vision hidden size, L vision feature layers,
Q resampler queries, Dt language-model hidden size.
"""

import copy
import functools
import inspect
import threading

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoModel, LlavaForConditionalGeneration, LlavaModel, LlavaPreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.modeling_outputs import BaseModelOutputWithPooling


try:  # Hub remote code lives in a package (transformers_modules.<repo>); a source checkout imports it top-level
    from .configuration_gzllava import VISION_TOWERS_WITH_CLS, GZLlavaConfig
except ImportError:
    from configuration_gzllava import VISION_TOWERS_WITH_CLS, GZLlavaConfig


# What a saved repository's config.json maps each Auto class to (module.Class inside the repository), and the
# repository's own pipeline: in transformers 5, "image-to-text" is an alias of "image-text-to-text", which needs text.
AUTO_MAP = {
    "AutoConfig": "configuration_gzllava.GZLlavaConfig",
    "AutoModel": "modeling_gzllava.GZLlavaModel",
    "AutoModelForImageTextToText": "modeling_gzllava.GZLlavaForConditionalGeneration",
}
CUSTOM_PIPELINES = {
    "image-to-text": {
        "impl": "pipeline_gzllava.GZLlavaImageToTextPipeline",
        "pt": ["AutoModelForImageTextToText"],
        "type": "multimodal",
    }
}


def _pipeline_class():
    """The repository's image-to-text pipeline class (imported only when saving: it pulls in transformers.pipelines).

    The relative import is also what makes transformers copy pipeline_gzllava.py next to this file on save, and
    download it with this file from the Hub.
    """
    try:
        from .pipeline_gzllava import GZLlavaImageToTextPipeline
    except ImportError:
        from pipeline_gzllava import GZLlavaImageToTextPipeline
    return GZLlavaImageToTextPipeline


def _with_signature_of(function, name: str):
    """A thin method calling `function`, whose signature is computed once instead of at every inspection.

    `generate` runs `inspect.signature(self.forward)` at every decoding step for a class registered for an Auto
    class, as transformers does for a model loaded with trust_remote_code (its check for old remote code that
    still takes `cache_position`); through Llava's three decorators that costs about 25 us per step. With
    `__signature__` set, inspect stops there (6 us).
    """

    @functools.wraps(function)
    def method(self, *args, **kwargs):
        return function(self, *args, **kwargs)

    method.__signature__ = inspect.signature(function)
    method.__name__ = method.__qualname__ = name
    return method


_SAVE_LOCK = threading.RLock()


def _num_feature_layers(config: GZLlavaConfig) -> int:
    return 1 if isinstance(config.vision_feature_layer, int) else len(config.vision_feature_layer)


class GZLlavaLinearProjector(nn.Module):
    """One linear map from vision features to the language model's embedding space."""

    def __init__(self, config: GZLlavaConfig):
        super().__init__()
        in_features = config.vision_config.hidden_size * _num_feature_layers(config)
        self.linear_1 = nn.Linear(in_features, config.text_config.hidden_size, bias=config.multimodal_projector_bias)

    def forward(self, image_features):  # (B, P, L*Dv) -> (B, P, Dt)
        return self.linear_1(image_features)


class GZLlavaMLPProjector(nn.Module):
    """The llava-1.5 projector (`mlp2x_gelu`), with llava-hf's weight names: linear_1, act, linear_2."""

    def __init__(self, config: GZLlavaConfig):
        super().__init__()
        in_features = config.vision_config.hidden_size * _num_feature_layers(config)
        hidden = config.text_config.hidden_size
        self.linear_1 = nn.Linear(in_features, hidden, bias=config.multimodal_projector_bias)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(hidden, hidden, bias=config.multimodal_projector_bias)

    def forward(self, image_features):  # (B, P, L*Dv) -> (B, P, Dt)
        return self.linear_2(self.act(self.linear_1(image_features)))


# Idea from Flamingo's Perceiver resampler and Qwen-VL's one-layer cross-attention adapter: a fixed set of
# learned queries reads the patch grid, so an image costs Q tokens instead of P (576 -> 64 for CLIP-L/336).
class GZLlavaResampler(nn.Module):
    """`num_query_tokens` learned queries cross-attending to the projected patch features."""

    def __init__(self, config: GZLlavaConfig):
        super().__init__()
        in_features = config.vision_config.hidden_size * _num_feature_layers(config)
        hidden = config.text_config.hidden_size
        self.linear_1 = nn.Linear(in_features, hidden, bias=config.multimodal_projector_bias)
        self.queries = nn.Parameter(torch.randn(config.num_query_tokens, hidden) * hidden**-0.5)
        self.norm_queries = nn.LayerNorm(hidden)
        self.norm_features = nn.LayerNorm(hidden)
        self.cross_attention = nn.MultiheadAttention(hidden, config.resampler_num_heads, batch_first=True)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(hidden, hidden, bias=config.multimodal_projector_bias)

    def forward(self, image_features):  # (B, P, L*Dv) -> (B, Q, Dt)
        features = self.norm_features(self.linear_1(image_features))  # (B, P, Dt)
        queries = self.norm_queries(self.queries).unsqueeze(0).expand(features.shape[0], -1, -1)  # (B, Q, Dt)
        attended, _ = self.cross_attention(queries, features, features, need_weights=False)  # (B, Q, Dt)
        return self.linear_2(self.act(attended + queries))


def _init_gzllava_weights(model, module):
    """transformers' default init, plus the resampler's learned queries (a bare nn.Parameter it does not know)."""
    LlavaPreTrainedModel._init_weights(model, module)
    if isinstance(module, GZLlavaResampler):
        init.normal_(module.queries, mean=0.0, std=module.queries.shape[-1] ** -0.5)


PROJECTORS = {"linear": GZLlavaLinearProjector, "mlp2x_gelu": GZLlavaMLPProjector, "resampler": GZLlavaResampler}


# Test-time augmentation over the dihedral group, as galaxy classifiers use it (Dieleman et al. 2015 averaged a
# convnet's predictions over rotated and mirrored views of each Galaxy Zoo image); here the tower's features are
# averaged, so the language model reads one set of image tokens per image.
def dihedral_views(pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) -> (8B, C, S, S), view-major: view v is the image turned v // 2 quarter turns, then mirrored
    left-right when v is odd."""
    views = []
    for turns in range(4):
        turned = torch.rot90(pixel_values, turns, dims=(-2, -1))
        views += [turned, turned.flip(-1)]
    return torch.cat(views)


def dihedral_mean(features: torch.Tensor, has_cls: bool) -> torch.Tensor:
    """(8B, T, D) features of `dihedral_views` -> (B, T, D): each view's patch tokens (a square grid, row-major,
    after the CLS token if `has_cls`) turned back onto the image's grid, then the mean over the 8 views."""
    total, tokens, dim = features.shape
    views = features.view(8, total // 8, tokens, dim)
    cls, patches = (views[:, :, :1], views[:, :, 1:]) if has_cls else (None, views)
    side = int(round(patches.shape[2] ** 0.5))
    if side * side != patches.shape[2]:
        raise ValueError(f"vision_feature_views=8 needs a square grid of patch tokens; got {patches.shape[2]} tokens")
    grid = patches.reshape(8, -1, side, side, dim)  # (8, B, side, side, D)
    back = []
    for view in range(8):
        tokens_v = grid[view].flip(-2) if view % 2 else grid[view]  # undo the mirror (the grid's width axis)
        back.append(torch.rot90(tokens_v, -(view // 2), dims=(1, 2)))  # then the quarter turns
    mean = torch.stack(back).mean(0).reshape(-1, side * side, dim)  # (B, P, D)
    return torch.cat([cls.mean(0), mean], dim=1) if has_cls else mean


def _keep_unquantized(quantization_config, modules):
    """A bitsandbytes config that names no modules to skip gets `modules` (a copy; the caller's object is untouched)."""
    if isinstance(quantization_config, dict):
        if quantization_config.get("llm_int8_skip_modules") is None and (
            quantization_config.get("load_in_4bit") or quantization_config.get("load_in_8bit")
        ):
            return {**quantization_config, "llm_int8_skip_modules": list(modules)}
        return quantization_config
    if getattr(quantization_config, "quant_method", None) == "bitsandbytes" and quantization_config.llm_int8_skip_modules is None:
        quantization_config = copy.deepcopy(quantization_config)
        quantization_config.llm_int8_skip_modules = list(modules)
    return quantization_config


class GZLlavaLoadingMixin:
    """`from_pretrained` with GZ-LLaVA's guarantees.

    - Quantisation (bitsandbytes 4/8-bit) leaves `_unquantized_modules` (vision tower, projector, LM head) in full
      precision unless the config names its own `llm_int8_skip_modules`.
    - A checkpoint without the projector or vision-tower weights is an error, not a random projector and a warning.
    - An unreadable safetensors file is named in the error.
    """

    _unquantized_modules: tuple = ()
    _required_prefixes: tuple = ()
    _hub_auto_class: str = ""  # the Auto class this class is saved for

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        if kwargs.get("quantization_config") is not None:
            kwargs["quantization_config"] = _keep_unquantized(kwargs["quantization_config"], cls._unquantized_modules)
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        missing = sorted(key for key in info["missing_keys"] if key.startswith(cls._required_prefixes))
        if missing:
            raise ValueError(
                f"{pretrained_model_name_or_path}: the checkpoint has no weights for {len(missing)} vision-tower/projector "
                f"parameter(s), e.g. {missing[:3]}; a GZ-LLaVA needs them (compose_gzllava builds a new, untrained one)."
            )
        return (model, info) if want_info else model

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' `save_pretrained` (also behind its `push_to_hub`), writing a complete remote-code repository:
        `auto_map` for every Auto class and `custom_pipelines`; transformers copies this file and its relative imports."""
        _pipeline_class()  # fails here, not in the user's pipeline(), if pipeline_gzllava.py is not beside this file
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **AUTO_MAP}
        self.config.custom_pipelines = {**(getattr(self.config, "custom_pipelines", None) or {}), **CUSTOM_PIPELINES}
        # transformers writes the code of classes registered for an Auto class (`is_remote_code()`). Registered for
        # good, the class would also take generate's path for old remote code, which inspects `forward` at every
        # decoding step; so a class imported from this project is registered for the save only. (A class loaded
        # with trust_remote_code is registered by transformers and stays so.)
        cls = type(self)
        with _SAVE_LOCK:
            registered = cls._auto_class
            if registered is None:
                cls.register_for_auto_class(cls._hub_auto_class)
            try:
                return super().save_pretrained(save_directory, *args, **kwargs)
            finally:
                cls._auto_class = registered

    @staticmethod
    def _load_pretrained_model(model, state_dict, checkpoint_files, load_config, expected_keys=None):
        try:
            return LlavaPreTrainedModel._load_pretrained_model(model, state_dict, checkpoint_files, load_config, expected_keys)
        except SafetensorError as error:
            bad = [path for path in checkpoint_files or [] if _unreadable_safetensors(path)]
            raise OSError(
                f"Cannot read the weights file {', '.join(map(str, bad)) or checkpoint_files}: {error}; the file is "
                "truncated or not a safetensors file (download or save it again)."
            ) from error


def _unreadable_safetensors(path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt"):
            return False
    except (SafetensorError, OSError):
        return True


class GZLlavaModel(GZLlavaLoadingMixin, LlavaModel):
    """Vision tower + projector + language model, without the LM head (what `AutoModel` loads)."""

    config_class = GZLlavaConfig
    config: GZLlavaConfig
    _unquantized_modules = ("vision_tower", "multi_modal_projector")
    _required_prefixes = ("vision_tower.", "multi_modal_projector.")
    _hub_auto_class = "AutoModel"

    def __init__(self, config: GZLlavaConfig):
        # LlavaModel.__init__ would build its fixed MLP projector: build the three parts here instead.
        LlavaPreTrainedModel.__init__(self, config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.multi_modal_projector = PROJECTORS[config.projector_type](config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    _init_weights = _init_gzllava_weights

    def forward(self, input_ids=None, pixel_values=None, **kwargs):
        # Checked on the first pass over a prompt only (no cache yet): decoding steps (one token each, no pixels) then
        # cost what stock Llava's cost, and a generated `<image>` token does not stop generation halfway. A decoding
        # step is told by its shape alone: a static cache's length is a tensor, and branching on it would break the
        # graph that transformers compiles for decoding (and sync the device) at every token.
        if pixel_values is None and input_ids is not None and (kwargs.get("mm_encoder_outputs") or {}).get("image") is None:
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            if cache is None or (input_ids.shape[1] > 1 and cache.get_seq_length() == 0):
                n_image_tokens = int((input_ids == self.config.image_token_id).sum())
                if n_image_tokens:
                    raise ValueError(
                        f"input_ids hold {n_image_tokens} image token(s) (id {self.config.image_token_id}) but no "
                        "pixel_values were given: pass the images, built with the GZ-LLaVA processor, or drop the "
                        "`<image>` placeholders."
                    )
        return super().forward(input_ids=input_ids, pixel_values=pixel_values, **kwargs)

    forward.__signature__ = inspect.signature(LlavaModel.forward)  # what tools that inspect it see: Llava's arguments

    def get_image_features(self, pixel_values, vision_feature_layer=None, vision_feature_select_strategy=None, **kwargs):
        """Llava's image features; with `vision_feature_views=8`, the projector reads the mean of the tower's features
        over the image's 8 dihedral views (`dihedral_mean`)."""
        if self.config.vision_feature_views == 1:
            return super().get_image_features(pixel_values=pixel_values, vision_feature_layer=vision_feature_layer,
                                              vision_feature_select_strategy=vision_feature_select_strategy, **kwargs)
        if pixel_values.shape[-1] != pixel_values.shape[-2]:
            raise ValueError(f"vision_feature_views=8 turns images by quarter turns: it needs square pixel_values, got "
                             f"{tuple(pixel_values.shape[-2:])}")
        if kwargs.pop("image_sizes", None) is not None:
            raise ValueError("vision_feature_views=8 does not take image_sizes (one square image size per batch)")
        layer = self.config.vision_feature_layer if vision_feature_layer is None else vision_feature_layer
        strategy = vision_feature_select_strategy or self.config.vision_feature_select_strategy
        for name in ("output_hidden_states", "return_dict"):
            kwargs.pop(name, None)
        outputs = self.vision_tower(dihedral_views(pixel_values), output_hidden_states=True, return_dict=True, **kwargs)
        selected = [outputs.hidden_states[i] for i in ([layer] if isinstance(layer, int) else layer)]  # (8B, T, Dv) each
        if strategy == "default":
            selected = [hidden[:, 1:] for hidden in selected]
        has_cls = strategy == "full" and self.config.vision_config.model_type in VISION_TOWERS_WITH_CLS
        features = dihedral_mean(torch.cat(selected, dim=-1), has_cls)  # (B, T, L*Dv)
        image_features = self.multi_modal_projector(features)  # (B, T or Q, Dt)
        # last_hidden_state: the views' mean tower features the projector read; pooler_output: one tensor per image
        return BaseModelOutputWithPooling(last_hidden_state=features, pooler_output=list(image_features))

    def get_placeholder_mask(self, input_ids, inputs_embeds, image_features):
        """Mask of the `<image>` positions that receive image features; fails loudly when the counts differ."""
        if input_ids is None:
            image_embedding = self.get_input_embeddings()(
                torch.tensor(self.config.image_token_id, dtype=torch.long, device=inputs_embeds.device)
            )
            special_image_mask = (inputs_embeds == image_embedding).all(-1)
        else:
            special_image_mask = input_ids == self.config.image_token_id
        n_image_tokens = int(special_image_mask.sum())
        n_image_features = image_features.shape[0] if image_features.dim() == 2 else image_features.shape[:-1].numel()
        if n_image_tokens != n_image_features:
            per_image = self.config.num_image_tokens
            raise ValueError(
                f"Image features and image tokens do not match: {n_image_tokens} image tokens in the text, "
                f"{n_image_features} image features ({n_image_features // per_image} image(s) x {per_image} tokens). "
                + (
                    "There are fewer tokens than features: the text was probably truncated by max_length, cutting "
                    "image tokens; raise max_length or drop the sample."
                    if n_image_tokens < n_image_features
                    else "There are more tokens than features: an image is missing for an `<image>` placeholder, "
                    "or the text was expanded for a different projector."
                )
                + " Build inputs with the GZ-LLaVA processor, which expands each `<image>` to the right number of tokens."
            )
        return special_image_mask.unsqueeze(-1).to(inputs_embeds.device)


class GZLlavaForConditionalGeneration(GZLlavaLoadingMixin, LlavaForConditionalGeneration):
    """GZ-LLaVA with the language-model head: what `AutoModelForImageTextToText` loads; generation-ready."""

    config_class = GZLlavaConfig
    config: GZLlavaConfig
    # Skip patterns match full module names from the start (and "lm_head" as a suffix).
    _unquantized_modules = ("model.vision_tower", "model.multi_modal_projector", "lm_head")
    _required_prefixes = ("model.vision_tower.", "model.multi_modal_projector.")
    _hub_auto_class = "AutoModelForImageTextToText"

    def __init__(self, config: GZLlavaConfig):
        LlavaPreTrainedModel.__init__(self, config)
        self.model = GZLlavaModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    _init_weights = _init_gzllava_weights
    forward = _with_signature_of(LlavaForConditionalGeneration.forward, "forward")


# Load and save with llava-hf's checkpoint layout: transformers applies these renamings on load (legacy
# `language_model.model.*` keys -> `model.language_model.*`) and reverses them on save. Custom-code models
# get them only when registered explicitly.
register_checkpoint_conversion_mapping("gzllava", get_checkpoint_conversion_mapping("llava"), overwrite=True)
register_checkpoint_conversion_mapping("GZLlavaModel", get_checkpoint_conversion_mapping("LlavaModel"), overwrite=True)

__all__ = ["AUTO_MAP", "CUSTOM_PIPELINES", "GZLlavaForConditionalGeneration", "GZLlavaModel", "GZLlavaResampler"]
