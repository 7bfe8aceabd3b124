"""Storage precision of buffered images, and how many images a byte budget holds.

A memory budget is counted in bytes of stored pixels. ``fp32`` keeps the normalised float images as
they are (4 bytes per value); ``fp16`` halves that by storing the same normalised values in half
precision; ``uint8`` stores pixel space quantised to 256 levels (1 byte per value), so a budget holds
4x the fp32 images. Synthetic images can leave the [0, 1] pixel range; ``uint8`` clips them there, which
is part of what the benchmark measures.

:func:`encode` then :func:`decode` gives float32 images normalised like the source; re-encoding a
decoded tensor returns the stored values unchanged (tests rely on it when a group is subselected).
"""

from __future__ import annotations

import torch

from cl_nas.data import DatasetInfo

PRECISIONS = ("fp32", "fp16", "uint8")
_BYTES = {"fp32": 4, "fp16": 2, "uint8": 1}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown storage precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def bytes_per_image(info: DatasetInfo, precision: str) -> int:
    """Bytes one stored image of ``info``'s shape takes at ``precision``."""
    channels, height, width = info.image_shape
    return channels * height * width * _BYTES[check_precision(precision)]


def images_in_budget(budget_bytes: int, info: DatasetInfo, precision: str) -> int:
    """How many whole images of ``info``'s shape fit in ``budget_bytes`` at ``precision``."""
    if budget_bytes < 0:
        raise ValueError(f"a memory budget cannot be negative, got {budget_bytes} bytes")
    return budget_bytes // bytes_per_image(info, precision)


def encode(images: torch.Tensor, info: DatasetInfo, precision: str) -> torch.Tensor:
    """Normalised float images -> their stored form at ``precision``."""
    if check_precision(precision) == "fp32":
        return images.float().clone()
    if precision == "fp16":
        return images.half()
    pixels = info.denormalize(images.float()).clamp(0.0, 1.0)
    return torch.round(pixels * 255.0).to(torch.uint8)


def decode(stored: torch.Tensor, info: DatasetInfo, precision: str) -> torch.Tensor:
    """Stored images -> float32 images normalised like ``info``'s source (what a model is fed)."""
    if check_precision(precision) == "uint8":
        return info.normalize(stored.float() / 255.0)
    return stored.float()
