"""Label-respecting augmentation of galaxy images: random rotations, mirror flips, crop jitter and zoom.

Galaxies have no up, so rotations change no label: by multiples of 90 degrees (exact), or by any angle (bilinear
resampling of the stored image before the crop; zoobot, Walmsley et al. 2022, rotates by any angle too).
A mirror flip reverses a spiral's winding on the sky: the clockwise and anticlockwise shares are exchanged
(`HeadSchema.mirror_permutation`) and so are the words in the galaxy's text (`mirror_text`). Crops are square windows
of `crop` pixels around the centre of the stored (resized) image, shifted by at most `jitter` pixels; evaluation takes
the exact centre, as the saved image processor does (resize, centre crop).
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F

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


def rotate_and_zoom(images: torch.Tensor, angles: torch.Tensor, zooms: torch.Tensor) -> torch.Tensor:
    """(B, C, R, R) uint8 -> (B, C, R, R) uint8, each image turned by `angles[b]` radians about its centre and
    magnified `zooms[b]` times (bilinear; pixels from outside the image are 0, the crop keeps away from them)."""
    cos, sin = torch.cos(angles) / zooms, torch.sin(angles) / zooms  # (B,)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1)  # (B, 2, 3): output -> input coords
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, R, R, 2)
    turned = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return turned.round().clamp(0, 255).to(images.dtype)


def random_views(images: torch.Tensor, crop: int, jitter: int, generator: torch.Generator,
                 rotate: bool = True, flip: bool = True, any_angle: bool = False,
                 zoom: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(views (B, C, crop, crop), mirrored (B,) bool): a random rot90, mirror flip and shifted crop per image;
    `any_angle`: also a turn by a uniform angle in [0, 90) degrees, `zoom` z: magnified by a uniform factor in
    [1 - z, 1 + z] (both about the stored image's centre, before the crop)."""
    batch, _, size, _ = images.shape
    if crop > size:
        raise ValueError(f"crop {crop} px is larger than the stored image ({size} px)")
    if any_angle or zoom:
        angles = (torch.rand(batch, generator=generator) * (math.pi / 2) if any_angle and rotate
                  else torch.zeros(batch))
        zooms = 1 + zoom * (2 * torch.rand(batch, generator=generator) - 1)
        images = rotate_and_zoom(images, angles, zooms)
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
