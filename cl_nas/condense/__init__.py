"""Condensation methods behind one interface, and a registry to build them by name."""

from __future__ import annotations

from typing import Any

from cl_nas.condense.apm import APMCondenser
from cl_nas.condense.base import Condenser, check_ipc
from cl_nas.condense.cache import SyntheticCache
from cl_nas.condense.coreset import HerdingCoreset, KCenterCoreset, RandomCoreset
from cl_nas.condense.dc import DCCondenser, DSACondenser
from cl_nas.condense.dm import DMCondenser
from cl_nas.condense.iterative import CondensationDiverged, IterativeCondenser, Snapshot

_REGISTRY: dict[str, type[Condenser]] = {}


def register_condenser(cls: type[Condenser]) -> type[Condenser]:
    """Register a :class:`Condenser` subclass under its ``name`` (usable as a decorator)."""
    _REGISTRY[cls.name] = cls
    return cls


def available_methods() -> list[str]:
    return sorted(_REGISTRY)


def build_condenser(method: str, **config: Any) -> Condenser:
    """Instantiate the condenser registered as ``method`` with ``config`` keyword arguments."""
    key = method.lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown condensation method {method!r}; available: {', '.join(available_methods())}")
    return _REGISTRY[key](**config)


for _cls in (RandomCoreset, HerdingCoreset, KCenterCoreset, DMCondenser, DCCondenser, DSACondenser, APMCondenser):
    register_condenser(_cls)

__all__ = [
    "APMCondenser",
    "CondensationDiverged",
    "Condenser",
    "DCCondenser",
    "DMCondenser",
    "DSACondenser",
    "HerdingCoreset",
    "IterativeCondenser",
    "KCenterCoreset",
    "RandomCoreset",
    "Snapshot",
    "SyntheticCache",
    "available_methods",
    "build_condenser",
    "check_ipc",
    "register_condenser",
]
