"""Replay memories by name: Avalanche's real-exemplar buffers and condensed buffers of any engine method.

Names (``<name>[@<precision>]``):

* ``reservoir``: Avalanche's ``ReservoirSamplingBuffer`` (uniform over the stream, not class-balanced).
* ``class-balanced``: Avalanche's ``ClassBalancedBuffer`` (random exemplars, equal share per class).
* ``herding``: Avalanche's ``ParametricBuffer(groupby="class")`` with its ``HerdingSelectionStrategy`` on the
  learner's ``embed`` features (see :class:`Embedding` for why not on a layer of the model itself), ordering
  only as many exemplars as the memory can keep (:class:`BoundedHerding`). It selects with the learner as the
  strategy leaves it at the update, which the registered strategies make one trained on the experience
  (:mod:`cl_nas.cl.strategies`; :func:`selects_with_learner` tells which memories need that).
* any condensation method of :mod:`cl_nas.condense` (``dc``, ``dsa``, ``dm``, ``apm``, ...), or
  ``condensed-<method>`` (needed for ``condensed-herding``, whose plain name is the Avalanche baseline):
  a :class:`~cl_nas.cl.condensed_buffer.CondensedBuffer`.
* ``apm-teacher``: condensed by APM with the current learner as its teacher.

``@fp16`` / ``@uint8`` store any buffer's images at reduced precision, real exemplars (a
:class:`PrecisionBuffer` around Avalanche's) and condensed ones alike; the budget stays in bytes, so they
hold about 2x / 4x the images (see :mod:`cl_nas.cl.precision`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from avalanche.training.storage_policy import (
    ClassBalancedBuffer,
    ExemplarsBuffer,
    FeatureBasedExemplarsSelectionStrategy,
    HerdingSelectionStrategy,
    ParametricBuffer,
    ReservoirSamplingBuffer,
)
from torch import nn

from cl_nas.cl.adapters import PostAdaptBuffer, buffer_dataset, has_task_labels, to_image_dataset
from cl_nas.cl.condensed_buffer import CondensedBuffer
from cl_nas.cl.precision import check_precision, decode, encode, stored_bytes
from cl_nas.cl.resume import ResumableBuffer
from cl_nas.condense import IterativeCondenser, SyntheticCache, available_methods, build_condenser
from cl_nas.data import DatasetInfo

BASELINES = ("reservoir", "class-balanced", "herding")
# Avalanche's class-balanced and herding buffers split data with a task-aware subset that turns (x, y)
# items into (x, y, t) ones, which then cannot be batched with the stream's: (x, y, t) streams only.
NEEDS_TASK_LABELS = ("class-balanced", "herding")
TEACHER_SUFFIX = "-teacher"
CONDENSED_PREFIX = "condensed-"


@dataclass(frozen=True)
class BufferSpec:
    """A parsed buffer name."""

    name: str
    kind: str  # "none", one of BASELINES, or "condensed"
    method: str | None = None  # the condenser, for kind "condensed"
    precision: str = "fp32"
    teacher_from_model: bool = False

    @property
    def has_memory(self) -> bool:
        return self.kind != "none"


def available_buffers() -> list[str]:
    methods = [m for m in available_methods() if m not in BASELINES]
    return [*BASELINES, *methods, f"apm{TEACHER_SUFFIX}", *(CONDENSED_PREFIX + m for m in available_methods())]


def parse_buffer(name: str) -> BufferSpec:
    """Parse ``<name>[@<precision>]``; unknown names or precisions raise ``ValueError``."""
    name = name.lower()
    base, _, precision = name.partition("@")
    precision = check_precision(precision or "fp32")
    if base == "none":
        if precision != "fp32":
            raise ValueError(f"buffer {name!r}: 'none' holds nothing to store at a precision")
        return BufferSpec(name, base)
    if base in BASELINES:
        return BufferSpec(name, base, precision=precision)
    teacher = base == "apm" + TEACHER_SUFFIX
    method = "apm" if teacher else base.removeprefix(CONDENSED_PREFIX)
    if method not in available_methods():
        raise ValueError(f"unknown buffer {name!r}; available: none, {', '.join(available_buffers())}")
    return BufferSpec(name, "condensed", method, precision, teacher)


class Embedding(nn.Module):
    """A learner's ``embed`` output as a named layer (``features``) for Avalanche's feature-based selection.

    ``HerdingSelectionStrategy`` reads a named layer's output and treats it as ``(N, D)``; a ConvNet's
    feature block outputs ``(N, C, H, W)`` maps, on which Avalanche's herding indexes out of range.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.features = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.model.embed(x))


class BoundedHerding(HerdingSelectionStrategy):
    """Avalanche's herding order, computed for the first ``limit`` picks only; the rest follow in index order.

    ``ParametricBuffer`` keeps a prefix of the order no longer than the memory, and herding is greedy, so
    the kept exemplars are exactly Avalanche's. Avalanche orders the whole group, quadratic in its size:
    minutes per class of Split-MNIST on a CPU, where ``limit`` (the memory size) picks take seconds.
    """

    def __init__(self, model: nn.Module, layer_name: str, limit: int):
        super().__init__(model, layer_name)
        self.limit = limit

    def make_sorted_indices_from_features(self, features: torch.Tensor) -> list[int]:
        # Avalanche's loop (HerdingSelectionStrategy), stopped after ``limit`` picks
        selected: list[int] = []
        center = features.mean(dim=0)
        current_center = center * 0
        for i in range(min(self.limit, len(features))):
            candidate_centers = current_center * i / (i + 1) + features / (i + 1)
            distances = ((candidate_centers - center) ** 2).sum(dim=1)
            distances[selected] = math.inf
            selected.append(int(distances.argmin()))
            current_center = candidate_centers[selected[-1]]
        chosen = set(selected)
        return selected + [i for i in range(len(features)) if i not in chosen]


def build_memory(
    spec: BufferSpec,
    max_size: int,
    model: nn.Module,
    info: DatasetInfo,
    *,
    condense_params: dict[str, Any] | None = None,
    cache: SyntheticCache | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int = 0,
    total_num_classes: int | None = None,
    device: str | torch.device = "auto",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ExemplarsBuffer:
    """The storage policy of ``spec`` holding ``max_size`` images, for a stream of ``info``'s dataset.

    ``condense_params`` configure the condenser; ``checkpoint_dir`` lets a long condensation resume
    after a crash (learned methods only); ``seed`` is the condensation seed. With ``total_num_classes``
    every class gets a fixed ``max_size // total_num_classes`` images (the reservoir, being class-blind,
    ignores it); without, the classes seen so far share ``max_size``. ``transform`` (the benchmark's
    ``replay_transform``) augments the replayed images of memories that store tensors, condensed or at a
    reduced precision, as the stream's own training transform augments Avalanche's real exemplars.
    """
    if spec.kind in BASELINES:
        real = _real_exemplars(spec.kind, max_size, model, total_num_classes)
        return real if spec.precision == "fp32" else PrecisionBuffer(real, info, spec.precision, transform)
    if spec.kind != "condensed":
        raise ValueError(f"buffer {spec.name!r} holds no memory")
    condenser = build_condenser(spec.method, device=device, **(condense_params or {}))
    if checkpoint_dir is not None and isinstance(condenser, IterativeCondenser):
        condenser.set_params(checkpoint_dir=checkpoint_dir)  # a runtime option: not part of the cache key
    return CondensedBuffer(
        max_size,
        condenser,
        info,
        precision=spec.precision,
        cache=cache,
        seed=seed,
        teacher_from_model=spec.teacher_from_model,
        total_num_classes=total_num_classes,
        transform=transform,
    )


def _real_exemplars(kind: str, max_size: int, model: nn.Module, total_num_classes: int | None) -> ExemplarsBuffer:
    """Avalanche's buffer of real exemplars ``kind`` (one of :data:`BASELINES`)."""
    if kind == "reservoir":
        return ReservoirSamplingBuffer(max_size)
    if kind == "class-balanced":
        adaptive = total_num_classes is None
        return ClassBalancedBuffer(max_size, adaptive_size=adaptive, total_num_classes=total_num_classes)
    herding = BoundedHerding(Embedding(model), "features", limit=max_size)
    memory = ParametricBuffer(max_size, groupby="class", selection_strategy=herding)
    if total_num_classes is not None:  # ParametricBuffer's constructor has no such option; its base class does
        memory.adaptive_size, memory.total_num_groups = False, total_num_classes
    return memory


class PrecisionBuffer(PostAdaptBuffer):
    """Any storage policy's exemplars, stored at a reduced ``precision`` and replayed decoded.

    ``inner`` chooses (Avalanche's class-balanced, herding or reservoir buffer, its ``max_size`` counted in
    images at ``precision``: about 4x the fp32 count at uint8); after each of its updates this buffer reads
    the chosen items through their eval transforms, stores them encoded (:func:`~cl_nas.cl.precision.encode`)
    and replays their decoded images through ``transform`` (the benchmark's ``replay_transform``), as a
    condensed buffer does: the augmentation Avalanche's fp32 exemplars get from the stream's train
    transform. Items keep the inner buffer's form, ``(x, y, t)`` or ``(x, y)``. Real images of 8-bit
    datasets survive uint8 exactly.
    """

    def __init__(
        self,
        inner: ExemplarsBuffer,
        info: DatasetInfo,
        precision: str,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__(inner.max_size)
        self.inner, self.info, self.precision = inner, info, check_precision(precision)
        self.transform = transform
        self.stored = torch.empty(0)
        self.labels = torch.empty(0, dtype=torch.long)

    @property
    def stored_bytes(self) -> int:
        """Bytes of the stored images and their labels (what the memory budget counts)."""
        return stored_bytes(self.stored, self.labels, self.info)

    def post_adapt(self, agent: Any, exp: Any) -> None:
        self.inner.post_adapt(agent, exp)
        self._store()

    def resize(self, strategy: Any, new_size: int) -> None:
        self.inner.resize(strategy, new_size)
        self.max_size = new_size
        self._store()

    def _store(self) -> None:
        chosen = self.inner.buffer
        held = to_image_dataset(chosen, self.info)
        self.stored, self.labels = encode(held.images, self.info, self.precision), held.labels
        tasks = torch.as_tensor(list(chosen.targets_task_labels)) if has_task_labels(chosen) else None
        self.buffer = buffer_dataset(decode(self.stored, self.info, self.precision), self.labels, tasks, self.transform)


def selects_with_learner(memory: ExemplarsBuffer) -> bool:
    """Whether ``memory``'s updates read the learner (a feature-based selection such as herding, a condensed
    buffer taught by the learner or shrinking its groups by herding), so they must see a learner that has
    trained on the experience. Wrappers (:class:`PrecisionBuffer`, :class:`~cl_nas.cl.resume.ResumableBuffer`)
    answer for the buffer they wrap; storage policies this module does not know are taken not to."""
    if isinstance(memory, PrecisionBuffer | ResumableBuffer):
        return selects_with_learner(memory.inner)
    if isinstance(memory, ParametricBuffer):
        return isinstance(memory.selection_strategy, FeatureBasedExemplarsSelectionStrategy)
    if isinstance(memory, CondensedBuffer):
        return memory.teacher_from_model or memory.total_num_classes is None
    return False
