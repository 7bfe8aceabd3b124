"""The condenser contract, shared by coreset selection and learned condensation.

Like a scikit-learn estimator, a condenser is configured in ``__init__`` and acts in one
method: ``condense(train_set, ipc, seed) -> SyntheticSet``. Subclasses implement
:meth:`Condenser._condense`; validation, seeding, timing and metadata live here once.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from cl_nas.data import ImageDataset
from cl_nas.synthetic import SyntheticMeta, SyntheticSet
from cl_nas.utils import resolve_device, seed_everything


def check_ipc(train_set: ImageDataset, ipc: int) -> None:
    """Reject an ipc that is not a positive integer or exceeds some class's sample count."""
    if isinstance(ipc, bool) or not isinstance(ipc, int) or ipc < 1:
        raise ValueError(f"ipc (images per class) must be a positive integer, got {ipc!r}")
    counts = train_set.class_counts()
    if not counts:
        raise ValueError("the training set is empty: nothing to condense")
    smallest = min(counts, key=counts.get)
    if ipc > counts[smallest]:
        raise ValueError(
            f"ipc={ipc} exceeds the {counts[smallest]} samples of class {smallest}; use ipc <= {counts[smallest]}"
        )


def module_fingerprint(module: nn.Module) -> str:
    """A short SHA-256 of a module's class and state: identifies a given network (a teacher, an embedder)."""
    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A JSON-safe stand-in for a config value: a network becomes its fingerprint (two networks of one class
    must not share a cache key), any other object its class name."""
    if isinstance(value, nn.Module):
        return f"sha256:{module_fingerprint(value)}"
    try:
        json.dumps(value)
        return value
    except TypeError:
        return type(value).__name__


class Condenser(ABC):
    """Base class: turn a labelled training set into ``ipc`` images per class."""

    name: ClassVar[str]
    # init parameters that change *how* it runs but not *what* it produces (not in cache keys)
    runtime_params: ClassVar[frozenset[str]] = frozenset({"device", "progress"})

    def __init__(self, *, device: str | torch.device = "auto", progress: bool = False):
        self.device = resolve_device(device)
        self.progress = progress

    def get_config(self) -> dict[str, Any]:
        """The init parameters that determine the result, as plain values (scikit-learn style)."""
        params = {}
        for cls in type(self).__mro__:
            if cls is object or "__init__" not in vars(cls):
                continue
            for name, p in inspect.signature(cls.__init__).parameters.items():
                if (
                    name != "self"
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                    and name not in self.runtime_params
                ):
                    params.setdefault(name, _plain(getattr(self, name)))
        return dict(sorted(params.items()))

    def cache_key(self, train_set: ImageDataset, ipc: int, seed: int) -> str:
        """Content address of the result: (source-data hash, method, config, ipc, seed)."""
        blob = json.dumps([train_set.content_hash(), self.name, self.get_config(), ipc, seed], sort_keys=True)
        return f"{self.name}-ipc{ipc}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def validate(self, train_set: ImageDataset, ipc: int) -> None:
        """Checks before any computation; subclasses extend with method-specific ones."""
        check_ipc(train_set, ipc)

    def condense(self, train_set: ImageDataset, ipc: int, seed: int = 0) -> SyntheticSet:
        """Produce ``ipc`` images for every class present in ``train_set``."""
        self.validate(train_set, ipc)
        generator = seed_everything(seed)
        start = time.perf_counter()
        images, labels = self._condense(train_set, ipc, seed, generator)
        meta = SyntheticMeta.from_info(
            train_set.info,
            method=self.name,
            ipc=ipc,
            seed=seed,
            config=self.get_config(),
            source_hash=train_set.content_hash(),
            wall_seconds=time.perf_counter() - start,
        )
        return SyntheticSet(images.detach().float().cpu().contiguous(), labels.cpu().long(), meta)

    @abstractmethod
    def _condense(
        self, train_set: ImageDataset, ipc: int, seed: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(images, labels)``; inputs are already validated and RNGs seeded."""
