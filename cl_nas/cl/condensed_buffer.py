"""CondensedBuffer: an Avalanche storage policy whose memory is condensed, one synthetic group per experience.

After each experience the buffer reads that experience's training data, condenses it with any
condenser of :mod:`cl_nas.condense` into the current per-class budget and keeps the result as that
experience's *group*. The per-class budget is either

* shared (default, Avalanche's ``adaptive_size``): ``max_size // seen_classes`` images per class, so when
  new classes arrive every older group shrinks; or
* fixed (``total_num_classes`` given, the DM paper's protocol): ``max_size // total_num_classes`` images
  for every class from the start, so groups never shrink and the memory fills up as classes arrive.

Rebalancing subselects, it does not re-condense: an experience's real data is gone once the stream has
moved on (re-condensing would need it), and condensing again from the stored synthetic images would
cost a full condensation per group per experience. A shrinking group keeps, class by class, the images
chosen by herding in the feature space of the current learner (``model.embed``), i.e. the subset whose
mean feature stays closest to the group's mean, which is also what distribution matching optimises.
A learner without ``embed`` falls back to a random subset. A new group is condensed at the current
per-class budget (capped at the smallest class's sample count), so the largest condensation happens
at the first experience; the remainder of ``max_size`` not divisible by the seen classes stays unused.

Streams that revisit classes (Avalanche's ``split_online_stream``, data-incremental streams): when an
experience brings a class already in memory, that class's stored images leave their old group and are
condensed again together with the experience's new real images of the class, each stored image counting
as one sample, into the same per-class budget; the new group holds every class of the experience. The
memory never holds a class twice and never exceeds its budget.

Storage: images are kept at ``precision`` (see :mod:`cl_nas.cl.precision`); ``max_size`` counts
images, so a byte budget (images and labels) is turned into ``max_size`` with
:func:`~cl_nas.cl.precision.images_in_budget`.
The buffer's dataset holds the decoded, normalised images, with items shaped like the stream's:
``(x, y, t)`` or ``(x, y)``. Its train group applies ``transform``, if given: pass the benchmark's
``replay_transform`` (CIFAR: Avalanche's random crop and flip) so that condensed images replay
augmented as the stream's real ones train; its eval group returns the images as stored.

Reuse: with a :class:`~cl_nas.condense.SyntheticCache`, a set is condensed once per (experience data,
method, config, ipc, seed): another strategy or a resumed run on the same stream finds it there.
With ``teacher_from_model`` (APM only) the current learner, just trained on the experience, is
APM's teacher; its weights are part of the cache key.

Condensers reseed the global generators; the buffer restores them afterwards, so adding it to a
strategy does not change the random draws of training.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cl_nas.cl.adapters import PostAdaptBuffer, buffer_dataset, experience_task_label, to_image_dataset
from cl_nas.cl.precision import check_precision, decode, encode, stored_bytes
from cl_nas.cl.resume import preserved_rng
from cl_nas.condense import APMCondenser, Condenser, HerdingCoreset, RandomCoreset, SyntheticCache
from cl_nas.data import DatasetInfo, ImageDataset
from cl_nas.synthetic import SyntheticSet
from cl_nas.utils import check_positive_int


@dataclass
class SyntheticGroup:
    """One experience's condensed images, as stored, with their labels."""

    experience: int
    stored: torch.Tensor  # (N, C, H, W) at the buffer's precision
    labels: torch.Tensor  # (N,) int64
    task_label: int | None  # None for streams of (x, y) items
    condense_seconds: float  # compute time of the set (as recorded when it was made, also on a cache hit)

    def per_class(self) -> int:
        return int(torch.bincount(self.labels).max()) if len(self.labels) else 0


class CondensedBuffer(PostAdaptBuffer):
    """A replay memory of condensed images: ``max_size`` images split equally by class, shared by the classes
    seen so far or (``total_num_classes``) fixed per class from the start."""

    def __init__(
        self,
        max_size: int,
        condenser: Condenser,
        info: DatasetInfo,
        *,
        precision: str = "fp32",
        cache: SyntheticCache | None = None,
        seed: int = 0,
        teacher_from_model: bool = False,
        total_num_classes: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        check_positive_int("max_size (images)", max_size)
        check_positive_int("total_num_classes", total_num_classes, optional=True)
        if teacher_from_model and not isinstance(condenser, APMCondenser):
            raise ValueError(f"teacher_from_model needs the APM condenser, not {condenser.name!r}")
        super().__init__(max_size)
        self.condenser, self.info, self.precision = condenser, info, check_precision(precision)
        self.cache, self.seed, self.teacher_from_model = cache, seed, teacher_from_model
        self.total_num_classes, self.transform = total_num_classes, transform
        self.groups: list[SyntheticGroup] = []
        self.condensed = 0  # sets this buffer had to compute (cache misses)
        self.cache_hits = 0
        self.last_update_seconds = 0.0  # wall time of the latest post_adapt (condensation + subselection)

    # --- what the memory holds ---------------------------------------------------------------------
    @property
    def seen_classes(self) -> set[int]:
        return {int(c) for g in self.groups for c in g.labels.unique()}

    @property
    def stored_bytes(self) -> int:
        """Bytes of the stored images and their labels (what the memory budget counts)."""
        return sum(stored_bytes(g.stored, g.labels, self.info) for g in self.groups)

    def per_class_budget(self, n_seen: int) -> int:
        """Images per class once ``n_seen`` classes are seen; below 1 raises ``ValueError``."""
        n_classes = self.total_num_classes or n_seen
        share = self.max_size // n_classes
        if share < 1 or n_seen > n_classes:
            raise ValueError(
                f"a memory of {self.max_size} images cannot hold one image for each of {max(n_seen, n_classes)} "
                "classes; raise the memory budget"
            )
        return share

    # --- Avalanche storage-policy interface ----------------------------------------------------------
    def post_adapt(self, agent: Any, exp: Any) -> None:
        """Condense ``exp``'s training data (with the stored images of any class it revisits) into a new group,
        and shrink the older ones to the new share."""
        start = time.perf_counter()
        data = to_image_dataset(exp.dataset, self.info)
        task_label = experience_task_label(exp.dataset)
        if self.groups and (task_label is None) != (self.groups[0].task_label is None):
            raise ValueError("experiences of one stream mix (x, y) and (x, y, t) items")
        share = self.per_class_budget(len(self.seen_classes | set(data.classes)))
        revisited = sorted(set(data.classes) & self.seen_classes)
        if revisited:
            stored = self._take(revisited)
            data = ImageDataset(
                torch.cat([data.images, stored.images]), torch.cat([data.labels, stored.labels]), self.info
            )
        ipc = min(share, min(data.class_counts().values()))
        model = getattr(agent, "model", None)
        with preserved_rng():
            synthetic = self._condense(data, ipc, model)
            self.groups.append(
                SyntheticGroup(
                    exp.current_experience,
                    encode(synthetic.images, self.info, self.precision),
                    synthetic.labels.clone(),
                    task_label,
                    synthetic.meta.wall_seconds,
                )
            )
            self._shrink(share, model)
        self._rebuild()
        self.last_update_seconds = time.perf_counter() - start

    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``; groups shrink to the new share (they cannot grow: their data is gone)."""
        self.max_size = new_size
        if self.groups:
            with preserved_rng():
                self._shrink(self.per_class_budget(len(self.seen_classes)), getattr(strategy, "model", None))
            self._rebuild()

    # --- internals ---------------------------------------------------------------------------------
    def _condense(self, data: ImageDataset, ipc: int, model: nn.Module | None) -> SyntheticSet:
        if self.teacher_from_model:
            if model is None:
                raise ValueError("teacher_from_model needs a strategy with a model")
            self.condenser.set_params(teacher=model)  # APM copies and freezes it; its weights enter the cache key
        cached = self.cache.get(self.condenser, data, ipc, self.seed) if self.cache is not None else None
        if cached is not None:
            self.cache_hits += 1
            return cached
        self.condensed += 1
        if self.cache is not None:  # looked up above: condense and store
            return self.cache.condense(self.condenser, data, ipc, self.seed)
        return self.condenser.condense(data, ipc, self.seed)

    def _take(self, classes: list[int]) -> ImageDataset:
        """Remove ``classes``' images from their groups (dropping groups left empty) and return them decoded."""
        taken_images, taken_labels = [], []
        for group in self.groups:
            moving = torch.isin(group.labels, torch.tensor(classes))
            taken_images.append(decode(group.stored[moving], self.info, self.precision))
            taken_labels.append(group.labels[moving])
            group.stored, group.labels = group.stored[~moving], group.labels[~moving]
        self.groups = [g for g in self.groups if len(g.labels)]
        return ImageDataset(torch.cat(taken_images), torch.cat(taken_labels), self.info)

    def _shrink(self, share: int, model: nn.Module | None) -> None:
        """Subselect every group holding more than ``share`` images of a class (herding on the learner)."""
        for group in self.groups:
            if group.per_class() <= share:
                continue
            images = decode(group.stored, self.info, self.precision)
            kept = _selector(model).condense(ImageDataset(images, group.labels, self.info), share, seed=self.seed)
            # re-encoding decoded values is exact, so the kept images are stored bit for bit as before
            group.stored, group.labels = encode(kept.images, self.info, self.precision), kept.labels

    def _rebuild(self) -> None:
        images = torch.cat([decode(g.stored, self.info, self.precision) for g in self.groups])
        labels = torch.cat([g.labels for g in self.groups])
        tasks = None
        if self.groups[0].task_label is not None:
            tasks = torch.cat([torch.full_like(g.labels, g.task_label) for g in self.groups])
        self.buffer = buffer_dataset(images, labels, tasks, self.transform)


def _selector(model: nn.Module | None) -> Condenser:
    """Herding on the learner's features when it has ``embed`` (cl_nas models), else a random subset."""
    if model is not None and hasattr(model, "embed"):
        return HerdingCoreset(embedder=model, device=next(model.parameters()).device)
    return RandomCoreset()
