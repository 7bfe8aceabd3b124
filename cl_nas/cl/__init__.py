"""Class-incremental learning with condensed replay, on Avalanche.

Building blocks (Avalanche extended by composition, never by editing its loops):

* :class:`CondensedBuffer`: a storage policy whose memory is condensed, one group per experience, for
  ``ReplayPlugin`` or any strategy that takes a storage policy;
* :class:`PrecisionBuffer`: any storage policy's real exemplars stored at fp16 or uint8;
* :class:`GDumbStylePlugin`: train from scratch on the memory alone at every experience, selections made
  with a learner trained on the experience;
* :class:`ERACE`: Avalanche's ER-ACE on any storage policy;
* :class:`TrainProtocolPlugin`, :class:`AutocastPlugin`: cl_nas's training protocol inside Avalanche;
* :class:`ResumableBuffer`: any storage policy, rebuilt exactly after a crash;
* :func:`build_memory` / :func:`build_strategy`: buffers and strategies by name (:data:`STRATEGIES`), with
  any Avalanche evaluator, loggers and plugins; :class:`RunMetrics`: Avalanche's metrics of a run;
* :func:`make_scenario`: the registered benchmarks (Split-MNIST, Split-FMNIST, Split-CIFAR, split-digits);
* :func:`build_learner`: model, memory and strategy of one run, to drive by hand (the notebooks do);
* :func:`to_image_dataset`: an experience's or a memory's contents as tensors;
* :func:`expand_cases`, :func:`plan_case`, :func:`run_cases`: a study's cases, each checked and resolved,
  and the resumable runner behind ``cl-nas cl`` and ``benchmarks/cl.py``.

Names are imported on first use: importing Avalanche takes seconds, and ``cl_nas.cli`` imports
:mod:`cl_nas.cl.command` (which needs none of it until it runs) on every invocation.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BufferSpec": "cl_nas.cl.buffers",
    "available_buffers": "cl_nas.cl.buffers",
    "build_memory": "cl_nas.cl.buffers",
    "parse_buffer": "cl_nas.cl.buffers",
    "PrecisionBuffer": "cl_nas.cl.buffers",
    "selects_with_learner": "cl_nas.cl.buffers",
    "CondensedBuffer": "cl_nas.cl.condensed_buffer",
    "SyntheticGroup": "cl_nas.cl.condensed_buffer",
    "CLCase": "cl_nas.cl.config",
    "CLSettings": "cl_nas.cl.config",
    "CasePlan": "cl_nas.cl.config",
    "expand_cases": "cl_nas.cl.config",
    "plan_case": "cl_nas.cl.config",
    "GDumbStylePlugin": "cl_nas.cl.plugins",
    "accuracy_figure": "cl_nas.cl.plot",
    "plot_accuracy": "cl_nas.cl.plot",
    "PRECISIONS": "cl_nas.cl.precision",
    "bytes_per_image": "cl_nas.cl.precision",
    "bytes_per_item": "cl_nas.cl.precision",
    "label_bytes": "cl_nas.cl.precision",
    "decode": "cl_nas.cl.precision",
    "encode": "cl_nas.cl.precision",
    "images_in_budget": "cl_nas.cl.precision",
    "AutocastPlugin": "cl_nas.cl.plugins",
    "TrainProtocolPlugin": "cl_nas.cl.plugins",
    "ResumableBuffer": "cl_nas.cl.resume",
    "build_learner": "cl_nas.cl.runner",
    "run_cases": "cl_nas.cl.runner",
    "run_order": "cl_nas.cl.runner",
    "BENCHMARKS": "cl_nas.cl.scenarios",
    "BenchmarkSpec": "cl_nas.cl.scenarios",
    "available_benchmarks": "cl_nas.cl.scenarios",
    "benchmark_spec": "cl_nas.cl.scenarios",
    "check_class_incremental": "cl_nas.cl.scenarios",
    "check_class_order": "cl_nas.cl.scenarios",
    "class_order": "cl_nas.cl.scenarios",
    "make_scenario": "cl_nas.cl.scenarios",
    "register_benchmark": "cl_nas.cl.scenarios",
    "to_image_dataset": "cl_nas.cl.adapters",
    "STRATEGIES": "cl_nas.cl.strategies",
    "ERACE": "cl_nas.cl.strategies",
    "StrategySpec": "cl_nas.cl.strategies",
    "build_strategy": "cl_nas.cl.strategies",
    "register_strategy": "cl_nas.cl.strategies",
    "LOGGERS": "cl_nas.cl.metrics",
    "RunMetrics": "cl_nas.cl.metrics",
    "build_loggers": "cl_nas.cl.metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cl_nas.cl' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
