"""A study as a work queue of a fixed number of slots, shared safely by any number of workers.

``n`` trials means exactly ``n`` evaluated candidates, however many workers run and whichever of
them die. The creator of a study enqueues one WAITING trial per *slot* (a fixed architecture, or
empty parameters for the sampler to fill) and then marks the study ready; Optuna hands each
WAITING trial to exactly one worker (an atomic state change in the storage). Every worker runs
:func:`run_worker`, which takes queued trials until none is waiting or running, so it also waits
for the trials of other workers: if one of them dies, its trial is failed after the heartbeat grace
period and re-queued with the same slot and parameters (see :mod:`cl_nas.nas.storage`) and some
live worker runs it.

The states a slot's trials can end in:

* COMPLETE or PRUNED: the slot is done (counted once);
* FAIL, stale: its worker died; a copy was queued (``retry_history`` in the system attributes);
* FAIL, ``interrupted``: Ctrl-C; a copy was queued, so rerunning the command resumes the slot;
* FAIL, ``infeasible``: the sampler proposed an architecture that cannot process the images; a
  fresh empty slot with the same number was queued;
* FAIL, ``surplus``: a worker found the queue empty between its check and its ask (a race Optuna
  cannot rule out) and got a new trial no slot asked for; it is failed at once and never counted;
* FAIL, anything else: the objective raised; not retried, since it would raise again.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning
from optuna.trial import TrialState

from cl_nas.models.space import InfeasibleArchitecture

SLOT = "slot"  # user attribute: the slot a trial fills
WORKER = "worker"  # user attribute: host:pid of the worker that ran it
SURPLUS = "surplus"  # user attribute: the trial filled no slot (another worker took the last queued one)
READY = "queue"  # study user attribute, set once every slot is enqueued: {"slots": n, "fingerprint": ...}
Objective = Callable[[optuna.Trial], float]
TrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


class SurplusTrial(RuntimeError):
    """The trial was created because the queue ran empty; it fills no slot."""


def fingerprint(config: Any) -> str:
    """A short hash of a JSON-able configuration: part of a study name, so a changed config is a new study."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]


def open_queue(
    storage: optuna.storages.BaseStorage,
    name: str,
    slots: Sequence[dict[str, Any]],
    *,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    ready_timeout: float = 120.0,
) -> optuna.Study:
    """Create the study ``name`` with one queued trial per slot (parameters ``slots[i]``), or load it.

    ``name`` must identify the configuration (see :func:`fingerprint`): loading a study of the same
    name but other slots raises ``ValueError``. A worker that loads a study still being filled
    waits up to ``ready_timeout`` seconds for its creator.
    """
    if not slots:
        raise ValueError("a study needs at least one trial")
    expected = {"slots": len(slots), "fingerprint": fingerprint([list(s.items()) for s in slots])}
    options = {"storage": storage, "study_name": name, "sampler": sampler, "pruner": pruner}
    try:
        study = optuna.create_study(direction="maximize", **options)
    except DuplicatedStudyError:
        return _load_ready(optuna.load_study(**options), expected, ready_timeout)
    for number, params in enumerate(slots):
        study.enqueue_trial(params, user_attrs={SLOT: number})
    study.set_user_attr(READY, expected)
    return study


def _load_ready(study: optuna.Study, expected: dict[str, Any], timeout: float) -> optuna.Study:
    """``study`` once its creator has queued every slot; it must hold the slots this caller expects."""
    name, deadline = study.study_name, time.monotonic() + timeout
    while READY not in study.user_attrs:
        if time.monotonic() > deadline:
            raise ValueError(
                f"study {name!r} exists but its creator never finished queueing its trials (it died?); "
                f"delete it (optuna delete-study --study-name {name} --storage URL) and rerun"
            )
        time.sleep(1.0)
    if study.user_attrs[READY] != expected:
        raise ValueError(f"study {name!r} exists with other trials {study.user_attrs[READY]}; choose another name")
    return study


@dataclass(frozen=True)
class QueueStatus:
    """Where a queue study stands."""

    slots: int
    done: int  # slots with a COMPLETE or PRUNED trial
    pending: int  # WAITING or RUNNING trials
    recovered: int  # FAIL trials whose slot was queued again (dead or interrupted worker, infeasible pick)
    surplus: int  # FAIL trials that filled no slot
    lost: int  # slots with nothing done or pending: their trial raised, or ran out of retries

    def __str__(self) -> str:
        return (
            f"{self.done}/{self.slots} done, {self.pending} pending, {self.recovered} recovered after a "
            f"failure, {self.lost} lost"
        )


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PENDING = (TrialState.WAITING, TrialState.RUNNING)


def queue_status(study: optuna.Study) -> QueueStatus:
    """Count the slots and trials of a study made by :func:`open_queue`."""
    trials = study.get_trials(deepcopy=False)
    by_slot: dict[int, list[TrialState]] = collections.defaultdict(list)
    for t in trials:
        if SLOT in t.user_attrs:
            by_slot[t.user_attrs[SLOT]].append(t.state)
    alive = {slot for slot, states in by_slot.items() if any(s in FINISHED + PENDING for s in states)}
    slots = study.user_attrs[READY]["slots"]
    return QueueStatus(
        slots=slots,
        done=sum(any(s in FINISHED for s in states) for states in by_slot.values()),
        pending=sum(t.state in PENDING for t in trials),
        recovered=sum(t.state == TrialState.FAIL and t.user_attrs.get(SLOT) in alive for t in trials),
        surplus=sum(SLOT not in t.user_attrs for t in trials),
        lost=slots - len(alive),
    )


def _requeue(study: optuna.Study, trial: optuna.Trial, *, keep_params: bool) -> None:
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    # a slot's fixed architecture sits in "fixed_params" until the objective suggests it
    params = {**frozen.system_attrs.get("fixed_params", {}), **frozen.params} if keep_params else {}
    study.enqueue_trial(params, user_attrs={SLOT: frozen.user_attrs[SLOT]})


def _slot_objective(study: optuna.Study, objective: Objective) -> Objective:
    """``objective`` plus the slot bookkeeping of the module docstring."""
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def run(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER, worker)
        if SLOT not in trial.user_attrs:
            trial.set_user_attr(SURPLUS, True)
            raise SurplusTrial(
                f"trial {trial.number} fills no slot: another worker took the last queued trial first (harmless)"
            )
        try:
            return objective(trial)
        except InfeasibleArchitecture as err:
            trial.set_user_attr("infeasible", str(err))
            _requeue(study, trial, keep_params=False)  # ask the sampler again for this slot
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            _requeue(study, trial, keep_params=True)  # rerunning the command resumes this slot
            raise

    return run


class _ReasonOnly(logging.Filter):
    """Optuna logs a traceback with every failed trial; for the expected failures the reason says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], (InfeasibleArchitecture, SurplusTrial)):
            record.exc_info = None
        return True


_TRIAL_LOG = logging.getLogger("optuna.study._optimize")


def _pending(study: optuna.Study) -> collections.Counter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # re-queues the trials of dead workers
    return collections.Counter(t.state for t in study.get_trials(deepcopy=False, states=PENDING))


def run_worker(
    study: optuna.Study,
    objective: Objective,
    *,
    max_trials: int | None = None,
    poll_seconds: float = 2.0,
    callbacks: Sequence[TrialCallback] = (),
    on_wait: Callable[[int], None] | None = None,
) -> int:
    """Run queued trials of ``study`` until none is waiting or running; return how many slots this worker ran.

    ``max_trials`` stops this worker early (the rest stay queued). While only other workers'
    trials are running it polls every ``poll_seconds`` (calling ``on_wait(n_running)`` once per
    wait), because a worker that dies leaves its trial to be retried by the survivors. A surplus
    trial (another worker took the last queued trial between this one's look and its pick) is not counted.
    """
    wrapped = _slot_objective(study, objective)
    if not any(isinstance(f, _ReasonOnly) for f in _TRIAL_LOG.filters):
        _TRIAL_LOG.addFilter(_ReasonOnly())
    filled_slot = False

    def note_slot(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal filled_slot
        filled_slot = not trial.user_attrs.get(SURPLUS, False)

    ran, waiting_reported = 0, False
    while max_trials is None or ran < max_trials:
        pending = _pending(study)
        if pending[TrialState.WAITING]:
            study.optimize(
                wrapped, n_trials=1, catch=(InfeasibleArchitecture, SurplusTrial), callbacks=[*callbacks, note_slot]
            )
            ran, waiting_reported = ran + filled_slot, False
        elif pending[TrialState.RUNNING]:
            if on_wait is not None and not waiting_reported:
                on_wait(pending[TrialState.RUNNING])
                waiting_reported = True
            time.sleep(poll_seconds)
        else:
            break
    return ran
