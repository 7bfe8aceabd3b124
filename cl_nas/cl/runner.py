"""Run continual-learning cases, experience by experience, with resumable state and a results table.

Each (case, class order) is a *run* with its own folder,
``<run_root>/<benchmark>/<strategy>-<buffer>-m<mem>-<config_id>/<order>``:

* ``config.json``: the resolved case, written when the run starts;
* ``exp_<k>.pt`` (learner weights, global random state, and the memory updates of experience ``k``:
  see :class:`~cl_nas.cl.resume.ResumableBuffer`) then ``exp_<k>.json`` (its metrics and timings),
  once experience ``k`` is trained and evaluated (see :mod:`cl_nas.cl.resume`);
* ``result.json``: the run's summary, once all experiences are done (the ``.pt`` state files are then deleted);
* ``logs/from_exp<k>/``: what the Avalanche loggers of ``CLSettings.loggers`` wrote, from experience ``k``
  on (a resumed run logs into a new folder rather than overwrite its earlier logs).

Killed anywhere, the same call resumes: a finished run is read back, an unfinished one rebuilds its
memory by replaying the recorded updates (condensed sets come from the synthetic cache, and an
interrupted condensation resumes from its checkpoint), restores the weights and random state of the
last finished experience, and continues with the next; the result equals an uninterrupted run's.
Strategies whose plugins keep state of their own (EWC's importances, LwF's previous model:
``StrategySpec.resumes`` False) start an unfinished run again from the first experience instead.
:func:`run_cases` aggregates each case over its class orders into one row of a
:class:`~cl_nas.results.ResultsTable` and skips rows already there.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from cl_nas.augment import DSA
from cl_nas.cl.buffers import build_memory
from cl_nas.cl.condensed_buffer import CondensedBuffer
from cl_nas.cl.config import CasePlan, CLCase, CLSettings, plan_case
from cl_nas.cl.metrics import RunMetrics, build_loggers, close_loggers, summarize
from cl_nas.cl.resume import (
    ResumableBuffer,
    drop_experiences,
    drop_states,
    finished_records,
    load_state,
    read_json,
    rng_state,
    save_experience,
    set_rng_state,
    write_json,
)
from cl_nas.cl.scenarios import check_class_incremental, make_scenario, smallest_class
from cl_nas.cl.strategies import STRATEGIES, build_strategy
from cl_nas.condense import SyntheticCache
from cl_nas.models import build_model
from cl_nas.results import ResultsTable
from cl_nas.utils import machine_description, mean_std, resolve_device, seed_everything

Log = Callable[[str], None]
COLUMNS = [
    "benchmark", "strategy", "buffer", "mem_per_class", "n_orders", "final_acc_mean", "final_acc_std",
    "avg_incremental_acc", "forgetting", "condense_seconds", "train_seconds", "machine",
    "avg_incremental_acc_std", "forgetting_std", "acc_per_experience", "budget", "mem_bytes", "memory_images",
    "model", "epochs", "augment", "config_id", "command", "bwt", "ram_mb", "final_acc_per_order",
]  # fmt: skip
KEY = ["benchmark", "strategy", "buffer", "mem_per_class", "n_orders", "config_id"]


# --- one run -----------------------------------------------------------------------------------------
def _condensation(memory: ResumableBuffer | None) -> dict[str, float]:
    """For a condensed memory: the compute time of the set made for the latest experience (as recorded when
    it was made, also on a cache hit), the wall time its update took here, and the buffer's cumulative counts
    of sets condensed and found in the cache."""
    inner = memory.inner if memory is not None else None
    if not isinstance(inner, CondensedBuffer) or not inner.groups:
        return {"condense_seconds": 0.0, "update_wall": 0.0, "sets_condensed": 0, "cache_hits": 0}
    return {
        "condense_seconds": inner.groups[-1].condense_seconds, "update_wall": inner.last_update_seconds,
        "sets_condensed": inner.condensed, "cache_hits": inner.cache_hits,
    }  # fmt: skip


def build_learner(
    plan: CasePlan,
    settings: CLSettings,
    seed: int = 0,
    run_dir: Path | None = None,
    *,
    metrics: RunMetrics | None = None,
    loggers: Sequence[Any] = (),
):
    """``(model, memory, strategy)`` for one run of ``plan``: a freshly seeded model, its memory wrapped
    to be resumable (None for the bounds) and the Avalanche strategy that trains it, evaluated by
    ``metrics`` (default: a fresh :class:`~cl_nas.cl.metrics.RunMetrics`) reporting to Avalanche ``loggers``.

    Drive it like any Avalanche strategy (``strategy.train(experience)``); ``memory.buffer`` is what the
    replay draws from. ``run_dir`` holds the condensation checkpoints (None: a condensation cannot resume).
    """
    device = resolve_device(settings.device)
    info = plan.spec.info
    seed_everything(seed)
    model = build_model(plan.model, info.channels, info.num_classes, info.image_size)
    memory = None
    if plan.buffer.has_memory:
        inner = build_memory(
            plan.buffer, plan.memory_images, model, info,
            condense_params=plan.condense_params, cache=SyntheticCache(settings.cache_dir),
            checkpoint_dir=run_dir / "condense" if run_dir else None, seed=seed, device=device,
            total_num_classes=plan.spec.num_classes if settings.budget == "per-class" else None,
            transform=plan.spec.replay_transform,
        )  # fmt: skip
        memory = ResumableBuffer(inner)
    augment = DSA(plan.augment) if plan.augment else None
    evaluator = (metrics or RunMetrics()).evaluator(loggers)
    strategy = build_strategy(
        plan.case.strategy, model, plan.train, memory=memory, augment=augment, device=device, evaluator=evaluator,
        options=plan.strategy_options, experience_epochs=plan.experience_epochs,
    )  # fmt: skip
    return model, memory, strategy


def _restore(run_dir: Path, finished: int, strategy: Any, memory: ResumableBuffer | None, experiences: list) -> None:
    """Rebuild the memory from the logged updates, then restore the last finished experience's weights and RNG."""
    for k in range(finished):
        state = load_state(run_dir, k)
        if memory is not None:
            memory.replay(strategy, experiences, state["memory_log"])
    strategy.model.load_state_dict(state["model"])
    set_rng_state(state["rng"])


def _run_step(
    strategy: Any, memory: ResumableBuffer | None, metrics: RunMetrics, step: Any, test_stream: Any, seen: int
) -> dict:
    """Train on ``step`` (an experience, or the whole stream for joint training), evaluate on the first
    ``seen`` test experiences, and return the record."""
    start = time.perf_counter()
    strategy.train(step, eval_streams=[])
    train_wall = time.perf_counter() - start
    condensation = _condensation(memory)
    start = time.perf_counter()
    strategy.eval(test_stream[:seen])
    return {
        **metrics.read(seen),
        "condense_seconds": condensation["condense_seconds"],
        "train_seconds": train_wall - condensation["update_wall"], "eval_seconds": time.perf_counter() - start,
        "sets_condensed": condensation["sets_condensed"], "cache_hits": condensation["cache_hits"],
        "memory_images": len(memory.buffer) if memory is not None else 0,
    }  # fmt: skip


def _check_memory_fits_the_data(plan: CasePlan, settings: CLSettings, scenario: Any) -> None:
    """A per-class memory larger than a class's training data would hold the data itself: refuse it."""
    if not plan.buffer.has_memory or settings.budget != "per-class":
        return
    per_class, smallest = plan.memory_images // plan.spec.num_classes, smallest_class(scenario)
    if per_class > smallest:
        raise ValueError(
            f"a memory of {per_class} {plan.buffer.precision} images per class exceeds the training data: the "
            f"smallest class of {plan.spec.name} has {smallest} images; lower --mem-per-class or --mem-bytes"
        )


def run_order(
    plan: CasePlan,
    order_index: int,
    settings: CLSettings,
    *,
    scenario: Any = None,
    log: Log = print,
) -> dict[str, Any]:
    """Run (or resume, or read back) ``plan`` on its ``order_index``-th class order; return the run's summary.

    ``scenario`` replaces the benchmark's own stream (same dataset and classes), e.g. to run a stream
    built elsewhere; it is checked to be class-incremental before anything trains.
    """
    label, seed, order = plan.orders[order_index]
    run_dir = Path(settings.run_root) / plan.run_dir / label
    if (run_dir / "result.json").is_file():
        return read_json(run_dir / "result.json")
    scenario = scenario if scenario is not None else make_scenario(plan.spec, order, settings.data_root)
    check_class_incremental(scenario)
    _check_memory_fits_the_data(plan, settings, scenario)
    config = {
        "case": asdict(plan.case), "order": list(order), "seed": seed, "model": plan.model,
        "train": plan.train.as_dict(), "mem_bytes": plan.mem_bytes, "memory_images": plan.memory_images,
        "condense": dict(plan.condense_params),
    }  # fmt: skip
    write_json(run_dir / "config.json", config)
    records = finished_records(run_dir)
    if records and not STRATEGIES.get(plan.case.strategy).resumes:
        log(f"  {label}: {plan.case.strategy} keeps state the run files do not record: from the first experience")
        drop_experiences(run_dir)
        records = []
    loggers = build_loggers(settings.loggers, run_dir / "logs" / f"from_exp{len(records):03d}")
    metrics = RunMetrics()
    try:
        _, memory, strategy = build_learner(plan, settings, seed, run_dir, metrics=metrics, loggers=loggers)
        experiences = list(scenario.train_stream)
        joint = plan.case.strategy == "joint"
        steps: list[Any] = [scenario.train_stream] if joint else experiences
        if records:
            _restore(run_dir, len(records), strategy, memory, experiences)
            log(f"  {label}: resuming after experience {len(records) - 1}")
        for k in range(len(records), len(steps)):
            seen = len(experiences) if joint else k + 1
            record = {"experience": k, **_run_step(strategy, memory, metrics, steps[k], scenario.test_stream, seen)}
            # strategy.model: Avalanche's GDumbPlugin replaces the model by a fresh copy at every experience
            weights = strategy.model.state_dict()
            state = {"model": weights, "rng": rng_state(), "memory_log": memory.take_log() if memory else []}
            save_experience(run_dir, k, state, record)
            records.append(record)
            log(f"  {label}: experience {k + 1}/{len(steps)} seen-class accuracy {record['stream_acc']:.2f} %")
    finally:
        close_loggers(loggers)
    summary = {
        **summarize(records, incremental=not joint),
        "stream_acc": [r["stream_acc"] for r in records],
        "condense_seconds": sum(r["condense_seconds"] for r in records),
        "train_seconds": sum(r["train_seconds"] for r in records),
        "memory_images": records[-1]["memory_images"],
        "ram_mb": max(r["ram_mb"] for r in records),
    }
    write_json(run_dir / "result.json", summary)
    drop_states(run_dir, len(steps))
    return summary


# --- cases and the table -----------------------------------------------------------------------------
def aggregate(
    plan: CasePlan, settings: CLSettings, summaries: Sequence[dict[str, Any]], *, command: str = ""
) -> dict[str, Any]:
    """One table row: the runs of ``plan`` over its class orders (in order, class order ``k`` from seed ``k``),
    their mean and, in ``*_std``, the sample standard deviation over orders (:func:`cl_nas.utils.mean_std`, ddof 1;
    0 for one order); ``ram_mb`` is the peak."""
    final = mean_std([s["final_acc"] for s in summaries])
    incremental = mean_std([s["avg_incremental_acc"] for s in summaries])
    forgetting = mean_std([s["forgetting"] for s in summaries])
    bwt = mean_std([s["bwt"] for s in summaries])
    curves = zip(*(s["stream_acc"] for s in summaries), strict=True)
    return {
        **asdict(plan.case), "n_orders": len(summaries),
        "final_acc_mean": round(final[0], 2), "final_acc_std": round(final[1], 2),
        "avg_incremental_acc": round(incremental[0], 2), "forgetting": round(forgetting[0], 2),
        "condense_seconds": round(statistics.fmean(s["condense_seconds"] for s in summaries), 1),
        "train_seconds": round(statistics.fmean(s["train_seconds"] for s in summaries), 1),
        "machine": machine_description(),
        "avg_incremental_acc_std": round(incremental[1], 2), "forgetting_std": round(forgetting[1], 2),
        "acc_per_experience": " ".join(f"{statistics.fmean(c):.2f}" for c in curves),
        "budget": settings.budget if plan.buffer.has_memory else "", "mem_bytes": plan.mem_bytes,
        "memory_images": summaries[0]["memory_images"], "model": plan.model,
        "epochs": plan.train.epochs, "augment": plan.augment or "", "config_id": plan.config_id, "command": command,
        "bwt": round(bwt[0], 2), "ram_mb": round(max(s["ram_mb"] for s in summaries)),
        # class order k's final accuracy: margins between rows over different numbers of orders compare the
        # orders they share
        "final_acc_per_order": " ".join(f"{s['final_acc']:.2f}" for s in summaries),
    }  # fmt: skip


def _recorded_row(table: ResultsTable, key: dict[str, Any]) -> dict[str, Any]:
    frame = table.frame
    match = frame[list(key)].astype(str).eq(pd.Series({k: str(v) for k, v in key.items()})).all(axis=1)
    return frame[match].iloc[-1].to_dict()


def run_cases(
    cases: Sequence[CLCase],
    settings: CLSettings,
    table_path: str | os.PathLike,
    *,
    command: str = "",
    log: Log = print,
) -> list[dict[str, Any]]:
    """Run every case over its class orders and append one row per case to the table at ``table_path``.

    All cases are validated before anything runs; rows already in the table are skipped (and returned).
    """
    plans = [plan_case(case, settings) for case in cases]
    table = ResultsTable(table_path, COLUMNS, KEY)
    rows = []
    for plan in plans:
        key = {**asdict(plan.case), "n_orders": len(plan.orders), "config_id": plan.config_id}
        if table.has(**key):
            log(f"{plan.case}: already in {table_path}, skipped")
            rows.append(_recorded_row(table, key))
            continue
        log(f"{plan.case.benchmark} {plan.case.strategy} {plan.buffer.name} m={plan.case.mem_per_class}:")
        summaries = [run_order(plan, i, settings, log=log) for i in range(len(plan.orders))]
        row = aggregate(plan, settings, summaries, command=command)
        table.append(row)
        rows.append(row)
        log(f"  final accuracy {row['final_acc_mean']:.2f} ± {row['final_acc_std']:.2f} %, "
            f"forgetting {row['forgetting']:.2f}")  # fmt: skip
    return rows
