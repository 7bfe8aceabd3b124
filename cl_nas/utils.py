"""Small helpers shared across cl_nas: argument checks, statistics, files, devices, seeding, machine description."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import os
import pickle
import platform
import random
import shutil
import signal
import statistics
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEVICES = "cpu, cuda, cuda:N or auto"
MAX_SEED = 2**63 - 1  # seeds must fit a signed 64-bit integer (torch's and NumPy's generators)
MIN_FREE_BYTES = 1 << 20  # an output folder on a disk with less free space than this counts as full


def check_positive_int(name: str, value: Any, *, optional: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive ``int`` (not a bool), or None when ``optional``."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if optional else ''}, got {value!r}")


def check_seed(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` (not a bool) in ``[0, 2**63 - 1]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to 2**63 - 1, got {value!r}")


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and *sample* standard deviation (ddof=1) of ``values``.

    NaN and infinite values are dropped first (a run that has no value of a metric does not count);
    the standard deviation of a single value is 0.0, and both are NaN when no finite value is left.
    """
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def coerce_value(text: str) -> Any:
    """Parse a command-line value: an int, a float, ``true``/``false`` (any case) as a bool, else the text
    itself, left to its receiver to parse by the setting's declared type (``"none"``, ``"yes"``, ``"off"``:
    see :class:`cl_nas.condense.base.Option`)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["iterations=200", "lr_img=1", "bf16=no"]`` -> ``{"iterations": 200, "lr_img": 1, "bf16": "no"}``
    (values by :func:`coerce_value`; a condenser parses the remaining text by its declared types)."""
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
    """``"auto"`` (or None) picks CUDA when available, else CPU; anything else must exist on this machine
    (``ValueError`` naming what does)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {str(device)!r}; use {DEVICES}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} requested but MPS is not available; use --device cpu")
    elif dev.type != "cpu":
        raise ValueError(f"device {str(device)!r} is not supported; use {DEVICES}")
    return dev


def native_bf16(device: str | torch.device | None = "auto") -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware, so that bf16 autocast speeds it up.

    CPUs need AVX-512-BF16 or AMX (AMD Zen 4, Intel Sapphire Rapids and later). Without them
    (AVX2-only CPUs such as AMD Zen 3) PyTorch emulates bf16, which can make autocast passes more
    than ten times slower than float32 ones (``benchmarks/bf16.py`` measures a machine). CUDA
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
    check_seed("seed", seed)
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


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file onto ``path``; return ``path``.

    The temporary file sits in ``path``'s folder (created if missing), so the rename is atomic: a
    reader sees the old file or the new one, and a crash or kill never leaves a half-written file.
    The file gets the mode an ordinary ``open(path, "w")`` would give it (``0o666`` less the umask),
    not the ``0o600`` of :func:`tempfile.mkstemp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # the umask can only be read by setting it
    os.umask(mask)
    return mask


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


# --- output paths, checked before any work ---------------------------------------------------------------
def check_writable(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else a one-line ``ValueError``.

    Call it on every output file before any computation: it rejects a path that is a folder, lies under a
    file, or whose folder (or nearest existing parent, when the folder will be created) cannot take new
    files or sits on a full disk. Nothing is created: the folder is probed with an anonymous temporary file.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a folder, not a file: give a file name inside it")
    if path.exists() and not path.is_file():
        raise ValueError(f"{what} {str(path)!r} exists and is not a regular file")
    _check_can_create_in(path.parent, what, path)
    return path


def check_writable_folder(path: str | os.PathLike, what: str) -> Path:
    """:func:`check_writable` for an output *folder* (created later if missing)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file, not a folder")
    _check_can_create_in(path, what, path)
    return path


def _check_can_create_in(folder: Path, what: str, path: Path) -> None:
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise ValueError(f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):  # unnamed where the OS allows it: leaves nothing behind
            pass
    except OSError as err:
        raise ValueError(
            f"{what} {str(path)!r} cannot be written: {str(existing)!r} takes no new files ({err.strerror})"
        ) from None
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"{what} {str(path)!r} cannot be written: the disk holding {str(existing)!r} is full ({free} bytes free)"
        )


# --- torch files -------------------------------------------------------------------------------------------
class UnreadableFileError(ValueError):
    """A file that should hold tensors is missing its data, damaged, or not a torch file at all."""


def load_torch_file(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; any failure is an :class:`UnreadableFileError`
    naming ``path`` and what went wrong in plain words (torch's own advice to load with ``weights_only=False``,
    which would let the file run code, is never repeated)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notes on foreign pickle protocols
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated, empty or foreign files
        raise UnreadableFileError(f"{str(path)!r} is not a readable {what}: {_load_failure(err)}") from None


def _load_failure(err: Exception) -> str:
    if isinstance(err, pickle.UnpicklingError):
        return "it is damaged, not a torch file, or holds objects other than tensors and plain values"
    if isinstance(err, EOFError):
        return "it is empty or truncated"
    if isinstance(err, RuntimeError) and "zip archive" in str(err):
        return "it is truncated or damaged (not a complete torch zip archive)"
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return f"not a torch file ({type(err).__name__})"


# --- signals ------------------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM; ``detail`` says what was kept for resuming.

    A ``KeyboardInterrupt``, so code that cleans up after Ctrl-C cleans up after SIGTERM too. The process's
    exit status is ``128 + signum`` (130, 143), as a shell reports a process ended by the signal.
    """

    def __init__(self, signum: int = signal.SIGINT, detail: str = ""):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.detail = detail


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises :class:`Interrupted` where Ctrl-C raises
    ``KeyboardInterrupt``, instead of ending the process at once: checkpoints get written, handlers run."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def deferred_signals() -> Iterator[Callable[[], int | None]]:
    """Hold SIGINT and SIGTERM back while the block runs, for a loop that can stop cleanly between steps.

    Yields ``pending()``: the number of the first signal received, else None. The block polls it where it can
    stop (after saving its progress) and then calls :func:`deliver` with it, which does what the signal would
    have done (``KeyboardInterrupt``, :class:`Interrupted`, or ending the process). A second signal acts at
    once. Outside the main thread, or for a signal that is ignored, nothing changes.
    """
    pending: list[int] = []
    previous: dict[int, Any] = {}

    def note(signum: int, frame: Any) -> None:
        if pending:  # a second signal: the user insists
            _restore(previous)
            deliver(signum)
        pending.append(signum)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler not in (signal.SIG_IGN, None):
                previous[signum] = signal.signal(signum, note)
    try:
        yield lambda: pending[0] if pending else None
    finally:
        _restore(previous)


def _restore(handlers: dict[int, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    handlers.clear()


def deliver(signum: int) -> None:
    """Act on ``signum`` now, as its current handler does (raising in this thread, or ending the process)."""
    signal.raise_signal(signum)
