"""Condensation methods behind one interface, and a registry to build them by name."""

from __future__ import annotations

from typing import Any

from cl_nas.condense.apm import APMCondenser
from cl_nas.condense.base import CONDENSERS, Condenser, Option, check_ipc, register_condenser
from cl_nas.condense.cache import SyntheticCache
from cl_nas.condense.coreset import HerdingCoreset, KCenterCoreset, RandomCoreset
from cl_nas.condense.dc import DCCondenser, DSACondenser
from cl_nas.condense.dm import DMCondenser
from cl_nas.condense.iterative import CondensationDiverged, IterativeCondenser, Snapshot


def available_methods() -> list[str]:
    """The registered method names, sorted."""
    return CONDENSERS.names()


def build_condenser(method: str, **settings: Any) -> Condenser:
    """The condenser registered as ``method`` (any case), built with ``settings`` (values or their text)."""
    return CONDENSERS.build(method, **settings)


__all__ = [
    "CONDENSERS",
    "APMCondenser",
    "CondensationDiverged",
    "Condenser",
    "DCCondenser",
    "DMCondenser",
    "DSACondenser",
    "HerdingCoreset",
    "IterativeCondenser",
    "KCenterCoreset",
    "Option",
    "RandomCoreset",
    "Snapshot",
    "SyntheticCache",
    "available_methods",
    "build_condenser",
    "check_ipc",
    "register_condenser",
]
