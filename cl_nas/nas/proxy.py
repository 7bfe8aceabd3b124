"""What a candidate trains on: a condensed set, a control at equal budget, or the full training split.

* a condenser name (``dm``, ``dc``, ``dsa``, ``apm``, ``random``, ``herding``, ``kcenter``): ``ipc``
  images per class from :class:`~cl_nas.condense.SyntheticCache`, trained for ``epochs`` epochs.
  A set is condensed once and reused by reruns and by every worker sharing the cache folder (a file
  lock makes the others wait instead of condensing it again). ``random`` and ``herding`` are the
  same-size real-subset controls;
* ``earlystop``: the control "early stopping on full data" at equal budget: the first
  ``ipc x classes x epochs`` samples of a seeded pass over the full training split, one epoch, i.e.
  full-data training stopped once it has used the proxy's number of sample gradients;
* a synthetic-set file (``cl-nas condense --out``), checked against the dataset being searched;
* the full training split, for the ground truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from cl_nas.condense import Condenser, SyntheticCache, available_methods, build_condenser
from cl_nas.data import ImageDataset
from cl_nas.synthetic import SyntheticSet
from cl_nas.utils import exclusive_lock

EARLY_STOP = "earlystop"
FULL = "full"


def proxy_names() -> list[str]:
    """Every accepted proxy name: the registered condensers and ``earlystop``."""
    return [*available_methods(), EARLY_STOP]


@dataclass(frozen=True)
class TrainingData:
    """The images a candidate trains on, for how long, and a key identifying their content."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    epochs: int
    key: str
    ipc: int | None = None  # None: not a per-class budget (full data, a file)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"training epochs must be a positive integer, got {self.epochs!r}")

    @property
    def sample_passes(self) -> int:
        """Sample gradients one candidate costs: the compute budget that controls are matched on."""
        return self.images.shape[0] * self.epochs


def _condenser(name: str, params: dict | None, device: str | torch.device) -> Condenser:
    if name not in available_methods():
        raise ValueError(f"unknown proxy {name!r}; choose one of {', '.join(proxy_names())}")
    try:
        return build_condenser(name, device=device, **(params or {}))
    except TypeError as err:  # an option the condenser does not take
        raise ValueError(f"proxy {name!r}: {err}") from err


def check_proxy(
    name: str, train: ImageDataset, *, ipc: int, epochs: int, params: dict | None = None, device: str = "auto"
) -> None:
    """Raise ``ValueError`` if :func:`proxy_data` would, without condensing anything."""
    if name == EARLY_STOP:
        budget = ipc * len(train.classes) * epochs
        if budget > len(train):
            raise ValueError(
                f"earlystop at ipc={ipc} x {epochs} epochs needs {budget} samples, more than one epoch of the "
                f"{len(train)} training images; lower --ipc or --epochs"
            )
    else:
        _condenser(name, params, device).validate(train, ipc)


def proxy_data(
    name: str,
    train: ImageDataset,
    *,
    ipc: int,
    epochs: int,
    seed: int,
    cache: SyntheticCache,
    params: dict | None = None,
    device: str | torch.device = "auto",
) -> TrainingData:
    """The proxy ``name`` for ``train``, at ``ipc`` images per class and ``epochs`` epochs (or its budget)."""
    check_proxy(name, train, ipc=ipc, epochs=epochs, params=params, device=device)
    if name == EARLY_STOP:
        budget = ipc * len(train.classes) * epochs
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:budget]
        key = f"{EARLY_STOP}-{train.content_hash()}-n{budget}-s{seed}"
        return TrainingData(EARLY_STOP, train.images[order], train.labels[order], 1, key, ipc)
    condenser = _condenser(name, params, device)
    with exclusive_lock(cache.path(condenser, train, ipc, seed).with_suffix(".lock")):
        syn = cache.get_or_condense(condenser, train, ipc, seed)
    return TrainingData(name, syn.images, syn.labels, epochs, condenser.cache_key(train, ipc, seed), ipc)


def file_data(path: str | os.PathLike, train: ImageDataset, *, epochs: int) -> TrainingData:
    """A synthetic-set file as the proxy; its images must have the shape of ``train``'s."""
    syn = SyntheticSet.load(path)
    syn.check_compatible(train.info.channels, train.info.image_size)
    data = ImageDataset(syn.images, syn.labels, train.info)
    return TrainingData(f"file:{syn.meta.method}", data.images, data.labels, epochs, data.content_hash(), syn.meta.ipc)


def full_data(train: ImageDataset, *, epochs: int) -> TrainingData:
    """The whole training split: what the ground truth trains on."""
    return TrainingData(FULL, train.images, train.labels, epochs, f"{FULL}-{train.content_hash()}")
