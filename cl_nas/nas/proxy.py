"""What a candidate trains on: a condensed set, a control at equal budget, or the full training split.

* a condenser name (``dm``, ``dc``, ``dsa``, ``apm``, ``random``, ``herding``, ``kcenter``): ``ipc``
  images per class from :class:`~cl_nas.condense.SyntheticCache`, trained for ``epochs`` epochs.
  A set is condensed once and reused by reruns and by every worker sharing the cache folder (a file
  lock makes the others wait instead of condensing it again). ``random`` and ``herding`` are the
  same-size real-subset controls;
* ``earlystop``: the control "early stopping on full data" at equal budget: the first
  ``ipc x classes x epochs`` samples of a seeded pass over the full training split, one epoch, i.e.
  full-data training stopped once it has used the proxy's number of sample gradients;
* ``naswot``: the training-free control, a zero-cost score of the untrained network on ``ipc x classes``
  training images (see :mod:`cl_nas.nas.zero_cost`);
* a synthetic-set file (``cl-nas condense --out``), checked against the dataset being searched;
* the full training split, for the ground truth.

The named proxies are the condensers and the kinds registered in :data:`PROXIES` (``earlystop``,
``naswot``); :func:`get_proxy` finds either.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from cl_nas.condense import SyntheticCache, available_methods, build_condenser
from cl_nas.data import ImageDataset
from cl_nas.registry import Registry, unknown_name_message
from cl_nas.synthetic import SyntheticSet
from cl_nas.utils import check_positive_int, exclusive_lock

EARLY_STOP = "earlystop"
FULL = "full"


ScoreAtInit = Callable[[nn.Module, torch.Tensor], float]


@dataclass(frozen=True)
class TrainingData:
    """The images a candidate trains on, for how long, and a key identifying their content.

    With ``score_at_init`` (a zero-cost proxy) nothing is trained: a candidate's score is
    ``score_at_init(untrained network, images)`` and ``epochs`` is 0.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    epochs: int
    key: str
    ipc: int | None = None  # None: not a per-class budget (full data, a file)
    score_at_init: ScoreAtInit | None = None

    def __post_init__(self) -> None:
        if self.score_at_init is None:
            check_positive_int("training epochs", self.epochs)
        elif self.epochs != 0:
            raise ValueError(f"a zero-cost proxy trains for 0 epochs, got {self.epochs}")

    @property
    def sample_passes(self) -> int:
        """Sample gradients one candidate costs: the compute budget that controls are matched on."""
        return self.images.shape[0] * self.epochs


class Proxy(ABC):
    """A kind of proxy: :meth:`check` its budget without any compute, then make its :meth:`data`.

    The condensation methods are proxies (:class:`Condensed`); other kinds register in :data:`PROXIES`
    with ``@PROXIES.register(name)`` on a subclass.
    """

    fixed_epochs: ClassVar[int | None] = None  # the epochs a candidate trains whatever --epochs says (None: those)

    def __init__(self, name: str, params: Mapping[str, Any] | None = None, device: str | torch.device = "auto"):
        self.name = name
        self.params = dict(params or {})
        self.device = device

    @abstractmethod
    def check(self, train: ImageDataset, *, ipc: int, epochs: int) -> None:
        """Raise ``ValueError`` if :meth:`data` would."""

    @abstractmethod
    def data(self, train: ImageDataset, *, ipc: int, epochs: int, seed: int, cache: SyntheticCache) -> TrainingData:
        """The training set of this proxy for ``train`` (the condensation ``seed``; a set cache)."""


PROXIES: Registry[type[Proxy]] = Registry("proxy")


class Condensed(Proxy):
    """``ipc`` images per class condensed by the method ``name`` (read from, or written to, the cache),
    trained for ``epochs`` epochs; ``params`` configure the condenser."""

    def __init__(self, name: str, params: Mapping[str, Any] | None = None, device: str | torch.device = "auto"):
        super().__init__(name, params, device)
        try:
            self.condenser = build_condenser(name, device=device, **self.params)
        except ValueError as err:  # an option the condenser does not take, or a bad value: name the proxy
            raise ValueError(f"proxy {name!r}: {err}") from err

    def check(self, train: ImageDataset, *, ipc: int, epochs: int) -> None:
        self.condenser.validate(train, ipc)

    def data(self, train: ImageDataset, *, ipc: int, epochs: int, seed: int, cache: SyntheticCache) -> TrainingData:
        condenser = self.condenser
        with exclusive_lock(cache.path(condenser, train, ipc, seed).with_suffix(".lock")):
            syn = cache.get_or_condense(condenser, train, ipc, seed)
        return TrainingData(self.name, syn.images, syn.labels, epochs, condenser.cache_key(train, ipc, seed), ipc)


def seeded_subset(train: ImageDataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` samples of a seeded pass over ``train``: ``(images, labels)``."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    return train.images[order], train.labels[order]


class SubsetProxy(Proxy):
    """A real-data control at the candidates' budget: the first :meth:`budget` samples of a seeded pass
    over the training split, trained on for ``fixed_epochs`` epochs (0: scored at initialisation by
    ``score_at_init``). Subclasses set the budget and, if they train none, the score."""

    score_at_init: ClassVar[ScoreAtInit | None] = None
    budget_flags: ClassVar[str] = "--ipc"  # the flags that set the budget, named in the error

    def budget(self, train: ImageDataset, *, ipc: int, epochs: int) -> int:
        return ipc * len(train.classes)

    def check(self, train: ImageDataset, *, ipc: int, epochs: int) -> None:
        budget = self.budget(train, ipc=ipc, epochs=epochs)
        if budget > len(train):
            raise ValueError(
                f"{self.name} at ipc={ipc}, {epochs} epochs needs {budget} samples, more than the {len(train)} "
                f"training images; lower {self.budget_flags}"
            )

    def data(self, train: ImageDataset, *, ipc: int, epochs: int, seed: int, cache: SyntheticCache) -> TrainingData:
        budget = self.budget(train, ipc=ipc, epochs=epochs)
        key = f"{self.name}-{train.content_hash()}-n{budget}-s{seed}"
        images, labels = seeded_subset(train, budget, seed)
        return TrainingData(self.name, images, labels, self.fixed_epochs, key, ipc, score_at_init=self.score_at_init)


@PROXIES.register(EARLY_STOP)
class EarlyStop(SubsetProxy):
    """Early stopping on full data at equal budget: the first ``ipc x classes x epochs`` samples of a
    seeded pass over the training split, one epoch."""

    fixed_epochs = 1
    budget_flags = "--ipc or --epochs"

    def budget(self, train: ImageDataset, *, ipc: int, epochs: int) -> int:
        return ipc * len(train.classes) * epochs


def proxy_names() -> list[str]:
    """Every accepted proxy name: the registered condensers and :data:`PROXIES`."""
    return [*available_methods(), *PROXIES.names()]


def proxy_epochs(name: str, epochs: int) -> int:
    """The epochs a candidate of the proxy ``name`` trains for at the study's ``epochs``."""
    fixed = PROXIES.get(name).fixed_epochs if name in PROXIES else None
    return epochs if fixed is None else fixed


def get_proxy(name: str, params: Mapping[str, Any] | None = None, device: str | torch.device = "auto") -> Proxy:
    """The proxy ``name`` (a condensation method or a :data:`PROXIES` entry); unknown names raise ``ValueError``."""
    if name in PROXIES:
        return PROXIES.get(name)(name, params, device)
    if name in available_methods():
        return Condensed(name, params, device)
    raise ValueError(unknown_name_message("proxy", name, proxy_names()))


def check_proxy(
    name: str, train: ImageDataset, *, ipc: int, epochs: int, params: dict | None = None, device: str = "auto"
) -> None:
    """Raise ``ValueError`` if :func:`proxy_data` would, without condensing anything."""
    get_proxy(name, params, device).check(train, ipc=ipc, epochs=epochs)


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
    proxy = get_proxy(name, params, device)
    proxy.check(train, ipc=ipc, epochs=epochs)
    return proxy.data(train, ipc=ipc, epochs=epochs, seed=seed, cache=cache)


def file_data(path: str | os.PathLike, train: ImageDataset, *, epochs: int) -> TrainingData:
    """A synthetic-set file as the proxy; its images must have the shape of ``train``'s."""
    syn = SyntheticSet.load(path)
    syn.check_compatible(train.info.channels, train.info.image_size)
    data = ImageDataset(syn.images, syn.labels, train.info)
    return TrainingData(f"file:{syn.meta.method}", data.images, data.labels, epochs, data.content_hash(), syn.meta.ipc)


def full_data(train: ImageDataset, *, epochs: int) -> TrainingData:
    """The whole training split: what the ground truth trains on."""
    return TrainingData(FULL, train.images, train.labels, epochs, f"{FULL}-{train.content_hash()}")
