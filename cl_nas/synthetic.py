"""The synthetic-set artifact: what every condenser produces and CL and NAS consume.

A :class:`SyntheticSet` holds normalised images, integer labels and the metadata needed to
reproduce and audit it. On disk it is one ``.pt`` file of tensors plus a JSON string, read
back with ``torch.load(weights_only=True)``, so loading a file can never run code.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from cl_nas.data import DatasetInfo

FORMAT = "cl_nas.SyntheticSet"
FORMAT_VERSION = 1


def _shape(channels: int, size: tuple[int, int]) -> str:
    return f"{channels}x{size[0]}x{size[1]}"


class SyntheticSetError(ValueError):
    """A synthetic-set file is corrupted, foreign, or inconsistent with its metadata."""


def library_versions() -> dict[str, str]:
    import torchvision

    import cl_nas

    return {
        "cl_nas": cl_nas.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


@dataclass
class SyntheticMeta:
    """Provenance of a synthetic set."""

    method: str
    dataset: str
    ipc: int
    seed: int
    config: dict[str, Any]
    source_hash: str
    channels: int
    image_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    wall_seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=library_versions)

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(
            self.dataset, self.channels, tuple(self.image_size), self.num_classes, tuple(self.mean), tuple(self.std)
        )

    @classmethod
    def from_info(cls, info: DatasetInfo, **kwargs: Any) -> SyntheticMeta:
        return cls(
            dataset=info.name,
            channels=info.channels,
            image_size=info.image_size,
            num_classes=info.num_classes,
            mean=info.mean,
            std=info.std,
            **kwargs,
        )


@dataclass
class SyntheticSet:
    """``images`` (N, C, H, W) float32, normalised like the source; ``labels`` (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor
    meta: SyntheticMeta

    def __post_init__(self) -> None:
        self.validate()

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def info(self) -> DatasetInfo:
        return self.meta.info

    def validate(self) -> None:
        """Check shapes, dtypes and labels against the metadata; raise :class:`SyntheticSetError`."""
        m = self.meta
        if not (torch.is_tensor(self.images) and self.images.ndim == 4 and self.images.is_floating_point()):
            raise SyntheticSetError(
                f"images must be a 4-D float tensor, got {getattr(self.images, 'shape', type(self.images))}"
            )
        if tuple(self.images.shape[1:]) != (m.channels, *m.image_size):
            raise SyntheticSetError(
                f"images have shape {tuple(self.images.shape[1:])} but metadata says {(m.channels, *m.image_size)}"
            )
        if not (
            torch.is_tensor(self.labels)
            and self.labels.dtype == torch.int64
            and self.labels.shape == (self.images.shape[0],)
        ):
            raise SyntheticSetError("labels must be an int64 tensor with one label per image")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= m.num_classes):
            raise SyntheticSetError(f"labels outside [0, {m.num_classes})")
        if not torch.isfinite(self.images).all():
            raise SyntheticSetError("images contain NaN or infinite values")

    def check_compatible(self, channels: int, image_size: tuple[int, int]) -> None:
        """Raise a clear error if a model built for ``(channels, image_size)`` cannot take this set."""
        m = self.meta
        if (m.channels, tuple(m.image_size)) != (channels, tuple(image_size)):
            raise SyntheticSetError(
                f"synthetic set of {self.meta.dataset} has {_shape(m.channels, m.image_size)} images but "
                f"the model expects {_shape(channels, image_size)}; build the model for {self.meta.dataset}"
            )

    def to_dataset(self) -> TensorDataset:
        """A torch ``Dataset`` of ``(image, label)`` pairs."""
        return TensorDataset(self.images, self.labels)

    def sorted_by_class(self) -> SyntheticSet:
        order = torch.argsort(self.labels, stable=True)
        return SyntheticSet(self.images[order], self.labels[order], self.meta)

    # --- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file, then rename) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "images": self.images.detach().cpu().contiguous(),
            "labels": self.labels.detach().cpu().contiguous(),
            "meta_json": json.dumps(asdict(self.meta)),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(payload, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticSet:
        """Load and validate a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no synthetic set at {str(path)!r}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for truncated or foreign files
            raise SyntheticSetError(
                f"{str(path)!r} is not a readable synthetic-set file ({type(err).__name__}: {err}); "
                "re-create it with `cl-nas condense`"
            ) from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise SyntheticSetError(
                f"{str(path)!r} is not a cl_nas synthetic set (no {FORMAT!r} marker); "
                "re-create it with `cl-nas condense`"
            )
        if payload.get("format_version") != FORMAT_VERSION:
            raise SyntheticSetError(
                f"{str(path)!r} has format version {payload.get('format_version')}, this cl_nas reads {FORMAT_VERSION}"
            )
        try:
            raw = json.loads(payload["meta_json"])
            raw["image_size"], raw["mean"], raw["std"] = tuple(raw["image_size"]), tuple(raw["mean"]), tuple(raw["std"])
            meta = SyntheticMeta(**raw)
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise SyntheticSetError(f"{str(path)!r} has malformed metadata ({err})") from err
        return cls(payload.get("images"), payload.get("labels"), meta)

    def grid(self, max_per_class: int | None = None) -> torch.Tensor:
        """:func:`image_grid` of this set: one row per class, in pixel space."""
        return image_grid(self.images, self.labels, self.info, max_per_class)

    def save_png(self, path: str | os.PathLike, max_per_class: int | None = None) -> Path:
        """Write :meth:`grid` as a PNG file; returns its path."""
        from torchvision.utils import save_image

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(self.grid(max_per_class), str(path))
        return path


def image_grid(
    images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo, max_per_class: int | None = None
) -> torch.Tensor:
    """Normalised ``images`` of ``info``'s dataset, tiled one row per class in pixel space ([0, 1]).

    Returns a ``(3, H, W)`` RGB tensor (grey images are repeated over the channels); rows are padded
    with white where a class has fewer images, and ``max_per_class`` truncates them. Show it with
    ``plt.imshow(grid.permute(1, 2, 0))``. Works for any labelled images: a synthetic set, a replay
    buffer's contents, a batch of real data.
    """
    from torchvision.utils import make_grid

    order = torch.argsort(labels, stable=True)
    images, labels = images[order], labels[order]
    rows = [images[labels == label][:max_per_class] for label in torch.unique(labels).tolist()]
    if not rows:
        raise ValueError("image_grid needs at least one image")
    width = max(r.shape[0] for r in rows)
    blank = torch.full((1, *rows[0].shape[1:]), float("nan"))
    padded = [torch.cat([r, blank.expand(width - r.shape[0], -1, -1, -1)]) if r.shape[0] < width else r for r in rows]
    pixels = info.denormalize(torch.cat(padded)).nan_to_num(1.0).clamp(0, 1)
    return make_grid(pixels, nrow=width, padding=1, pad_value=1.0)
