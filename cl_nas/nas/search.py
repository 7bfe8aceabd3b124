"""A search: one queue study (:mod:`cl_nas.nas.queue`) whose trials run an :class:`ArchitectureObjective`.

Samplers:

* ``grid``: the first ``trials`` architectures of a seeded shuffle of the feasible grid
  (:meth:`SearchSpace.sample`; after the first ``arch_offset`` of it), each queued with its parameters;
  ``trials`` = the grid size is an exhaustive grid search, and with the ground truth's size,
  ``arch_seed`` and ``arch_offset`` it scores exactly the ground-truth architectures. Optuna's own
  ``GridSampler`` is not used: it can hand one grid point to two workers and it cannot skip points
  that do not fit the images;
* ``random``, ``tpe``: ``trials`` empty slots whose architecture Optuna's sampler picks through the
  space's ``suggest_*`` calls. They are seeded per process, so that two workers do not propose the
  same sequence; the study records every draw.

Pruners (on the validation accuracy reported every ``report_every`` epochs): ``none``, ``median``
(Optuna's ``MedianPruner``) and ``halving`` (``SuccessiveHalvingPruner``).

The study's name holds the dataset, proxy, budget and seed, plus a fingerprint of everything that
determines its results (space, data content, validation split, epochs, sampler, pruner, ...), so
rerunning a command resumes its study and changing any setting starts a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
import torch

from cl_nas.data import ImageDataset
from cl_nas.models.space import SearchSpace
from cl_nas.nas.objective import ArchitectureObjective, ArchScore, read_scores
from cl_nas.nas.proxy import TrainingData
from cl_nas.nas.queue import QueueStatus, TrialCallback, fingerprint, open_queue, queue_status, run_worker
from cl_nas.train import TrainConfig
from cl_nas.utils import check_positive_int

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "halving")


def make_sampler(name: str) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler()
    if name in ("random", "grid"):  # grid slots are all fixed: the sampler is never consulted for them
        return optuna.samplers.RandomSampler()
    raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


@dataclass
class Search:
    """A study of ``trials`` slots and the objective that scores them."""

    study: optuna.Study
    objective: ArchitectureObjective

    @property
    def name(self) -> str:
        return self.study.study_name

    def run(self, *, callbacks: tuple[TrialCallback, ...] = (), **worker: Any) -> int:
        """Work on the study until every slot is done; see :func:`cl_nas.nas.queue.run_worker`."""
        return run_worker(self.study, self.objective, callbacks=callbacks, **worker)

    def status(self) -> QueueStatus:
        return queue_status(self.study)

    def scores(self) -> dict[str, ArchScore]:
        return read_scores(self.study)


def open_search(
    storage: optuna.storages.BaseStorage,
    space: SearchSpace,
    data: TrainingData,
    val: ImageDataset,
    *,
    trials: int,
    sampler: str = "grid",
    pruner: str = "none",
    arch_seed: int = 0,
    seed: int = 0,
    report_every: int | None = None,
    lr: float = TrainConfig.lr,
    augment: str | None = None,
    arch_offset: int = 0,
    bf16: bool = False,
    device: str | torch.device = "auto",
    prefix: str = "proxy",
) -> Search:
    """Create or resume the study that scores ``trials`` architectures of ``space`` trained on ``data``
    (``lr`` and ``augment``: see :class:`ArchitectureObjective`)."""
    check_positive_int("the number of trials", trials)
    samplers, pruners = make_sampler(sampler), make_pruner(pruner)  # validates the names first
    objective = ArchitectureObjective(
        space, data, val, seed=seed, report_every=report_every, lr=lr, augment=augment, bf16=bf16, device=device
    )
    info = val.info
    if sampler == "grid":
        slots = space.sample(arch_offset + trials, arch_seed, info.channels, info.image_size)[arch_offset:]
    else:
        slots = [{} for _ in range(trials)]
    config = {
        "space": space.key(),
        "data": data.key,
        "epochs": data.epochs,
        "val": val.content_hash(),
        "sampler": sampler,
        "pruner": pruner,
        "trials": trials,
        "arch_seed": arch_seed if sampler == "grid" else None,
        "seed": seed,
        "report_every": objective.report_every,
        "train": objective.config.as_dict(),
    }
    # absent at their defaults, so that the studies made before these settings existed keep their names
    config.update({k: v for k, v in (("augment", objective.augment), ("arch_offset", arch_offset)) if v})
    budget = f"-ipc{data.ipc}" if data.ipc else ""
    name = f"{prefix}-{info.name}-{data.name}{budget}-e{data.epochs}-s{seed}-{sampler}-{pruner}-n{trials}"
    study = open_queue(storage, f"{name}-{fingerprint(config)}", slots, sampler=samplers, pruner=pruners)
    return Search(study, objective)
