"""Storage precision of buffered images, and how many images a byte budget holds.

A memory budget is counted in bytes of stored *items*: an image's pixels and its label. ``fp32`` keeps
the normalised float images as they are (4 bytes per value); ``fp16`` halves that by storing the same
normalised values in half precision; ``uint8`` stores pixel space quantised to 256 levels (1 byte per
value), so a budget holds nearly 4x the fp32 images (each extra image also pays for its label). A label
takes the fewest whole bytes that can tell the classes apart (:func:`label_bytes`: 1 up to 256 classes).
Real images of 8-bit datasets (MNIST, Fashion-MNIST, CIFAR) are stored exactly at ``uint8``; synthetic
images can leave the [0, 1] pixel range, and ``uint8`` clips them there, which is part of what the
benchmark measures.

:func:`encode` then :func:`decode` gives float32 images normalised like the source; re-encoding a
decoded tensor returns the stored values unchanged (a condensed buffer relies on it when it subselects a group).
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


def label_bytes(num_classes: int) -> int:
    """Bytes one stored label takes: the fewest whole bytes (1, 2 or 4) that hold ``num_classes`` class ids."""
    return next(size for size in (1, 2, 4) if num_classes <= 256**size)


def bytes_per_item(info: DatasetInfo, precision: str) -> int:
    """Bytes one stored exemplar (image at ``precision`` and its label) of ``info``'s dataset takes."""
    return bytes_per_image(info, precision) + label_bytes(info.num_classes)


def images_in_budget(budget_bytes: int, info: DatasetInfo, precision: str) -> int:
    """How many whole exemplars (image and label) of ``info``'s dataset fit in ``budget_bytes`` at ``precision``."""
    if budget_bytes < 0:
        raise ValueError(f"a memory budget cannot be negative, got {budget_bytes} bytes")
    return budget_bytes // bytes_per_item(info, precision)


def stored_bytes(stored: torch.Tensor, labels: torch.Tensor, info: DatasetInfo) -> int:
    """Bytes that stored images ``stored`` (at their precision's dtype) and their ``labels`` take."""
    return stored.numel() * stored.element_size() + len(labels) * label_bytes(info.num_classes)


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
