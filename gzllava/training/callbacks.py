"""Training callbacks: the end-of-training check that data-parallel ranks hold identical weights."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainerCallback


logger = logging.getLogger(__name__)

RANK_CHECKSUMS_FILE = "rank_checksums.json"


def parameter_checksum(model: torch.nn.Module) -> str:
    """A digest of every parameter (names, shapes, values): equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        tensor = param.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class RankConsistencyCallback(TrainerCallback):
    """With DDP, every rank hashes its replica after training; rank 0 writes them and fails if they differ.

    DDP keeps replicas identical by all-reducing gradients; a silent desync (a rank skipping a step, a
    parameter missing from the reduction) would otherwise only show later as a worse model. Sharded
    strategies (FSDP, ZeRO-3) hold different shards per rank by design and are not checked.
    """

    def __init__(self, replicated: bool):
        self.replicated = replicated  # plain data parallelism: every rank holds the whole model

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.replicated or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        checksums = [None] * dist.get_world_size()
        dist.all_gather_object(checksums, parameter_checksum(model))
        if dist.get_rank() == 0:
            identical = len(set(checksums)) == 1
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            report = {"world_size": len(checksums), "checksums": checksums, "identical": identical}
            (Path(args.output_dir) / RANK_CHECKSUMS_FILE).write_text(json.dumps(report, indent=2))
            if not identical:
                raise RuntimeError(f"Data-parallel ranks ended training with different weights: {checksums}")
            logger.info("All %d ranks hold identical parameters (%s...)", len(checksums), checksums[0][:12])
