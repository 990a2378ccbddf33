"""Resumable image augmentation: the 8 symmetries of the square, chosen by (seed, epoch, image content).

Galaxies have no preferred orientation on the sky, so every rotation by 90 degrees and every flip is as
true as the original (`random_rot90_flip`). A random stream of its own (a processor's) could not be
restored after a crash, and transformers restores the RNG state only after it has collated the first
batch of a resumed run; so here the choice is a pure function of the seed, the epoch and the image
itself, and a run resumed from a checkpoint sees exactly the images the uninterrupted run saw.
"""

from __future__ import annotations

import hashlib
import math
import random

from transformers import TrainerCallback

from image_processing_gzllava import load_image


def random_rot90_flip(image, rng: random.Random):
    """One of the 8 symmetries of the square, drawn from `rng`: galaxies have no preferred orientation on the sky."""
    from PIL import Image

    image = image.rotate(90 * rng.randrange(4), expand=True)
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def _fingerprint(image) -> str:
    image = load_image(image)
    digest = hashlib.blake2b(image.tobytes(), digest_size=8)
    digest.update(f"{image.size}".encode())
    return digest.hexdigest()


def augment_image(image, seed: int, epoch: int):
    """`image` (anything `load_image` reads) rotated/flipped as decided by (seed, epoch, image)."""
    image = load_image(image)
    return random_rot90_flip(image, random.Random(f"{seed}:{epoch}:{_fingerprint(image)}"))


class AugmentingCollator:
    """Wraps a collator: each example's image(s) go through `augment_image` before collation."""

    def __init__(self, collator, seed: int):
        self.collator = collator
        self.seed = seed
        self.epoch = 0  # set by EpochCallback at the start of every epoch (also the resumed one)

    def _augment(self, example: dict) -> dict:
        example = dict(example)
        if example.get("image") is not None:
            example["image"] = augment_image(example["image"], self.seed, self.epoch)
        if example.get("images"):
            example["images"] = [augment_image(image, self.seed, self.epoch) for image in example["images"]]
        return example

    def __call__(self, examples: list[dict]):
        return self.collator([self._augment(example) for example in examples])


class EpochCallback(TrainerCallback):
    """Tells the collator which epoch starts (with dataloader workers, only non-persistent ones see it)."""

    def __init__(self, collator: AugmentingCollator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is whole at an epoch boundary and fractional in a run resumed mid-epoch.
        self.collator.epoch = math.floor(state.epoch + 1e-6)
