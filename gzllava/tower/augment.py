"""Label-respecting augmentation of galaxy images: random 90-degree rotations, mirror flips and crop jitter.

Galaxies have no up, so rotations change no label. A mirror flip reverses a spiral's winding on the sky: the
clockwise and anticlockwise shares are exchanged (`HeadSchema.mirror_permutation`) and so are the words in the
galaxy's text (`mirror_text`). Crops are square windows of `crop` pixels around the centre of the stored
(resized) image, shifted by at most `jitter` pixels; evaluation takes the exact centre, as the saved image
processor does (resize, centre crop).
"""

from __future__ import annotations

import re

import torch

_HANDED = re.compile(r"\b(anti-?clockwise|counter-?clockwise|clockwise)\b", re.IGNORECASE)


def mirror_text(text: str) -> str:
    """Swap clockwise <-> anticlockwise (and counter-clockwise) in a description, keeping the word's case."""
    def swap(match: re.Match) -> str:
        word = match.group(0)
        new = "clockwise" if word.lower().startswith(("anti", "counter")) else "anticlockwise"
        return new.capitalize() if word[0].isupper() else new
    return _HANDED.sub(swap, text)


def centre_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    """(B, C, R, R) -> (B, C, crop, crop), the centre window (the processor's centre crop: top = (R - crop) // 2)."""
    size = images.shape[-1]
    if crop > size:
        raise ValueError(f"crop {crop} px is larger than the stored image ({size} px)")
    top = (size - crop) // 2
    return images[..., top : top + crop, top : top + crop]


def random_views(images: torch.Tensor, crop: int, jitter: int, generator: torch.Generator,
                 rotate: bool = True, flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(views (B, C, crop, crop), mirrored (B,) bool): a random rot90, mirror flip and shifted crop per image."""
    batch, _, size, _ = images.shape
    if crop > size:
        raise ValueError(f"crop {crop} px is larger than the stored image ({size} px)")
    ks = torch.randint(0, 4, (batch,), generator=generator) if rotate else torch.zeros(batch, dtype=torch.long)
    mirrored = (torch.randint(0, 2, (batch,), generator=generator) == 1) if flip else torch.zeros(batch, dtype=torch.bool)
    top0 = (size - crop) // 2
    room = min(jitter, top0, size - crop - top0)
    shifts = torch.randint(-room, room + 1, (batch, 2), generator=generator) if room > 0 else torch.zeros(batch, 2, dtype=torch.long)
    views = []
    for image, k, m, (dy, dx) in zip(images, ks.tolist(), mirrored.tolist(), shifts.tolist()):
        top, left = top0 + dy, top0 + dx
        view = image[:, top : top + crop, left : left + crop]
        view = torch.rot90(view, k, dims=(1, 2))
        views.append(torch.flip(view, dims=(2,)) if m else view)
    return torch.stack(views), mirrored
