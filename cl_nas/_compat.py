"""Make the registry's CUDA build of torchvision importable next to a CPU build of torch.

torchvision 0.28.0 is published on PyPI only as a CUDA build. Its compiled ops (``_C.so``)
fail to load against the CPU wheel of torch 2.13.0, and ``torchvision/_meta_registrations.py``
then calls ``torch.library.register_fake("torchvision::nms")`` (and ``qnms``) unconditionally,
which raises ``operator torchvision::nms does not exist``. That breaks ``import torchvision``
and with it ``import avalanche``.

The shim runs before torchvision is first imported. It tries to load the compiled ops exactly
as torchvision would; only if that fails does it *define* the two missing operator schemas,
so the fake-kernel registration succeeds. No kernel is attached: calling ``torchvision.ops.nms``
still fails loudly, as it would without the extension. cl_nas uses none of the detection ops.
Where the extension loads (a matching CUDA torch, or a CPU torchvision), the shim does nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: torch.library.Library | None = None  # kept alive: dropping it unregisters the schemas


def _torchvision_extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # torchvision not installed: nothing to patch
    candidates = sorted(Path(spec.submodule_search_locations[0]).glob("_C*.so")) + sorted(
        Path(spec.submodule_search_locations[0]).glob("_C*.pyd")
    )
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, ImportError):
        return False
    return True


def ensure_torchvision_importable() -> None:
    """Define ``torchvision::nms``/``qnms`` schemas when torchvision's C ops cannot load."""
    global _library
    if _library is not None or "torchvision" in sys.modules:
        return
    if _torchvision_extension_loads():
        return
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
