"""Between Avalanche datasets and tensors: read an experience as an ImageDataset, build buffer datasets.

Avalanche's two generations of benchmark generators yield different items: the classic ones
(``nc_benchmark``, ``SplitMNIST``, ...) give ``(x, y, t)`` with a task label, the newer
``class_incremental_benchmark`` over a plain ``ClassificationDataset`` gives ``(x, y)``. A replay
buffer's items are batched next to the experience's, so they must have the same form:
:func:`buffer_dataset` builds either, and :func:`has_task_labels` tells which one a stream uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from avalanche.benchmarks.utils.classification_dataset import (
    ClassificationDataset,
    TaskAwareSupervisedClassificationDataset,
)
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.benchmarks.utils.transform_groups import TransformGroups
from avalanche.training.storage_policy import ExemplarsBuffer
from torch.utils.data import DataLoader, Dataset, TensorDataset

from cl_nas.data import DatasetInfo, ImageDataset


def has_task_labels(dataset: Dataset) -> bool:
    """True for ``(x, y, t)`` items, False for ``(x, y)``; anything else raises ``ValueError``."""
    if len(dataset) == 0:
        raise ValueError("cannot tell the item format of an empty dataset")
    arity = len(dataset[0])
    if arity not in (2, 3):
        raise ValueError(f"expected (x, y) or (x, y, t) items, got {arity}-tuples")
    return arity == 3


def experience_task_label(dataset: Dataset) -> int | None:
    """The one task label of a ``(x, y, t)`` experience (None for ``(x, y)``); several raise ``ValueError``."""
    if not has_task_labels(dataset):
        return None
    labels = set(dataset.targets_task_labels)
    if len(labels) != 1:
        raise ValueError(f"an experience with several task labels {sorted(labels)} cannot be condensed as one group")
    return int(next(iter(labels)))


def to_image_dataset(dataset: Dataset, info: DatasetInfo, batch_size: int = 1024) -> ImageDataset:
    """An experience's images and labels as in-memory tensors, through its *eval* transforms.

    The eval transforms (no augmentation) produce the normalised tensors a condenser expects. The
    loader draws from its own generator, so reading data never moves the global RNG.
    """
    data = dataset.eval() if hasattr(dataset, "eval") else dataset
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, generator=torch.Generator())
    images, labels = [], []
    for batch in loader:
        images.append(batch[0])
        labels.append(torch.as_tensor(batch[1]))
    return ImageDataset(torch.cat(images), torch.cat(labels), info)


class PostAdaptBuffer(ExemplarsBuffer):
    """An Avalanche storage policy that acts in ``post_adapt``, with the ``update`` that Avalanche 0.6's
    ``ReplayPlugin`` still calls (deprecated there in favour of ``post_adapt``)."""

    def update(self, strategy: Any, **kwargs) -> None:
        self.post_adapt(strategy, strategy.experience)


def buffer_dataset(
    images: torch.Tensor,
    labels: torch.Tensor,
    task_labels: torch.Tensor | None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ClassificationDataset | TaskAwareSupervisedClassificationDataset:
    """An Avalanche dataset of ``(x, y, t)`` items, or ``(x, y)`` when ``task_labels`` is None.

    ``images`` must already be normalised like the benchmark's transforms produce. ``transform``, an
    augmentation of such tensors (a benchmark's ``replay_transform``), is its train group's; the eval
    group returns the images as they are.
    """
    targets = DataAttribute(labels.tolist(), "targets")
    tensors = TensorDataset(images, labels)
    groups = TransformGroups({"train": transform, "eval": None}) if transform is not None else None
    if task_labels is None:
        return ClassificationDataset([tensors], data_attributes=[targets], transform_groups=groups)
    tasks = DataAttribute(task_labels.tolist(), "targets_task_labels", use_in_getitem=True)
    return TaskAwareSupervisedClassificationDataset(
        [tensors], data_attributes=[targets, tasks], transform_groups=groups
    )
