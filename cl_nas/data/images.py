"""In-memory labelled image tensors: the one data type the rest of cl_nas consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a condenser must know about a dataset."""

    name: str
    channels: int
    image_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.image_size)

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Map normalised images back to [0, 1] pixel space (for pictures and uint8 storage)."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return images * std + mean

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std


class ImageDataset(Dataset):
    """Normalised float images ``(N, C, H, W)`` with integer labels ``(N,)``, kept in memory.

    Every dataset cl_nas touches is small enough to hold as tensors; batching by indexing a
    tensor is far faster than a ``DataLoader`` over PIL images, which matters on a CPU.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo):
        if images.ndim != 4 or tuple(images.shape[1:]) != info.image_shape:
            raise ValueError(f"images of shape {tuple(images.shape)} do not match {info.name} {info.image_shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{labels.shape[0]} labels for {images.shape[0]} images")
        images = images.float()
        if images.stride() != images.new_empty(images.shape).stride():
            # a size-1 channel dim can carry channels_last-like strides (numpy's x[:, None]); convs then
            # run channels_last and GroupNorm ~10x slower, so store the plain NCHW layout
            images = images.clone(memory_format=torch.contiguous_format)
        self.images = images
        self.labels = labels.long()
        self.info = info

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def classes(self) -> list[int]:
        """The labels present, sorted."""
        return sorted(torch.unique(self.labels).tolist())

    def class_counts(self) -> dict[int, int]:
        values, counts = torch.unique(self.labels, return_counts=True)
        return dict(zip(values.tolist(), counts.tolist(), strict=True))

    def class_indices(self, label: int) -> torch.Tensor:
        return torch.nonzero(self.labels == label, as_tuple=True)[0]

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        return ImageDataset(self.images[indices], self.labels[indices], self.info)

    def content_hash(self) -> str:
        """A short SHA-256 of the images and labels: identifies the source of a synthetic set."""
        digest = hashlib.sha256()
        digest.update(self.images.contiguous().numpy().tobytes())
        digest.update(self.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (kept, held-out) with ``fraction`` of every class held out."""
    generator = torch.Generator().manual_seed(seed)
    kept, held = [], []
    for label in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == label, as_tuple=True)[0]
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_held = int(round(len(idx) * fraction))
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values
