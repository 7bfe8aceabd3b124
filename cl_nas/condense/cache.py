"""A content-addressed cache of synthetic sets: ask twice, condense once.

A result is filed under ``condenser.cache_key(train_set, ipc, seed)``, which hashes the source
data, the method, its result-determining config, ipc and seed; runtime options (device, progress,
checkpointing) are not part of it. Files are :class:`~cl_nas.synthetic.SyntheticSet` files, written
atomically, so concurrent or interrupted writers never leave a half-written entry.

The root is the ``root`` argument, else ``$CL_NAS_CACHE``, else ``~/.cache/cl_nas/synthetic``.
Iterative condensations that have no checkpoint folder of their own checkpoint under
``<root>/checkpoints``, so an interrupted ``get_or_condense`` resumes where it stopped.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from cl_nas.condense.base import Condenser
from cl_nas.condense.iterative import IterativeCondenser
from cl_nas.data import ImageDataset
from cl_nas.synthetic import SyntheticSet, SyntheticSetError

CACHE_ENV_VAR = "CL_NAS_CACHE"
DEFAULT_CACHE_ROOT = Path.home() / ".cache" / "cl_nas" / "synthetic"


def resolve_cache_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$CL_NAS_CACHE``, else ``~/.cache/cl_nas/synthetic`` (not created here)."""
    return Path(root or os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_ROOT).expanduser()


class SyntheticCache:
    """Synthetic sets on disk, one ``<cache_key>.pt`` file each."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = resolve_cache_root(root)
        self.checkpoint_root = self.root / "checkpoints"
        self.teacher_root = self.root / "teachers"
        self.evaluation_root = self.root / "evaluations"  # finished seeds of interrupted evaluations

    def path(self, condenser: Condenser, train_set: ImageDataset, ipc: int, seed: int) -> Path:
        return self.root / f"{condenser.cache_key(train_set, ipc, seed)}.pt"

    def get(self, condenser: Condenser, train_set: ImageDataset, ipc: int, seed: int) -> SyntheticSet | None:
        """The cached set, or None when absent (an unreadable entry is reported and treated as absent)."""
        path = self.path(condenser, train_set, ipc, seed)
        if not path.is_file():
            return None
        try:
            return SyntheticSet.load(path)
        except SyntheticSetError as err:
            warnings.warn(f"ignoring a broken cache entry, it will be recomputed: {err}", stacklevel=2)
            return None

    def prepare(self, condenser: Condenser) -> None:
        """Give ``condenser`` this cache's folders for what it left unset: ``checkpoint_root`` for an iterative
        one's checkpoints (a runtime option, outside the cache key), :meth:`keep_teachers` for APM's teachers."""
        if isinstance(condenser, IterativeCondenser) and condenser.checkpoint_dir is None:
            condenser.set_params(checkpoint_dir=self.checkpoint_root)
        self.keep_teachers(condenser)

    def keep_teachers(self, condenser: Condenser) -> None:
        """Give ``condenser``, if it has a ``teacher_dir`` option (APM) left unset, ``teacher_root``: the
        one place where its teachers are trained once and the baselines they label find them."""
        if "teacher_dir" in condenser.options and condenser.teacher_dir is None:
            condenser.set_params(teacher_dir=self.teacher_root)

    def get_or_condense(self, condenser: Condenser, train_set: ImageDataset, ipc: int, seed: int = 0) -> SyntheticSet:
        """The cached result of ``condenser.condense(train_set, ipc, seed)``, computing and storing it once."""
        cached = self.get(condenser, train_set, ipc, seed)
        return cached if cached is not None else self.condense(condenser, train_set, ipc, seed)

    def condense(self, condenser: Condenser, train_set: ImageDataset, ipc: int, seed: int = 0) -> SyntheticSet:
        """Run ``condenser.condense(train_set, ipc, seed)`` and store its result, replacing any cached one.

        An iterative ``condenser`` without a ``checkpoint_dir`` is given ``checkpoint_root`` (a runtime
        option, outside the cache key), so a call that was killed resumes from its last checkpoint; one
        with a ``teacher_dir`` option (APM) keeps its teachers under ``teacher_root``, where baselines
        labelled by the same teachers find them. For a run whose by-products are wanted too (snapshots),
        where :meth:`get_or_condense` would return the stored set alone.
        """
        self.prepare(condenser)
        result = condenser.condense(train_set, ipc, seed)
        result.save(self.path(condenser, train_set, ipc, seed))
        return result
