"""The synthetic-set artifact: what every condenser produces and CL and NAS consume.

A :class:`SyntheticSet` holds normalised images, integer labels, optionally a teacher's logits for
the images (APM's sets, and the baselines judged with the same labels), and the metadata needed to
reproduce and audit it. On disk it is one ``.pt`` file of tensors plus a JSON string, read back with
``torch.load(weights_only=True)``, so loading a file can never run code.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from cl_nas.data import TRAIN_SPLIT_HASHES, DatasetInfo, ImageDataset, available_datasets, dataset_info
from cl_nas.utils import UnreadableFileError, atomic_write, load_torch_file

FORMAT = "cl_nas.SyntheticSet"
FORMAT_VERSION = 2  # 2 added the optional teacher logits
READABLE_VERSIONS = (1, 2)


def _shape(channels: int, size: tuple[int, int]) -> str:
    return f"{channels}x{size[0]}x{size[1]}"


def _signature(info: DatasetInfo) -> tuple:
    """What a dataset's sets share with it: image shape, classes, then normalisation."""
    return (info.channels, tuple(info.image_size), info.num_classes, tuple(info.mean), tuple(info.std))


def _describe(info: DatasetInfo) -> str:
    return f"{_shape(info.channels, info.image_size)} images of {info.num_classes} classes, mean {info.mean}"


def _looks_like(names: list[str]) -> str:
    if not names:
        return ""
    return f"; it looks like a set of {' or '.join(names)}: re-create it with `cl-nas condense --dataset {names[0]}`"


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
    # provenance of ``SyntheticSet.teacher_logits`` (the teacher's fingerprint, training budget, accuracy)
    teacher: dict[str, Any] | None = None

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
    """``images`` (N, C, H, W) float32, normalised like the source; ``labels`` (N,) int64;
    ``teacher_logits`` (N, num_classes) float32 or None: a teacher network's logits for the images,
    the targets of the ``apm`` evaluation protocol (see :meth:`with_teacher_logits`)."""

    images: torch.Tensor
    labels: torch.Tensor
    meta: SyntheticMeta
    teacher_logits: torch.Tensor | None = None

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
            shape = tuple(self.images.shape[1:])
            raise SyntheticSetError(
                f"images have shape {_shape(shape[0], shape[1:])} but the metadata says "
                f"{_shape(m.channels, m.image_size)} ({m.dataset}): the file is damaged or was edited"
                + _looks_like([n for n in available_datasets() if dataset_info(n).image_shape == shape])
            )
        if not (
            torch.is_tensor(self.labels)
            and self.labels.dtype == torch.int64
            and self.labels.shape == (self.images.shape[0],)
        ):
            raise SyntheticSetError("labels must be an int64 tensor with one label per image")
        if len(self.labels) == 0:
            raise SyntheticSetError("the set holds no images: there is nothing to train on")
        if self.labels.min() < 0 or self.labels.max() >= m.num_classes:
            raise SyntheticSetError(f"labels outside [0, {m.num_classes})")
        counts = torch.bincount(self.labels).tolist()
        wrong = next(((label, n) for label, n in enumerate(counts) if n not in (0, m.ipc)), None)
        if wrong is not None:
            raise SyntheticSetError(
                f"the metadata says ipc={m.ipc} images per class but class {wrong[0]} has {wrong[1]}: "
                "the file is damaged or was edited"
            )
        if not torch.isfinite(self.images).all():
            raise SyntheticSetError("images contain NaN or infinite values")
        logits = self.teacher_logits
        if logits is not None and not (
            torch.is_tensor(logits)
            and logits.is_floating_point()
            and logits.shape == (self.images.shape[0], m.num_classes)
            and bool(torch.isfinite(logits).all())
        ):
            raise SyntheticSetError(
                f"teacher_logits must be finite floats of shape ({self.images.shape[0]}, {m.num_classes}), "
                f"got {getattr(logits, 'shape', type(logits))}"
            )

    def check_compatible(self, channels: int, image_size: tuple[int, int]) -> None:
        """Raise a clear error if a model built for ``(channels, image_size)`` cannot take this set."""
        m = self.meta
        if (m.channels, tuple(m.image_size)) != (channels, tuple(image_size)):
            raise SyntheticSetError(
                f"synthetic set of {self.meta.dataset} has {_shape(m.channels, m.image_size)} images but "
                f"the model expects {_shape(channels, image_size)}; build the model for {self.meta.dataset}"
            )

    def check_dataset(self) -> None:
        """Check, before the dataset loads, that the metadata agrees with the registered dataset it names
        (shape, classes, normalisation, and the source hash where it is a known training split's); raise
        :class:`SyntheticSetError` naming the dataset the set comes from where that can be told."""
        m = self.meta
        try:
            registered = dataset_info(m.dataset)
        except ValueError:
            raise SyntheticSetError(f"the set names an unknown dataset {m.dataset!r}") from None
        origin = TRAIN_SPLIT_HASHES.get(m.source_hash)
        if origin is not None and origin != registered.name:
            raise SyntheticSetError(
                f"the set says it was condensed from {registered.name}, but its source hash {m.source_hash} is "
                f"{origin}'s training split: the metadata is wrong; re-create the set with "
                f"`cl-nas condense --dataset {origin}`, or evaluate it on {origin}"
            )
        if _signature(self.info) != _signature(registered):
            same = [n for n in available_datasets() if _signature(dataset_info(n)) == _signature(self.info)]
            shaped = [n for n in available_datasets() if _signature(dataset_info(n))[:3] == _signature(self.info)[:3]]
            raise SyntheticSetError(
                f"the set says it was condensed from {registered.name} ({_describe(registered)}) but its metadata "
                f"describes {_describe(self.info)}: the file is damaged or was edited" + _looks_like(same or shaped)
            )

    def check_source(self, train_set: ImageDataset) -> None:
        """Check that the set was condensed from ``train_set`` (its source hash); raise :class:`SyntheticSetError`
        naming where it comes from where that is known."""
        m, name = self.meta, train_set.info.name
        actual = train_set.content_hash()
        if m.source_hash == actual:
            return
        origin = TRAIN_SPLIT_HASHES.get(m.source_hash)
        where = (
            f"it comes from {origin}'s: re-create it with `cl-nas condense --dataset {origin}`, or evaluate it there"
            if origin is not None
            else "it was condensed from other data (another dataset, some classes only, or another validation "
            "split): evaluate it against the data it came from"
        )
        raise SyntheticSetError(
            f"the set was not condensed from {name}'s training split (its source hash is {m.source_hash}, "
            f"the split's {actual}); {where}"
        )

    def to_dataset(self) -> TensorDataset:
        """A torch ``Dataset`` of ``(image, label)`` pairs."""
        return TensorDataset(self.images, self.labels)

    def sorted_by_class(self) -> SyntheticSet:
        order = torch.argsort(self.labels, stable=True)
        logits = None if self.teacher_logits is None else self.teacher_logits[order]
        return SyntheticSet(self.images[order], self.labels[order], self.meta, logits)

    def with_teacher_logits(self, logits: torch.Tensor, teacher: dict[str, Any]) -> SyntheticSet:
        """The same images and labels, with ``logits`` (a teacher's, one row per image) as the soft labels
        the ``apm`` protocol trains on; ``teacher`` describes the teacher for the metadata."""
        meta = SyntheticMeta(**{**asdict(self.meta), "teacher": dict(teacher)})
        return SyntheticSet(self.images, self.labels, meta, logits.detach().float().cpu().contiguous())

    # --- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file, then rename) and return the path."""
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "images": self.images.detach().cpu().contiguous(),
            "labels": self.labels.detach().cpu().contiguous(),
            "meta_json": json.dumps(asdict(self.meta)),
        }
        if self.teacher_logits is not None:
            payload["teacher_logits"] = self.teacher_logits.detach().cpu().contiguous()
        return atomic_write(path, lambda tmp: torch.save(payload, tmp))

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticSet:
        """Load and validate a file written by :meth:`save`."""
        path = Path(path)
        if path.is_dir():
            raise FileNotFoundError(f"{str(path)!r} is a folder, not a synthetic-set file")
        if not path.is_file():
            raise FileNotFoundError(f"no synthetic set at {str(path)!r}")
        try:
            payload = load_torch_file(path, "synthetic-set file")
        except UnreadableFileError as err:
            raise SyntheticSetError(f"{err}; re-create it with `cl-nas condense`") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise SyntheticSetError(
                f"{str(path)!r} is not a cl_nas synthetic set (no {FORMAT!r} marker); "
                "re-create it with `cl-nas condense`"
            )
        if payload.get("format_version") not in READABLE_VERSIONS:
            raise SyntheticSetError(
                f"{str(path)!r} has format version {payload.get('format_version')}, this cl_nas reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        try:
            raw = json.loads(payload["meta_json"])
            raw["image_size"], raw["mean"], raw["std"] = tuple(raw["image_size"]), tuple(raw["mean"]), tuple(raw["std"])
            meta = SyntheticMeta(**raw)
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise SyntheticSetError(f"{str(path)!r} has malformed metadata ({err})") from err
        try:
            return cls(payload.get("images"), payload.get("labels"), meta, payload.get("teacher_logits"))
        except SyntheticSetError as err:
            raise SyntheticSetError(f"{str(path)!r}: {err}") from None

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
