"""Ground truth: a fixed, seeded sample of architectures, each trained on the full training split.

Every architecture gets the same budget (``epochs`` epochs over the whole training split, the
standard protocol otherwise, one training seed) and is scored on the validation split, like the
proxies. The results live in their own study (name prefix ``gt-``) in the same storage as the
proxy studies: one trial per architecture, so a run that stops (Ctrl-C, ``kill -9``, a reboot)
resumes by rerunning the same command and retrains only the architectures not yet finished, and
several workers can share it (see :mod:`cl_nas.nas.queue`).

The sample is :meth:`SearchSpace.sample` with ``arch_seed``: the proxy search with sampler ``grid``,
the same ``arch_seed`` and as many trials scores the same architectures.

Sizing: one full-data epoch of Fashion-MNIST (54,000 images, bf16, one thread) cost from 10 s
(ConvNet-1, width 32) to 88 min (ConvNet-4, width 256, no pooling, instance norm) on the 2-core AMD
EPYC used here, measured while other jobs shared it; the 48 architectures of ``arch_seed`` 0 sum to
about 6.7 core-hours at that load. Hence the default of one epoch each (``benchmarks/nas.py`` has
the estimates for the whole run).
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
import torch

from cl_nas.data import DatasetSplits
from cl_nas.nas.proxy import full_data
from cl_nas.nas.search import Search, open_search
from cl_nas.nas.space import SearchSpace


@dataclass(frozen=True)
class GroundTruthConfig:
    """How many architectures (drawn with ``arch_seed``), full-data epochs each, training seed."""

    n_arch: int = 48
    epochs: int = 1
    arch_seed: int = 0
    seed: int = 0


def open_ground_truth(
    storage: optuna.storages.BaseStorage,
    space: SearchSpace,
    splits: DatasetSplits,
    config: GroundTruthConfig = GroundTruthConfig(),
    *,
    bf16: bool = False,
    device: str | torch.device = "auto",
) -> Search:
    """Create or resume the ground-truth study; ``.run()`` trains what is missing, ``.scores()`` reads it."""
    return open_search(
        storage,
        space,
        full_data(splits.train, epochs=config.epochs),
        splits.val,
        trials=config.n_arch,
        sampler="grid",
        pruner="none",
        arch_seed=config.arch_seed,
        seed=config.seed,
        bf16=bf16,
        device=device,
        prefix="gt",
    )
