"""Small helpers shared across cl_nas: devices, seeding, machine description."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import platform
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def coerce_value(text: str, *, keywords: bool = True) -> Any:
    """Parse a command-line value: int, float, else the string itself; with ``keywords`` also
    true/false and none (model specs turn that off: ``pool=none`` names an option there)."""
    lowered = text.lower()
    if keywords and lowered in ("true", "false"):
        return lowered == "true"
    if keywords and lowered == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["iterations=200", "lr_img=1"]`` -> ``{"iterations": 200, "lr_img": 1}``."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects key=value, got {item!r}")
        params[key.strip()] = coerce_value(value.strip())
    return params


def parse_method_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["dm.iterations=200", "dc.lr_img=0.1"]`` -> ``{"dm": {"iterations": 200}, "dc": {"lr_img": 0.1}}``."""
    per_method: dict[str, dict[str, Any]] = {}
    for item in items:
        method, dot, rest = item.partition(".")
        if not dot:
            raise ValueError(f"--param expects METHOD.KEY=VALUE, got {item!r}")
        per_method.setdefault(method.lower(), {}).update(parse_params([rest]))
    return per_method


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) picks CUDA when available, else CPU; anything else is validated."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use --device cpu")
    return dev


def native_bf16(device: str | torch.device | None = "auto") -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware, so that bf16 autocast speeds it up.

    CPUs need AVX-512-BF16 or AMX (AMD Zen 4, Intel Sapphire Rapids and later). Without them
    (AVX2-only CPUs such as AMD Zen 3) PyTorch emulates bf16: a ConvNet-3 forward ran 14x slower
    under bf16 autocast than in float32 on such a 2-core AMD EPYC (``benchmarks/bf16.py``). CUDA
    devices need bf16 support.
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return dev.type == "cpu" and _cpu_native_bf16()


@functools.cache
def _cpu_native_bf16() -> bool:
    # torch.cpu's ISA probes (the ones torch.compile uses); absent ones count as unsupported
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` field of ``/proc/cpuinfo`` (e.g. ``"model name"``), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = (line.split(":", 1) for line in f if ":" in line)
            return next((value.strip() for key, value in fields if key.strip() == name), None)
    except OSError:
        return None


def resolve_bf16(bf16: bool | None, device: str | torch.device | None = "auto") -> bool:
    """A ``bf16`` option's value: ``None`` means :func:`native_bf16`; an explicit ``True`` where bf16
    is emulated is honoured, with a warning, since it changes results' numerics only slightly but
    their cost several-fold."""
    if bf16 is None:
        return native_bf16(device)
    if bf16 and not native_bf16(device):
        warnings.warn(
            f"bf16 autocast requested on {resolve_device(device)}, which has no native bf16 (no AVX-512-BF16 or "
            "AMX): it is emulated and can be more than 10x slower than float32; leave bf16 unset (auto) or turn it off",
            RuntimeWarning,
            stacklevel=3,
        )
    return bool(bf16)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded the same for explicit use."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def machine_description() -> str:
    """A short, CSV-friendly name of the machine a result was measured on, with its vector ISA
    (``AVX2``, ``AVX512``, ``+BF16`` where bf16 is native): CPUs of one model name differ in it."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (cuda)"
    cpu = cpuinfo_field("model name") or platform.processor() or platform.machine()
    isa = torch.backends.cpu.get_cpu_capability() + ("+BF16" if native_bf16("cpu") else "")
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, {isa}"


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on the file ``path`` (created if missing) while the block runs.

    Processes that share a cache folder or a results table take it so that they do not condense
    the same set twice or overwrite each other's rows. The lock is released when the file closes,
    also if the process dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
