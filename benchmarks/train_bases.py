"""The base folders that benchmarks/bench_train.py writes for a folder shape (llava-1.5-7b, small): built once.

bench_model.py's models of the shape with random weights, created where they are used (a 7B one straight on the GPU,
in bf16), written into three folders that share one copy of the vision tower and language model weights (hard
links): GZ-LLaVA with the mlp2x_gelu projector, GZ-LLaVA with a fresh resampler, and stock llava-hf (the same files
under llava's config). Each case process of bench_train.py then loads its folder as a user loads a checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench_model import OURS, RESAMPLER, Shape, build_models

# Base folder each folder-shape case loads (the stock case reads its samples through the GZ folder's processor).
BASE_FOLDERS = {"instruct-gz": "gz-mlp2x_gelu", "instruct-resampler": "gz-resampler", "instruct-stock": "llava-stock"}
PROJECTOR_PREFIX = "model.multi_modal_projector."
SHARD_BYTES = 5 * 2**30
GB = 1e9


@dataclass
class Bases:
    """A folder shape's base models in memory: ours (mlp2x_gelu) and the resampler sharing its tower and LM."""

    ours: object  # GZLlavaForConditionalGeneration
    resampler: object
    processors: dict  # projector type -> GZLlavaProcessor

    @property
    def nbytes(self) -> int:
        """Bytes the weight files take: ours (tower, LM, mlp projector) plus the resampler's projector."""
        tensors = [*self.ours.state_dict().values(), *projector_state(self.resampler).values()]
        return sum(t.numel() * t.element_size() for t in tensors)


def projector_state(model) -> dict:
    return {name: tensor for name, tensor in model.state_dict().items() if name.startswith(PROJECTOR_PREFIX)}


def base_processor(shape: Shape, projector_type: str, queries: int):
    """The processor saved with a base: compose's, for the tiny Galaxy Zoo tokenizer (+ `<image>`) and a CLIP of the
    shape's image and patch size (CLIP preprocessing at 336 px for llava-1.5-7b). Built from a throw-away tiny model."""
    from gzllava.compose import ComposeSettings
    from gzllava.tiny import tiny_model_and_processor

    _, processor = tiny_model_and_processor(
        image_size=shape.vision["image_size"], patch_size=shape.vision["patch_size"], layers=1,
        settings=ComposeSettings(projector_type=projector_type, num_query_tokens=queries))
    return processor


def build_bases(shape: Shape, queries: int, device: str, dtype, seed: int = 0) -> Bases:
    """bench_model's models of the shape, random weights created on `device` (a 7B one goes straight to the GPU;
    "meta" allocates nothing); their `<image>` id is the processor's (gzllava_config's default is the vocabulary's
    last id, which the tiny tokenizer does not reach)."""
    processors = {projector: base_processor(shape, projector, queries) for projector in ("mlp2x_gelu", "resampler")}
    models = build_models(shape, queries, device, dtype, seed)
    ours, resampler = models[OURS], models[RESAMPLER]
    for model in (ours, resampler):
        model.config.image_token_id = processors["mlp2x_gelu"].image_token_id
    return Bases(ours, resampler, processors)


def write_shards(folder: Path, prefix: str, tensors: dict) -> dict[str, Path]:
    """Safetensors files of at most SHARD_BYTES (a tensor's bytes are copied off the GPU as it is written);
    returns tensor name -> file."""
    from safetensors.torch import save_file

    groups, size = [{}], 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if groups[-1] and size + nbytes > SHARD_BYTES:
            groups.append({})
            size = 0
        groups[-1][name] = tensor.contiguous()
        size += nbytes
    weight_map = {}
    for index, group in enumerate(groups):
        path = folder / f"{prefix}-{index + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file(group, path, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, path))
    return weight_map


def link_weights(folder: Path, weight_map: dict[str, Path]) -> None:
    """`folder` gets the files of `weight_map` as hard links (no second copy) and the index that names them."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in set(weight_map.values()):
        try:
            os.link(path, folder / path.name)
        except OSError:  # a file system without hard links
            os.symlink(path, folder / path.name)
    total = sum(path.stat().st_size for path in set(weight_map.values()))
    index = {"metadata": {"total_size": total}, "weight_map": {name: path.name for name, path in weight_map.items()}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def write_bases(bases: Bases, root: Path, cases) -> dict[str, Path]:
    """The base folders `cases` load, under `root`; the tower and LM weights are written once (root/weights).

    A checkpoint's config decides its projector (`--projector_type` only applies to a composed base: run.py's
    COMPOSE_KEYS), so the resampler gets its own folder: the same tower and LM files, its own projector file.
    """
    from gzllava.llava_export import to_llava_config

    weights = root / "weights"
    weights.mkdir(parents=True)
    state = bases.ours.state_dict()
    shared = write_shards(weights, "tower-lm", {k: v for k, v in state.items() if not k.startswith(PROJECTOR_PREFIX)})
    projector_files, folders = {}, {}
    for case in cases:
        folder = folders[case] = root / BASE_FOLDERS[case]
        model = bases.resampler if case == "instruct-resampler" else bases.ours
        projector = model.config.projector_type
        if projector not in projector_files:
            projector_files[projector] = write_shards(weights, f"projector-{projector}", projector_state(model))
        link_weights(folder, {**shared, **projector_files[projector]})
        if case == "instruct-stock":
            to_llava_config(model.config).save_pretrained(folder)  # what to_llava_model gives; weights load unchanged
        else:
            model.config.save_pretrained(folder)
            bases.processors[projector].save_pretrained(folder)
    return folders


def scratch_dir(requested: Path | None, needed: int) -> Path:
    """Where the base folders go: `requested`, else /dev/shm (memory-backed) when it has room, else the temp dir."""
    margin = needed + 2 * 2**30
    if requested is not None:
        free = shutil.disk_usage(requested).free
        if free < margin:
            raise RuntimeError(f"--workdir {requested}: {free / GB:.1f} GB free, the base folders need "
                               f"{margin / GB:.1f} GB")
        return requested
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= margin:
        return shm
    return Path(tempfile.gettempdir())
