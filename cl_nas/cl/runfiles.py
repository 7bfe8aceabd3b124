"""A run's folder on disk: per-experience state (tensors) and record (JSON), written atomically.

Experience ``k`` leaves ``exp_<k>.pt`` (what resuming needs: weights, random state, memory updates)
and then ``exp_<k>.json`` (its metrics). A temporary file renamed into place means a kill never
leaves a half-written file, and writing the record last means a record always has its state.
State files hold only tensors and plain values, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _state(run_dir: Path, k: int) -> Path:
    return run_dir / f"exp_{k:03d}.pt"


def _record(run_dir: Path, k: int) -> Path:
    return run_dir / f"exp_{k:03d}.json"


def save_experience(run_dir: Path, k: int, state: dict[str, Any], record: dict[str, Any]) -> None:
    """Write experience ``k``'s state, then its record."""
    atomic_write(_state(run_dir, k), lambda tmp: torch.save(state, tmp))
    write_json(_record(run_dir, k), record)


def load_state(run_dir: Path, k: int) -> dict[str, Any]:
    return torch.load(_state(run_dir, k), weights_only=True)


def finished_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of the experiences finished so far: consecutive from 0, each with its state file."""
    records: list[dict[str, Any]] = []
    while _record(run_dir, len(records)).is_file() and _state(run_dir, len(records)).is_file():
        records.append(read_json(_record(run_dir, len(records))))
    return records


def drop_states(run_dir: Path, n_experiences: int) -> None:
    """Delete the state files once the run is summarised: they only serve resuming."""
    for k in range(n_experiences):
        _state(run_dir, k).unlink(missing_ok=True)
