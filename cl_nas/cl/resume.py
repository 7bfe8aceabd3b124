"""Resuming continual-learning runs: the global random state, a run's files on disk, and a rebuildable memory.

* :func:`rng_state` / :func:`set_rng_state`: the global random-number state (Python, NumPy, torch) as
  plain tensors and values, saved at every experience boundary so a resumed run draws exactly what the
  uninterrupted one would have (loadable with ``torch.load(weights_only=True)``).
* A run's folder: experience ``k`` leaves ``exp_<k>.pt`` (what resuming needs: weights, random state,
  memory updates) and then ``exp_<k>.json`` (its metrics). Each is written atomically
  (:func:`cl_nas.utils.atomic_write`), so a kill never leaves a half-written file, and the record is written
  last, so a record always has its state. State files hold only tensors and plain values.
* :class:`ResumableBuffer`: any storage policy, rebuilt exactly in a fresh process from what its updates saw.
  Avalanche's own checkpointing pickles whole strategies and fails on current torch, and the memory of
  Avalanche's buffers is a web of dataset subsets that has no tensor form. What *determines* a memory,
  though, is small: each update depends only on the experience, the learner's weights and the global
  random state at that moment, and on the updates before it. The wrapper records those two (weights and
  random state, per update) and :meth:`ResumableBuffer.replay` re-runs the same updates on the same
  experiences, which rebuilds the memory bit for bit for any policy: reservoir, class-balanced, herding or
  condensed (whose sets then come from the synthetic cache, so replay does not condense again).
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.training.storage_policy import ExemplarsBuffer

from cl_nas.cl.adapters import PostAdaptBuffer
from cl_nas.utils import atomic_write, load_torch_file


# --- the global random state -------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """The current state of every global generator."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos},
        "numpy_gauss": (has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    has_gauss, cached = state["numpy_gauss"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (e.g. a condenser, which reseeds everything) without moving the caller's generators."""
    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


# --- a run's folder ----------------------------------------------------------------------------------
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
    """Experience ``k``'s state; an unreadable (e.g. truncated) file raises an error naming it."""
    return load_torch_file(_state(run_dir, k), "CL run-state file")


def finished_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of the experiences finished so far: consecutive from 0, each with its state file."""
    records: list[dict[str, Any]] = []
    while _record(run_dir, len(records)).is_file() and _state(run_dir, len(records)).is_file():
        records.append(read_json(_record(run_dir, len(records))))
    return records


def drop_experiences(run_dir: Path) -> None:
    """Delete every experience's state and record, to run again from the first experience."""
    for path in [*run_dir.glob("exp_*.pt"), *run_dir.glob("exp_*.json")]:
        path.unlink()


def drop_states(run_dir: Path, n_experiences: int) -> None:
    """Delete the state files once the run is summarised: they only serve resuming."""
    for k in range(n_experiences):
        _state(run_dir, k).unlink(missing_ok=True)


# --- a memory rebuilt from its updates ---------------------------------------------------------------
class ResumableBuffer(PostAdaptBuffer):
    """Delegates to ``inner`` and logs every ``post_adapt`` (experience, learner weights, random state)."""

    def __init__(self, inner: ExemplarsBuffer):
        self.inner = inner  # set first: the base initialiser assigns max_size, which delegates here
        super().__init__(inner.max_size)
        self._log: list[dict[str, Any]] = []

    @property
    def max_size(self) -> int:  # type: ignore[override]
        return self.inner.max_size

    @max_size.setter
    def max_size(self, value: int) -> None:
        self.inner.max_size = value

    @property
    def buffer(self):  # type: ignore[override]
        return self.inner.buffer

    @buffer.setter
    def buffer(self, new_buffer) -> None:
        self.inner.buffer = new_buffer

    def post_adapt(self, agent: Any, exp: Any) -> None:
        weights = {k: v.detach().cpu().clone() for k, v in agent.model.state_dict().items()}
        self._log.append({"experience": exp.current_experience, "model": weights, "rng": rng_state()})
        self.inner.post_adapt(agent, exp)

    def resize(self, strategy: Any, new_size: int) -> None:
        self.inner.resize(strategy, new_size)

    def take_log(self) -> list[dict[str, Any]]:
        """The updates recorded since the last call (for the experience's state file), then forget them."""
        log, self._log = self._log, []
        return log

    def replay(self, strategy: Any, experiences: Sequence[Any], log: Sequence[dict[str, Any]]) -> None:
        """Re-run logged updates on ``experiences`` (indexed by experience id); leaves the learner's weights
        and the random state as the last update found them, so restore both afterwards."""
        for entry in log:
            strategy.model.load_state_dict(entry["model"])
            set_rng_state(entry["rng"])
            self.inner.post_adapt(strategy, experiences[entry["experience"]])
