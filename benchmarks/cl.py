"""Class-incremental learning with condensed replay: the study behind ``benchmarks/results/cl.csv``.

The same library code as ``cl-nas cl`` (:mod:`cl_nas.cl.command`) with the full study as defaults:
Split-MNIST and Split-Fashion-MNIST (5 experiences of 2 classes); experience replay, GDumb-style training
and ER-ACE with Avalanche's class-balanced and herding buffers (herding selecting with a learner trained
on the experience), DSA/DM/APM condensed buffers and APM taught by the learner, each stored at fp32 and
at uint8, in the bytes of 1, 10 and 20 fp32 exemplars (image and label) per class; naive and joint
bounds; over 5 seeded class orders, condensers at the benchmarks' CPU budgets. Rows land in the CSV as
each case finishes; per-run state under ``runs/cl-benchmark/`` lets the same command resume after a
crash, from its last finished experience; a plot of accuracy per experience sits beside the CSV.

    python benchmarks/cl.py --data-root ../shared/data      # the full study (weeks on a CPU: see the README)
    python benchmarks/cl.py --benchmarks split-digits --orders 2 --out /tmp/cl.csv   # a quick check

Every ``cl-nas cl`` option works here, e.g. ``--param dm.iterations=500`` or ``--buffers dm dm@uint8``.
Ablations go to their own table, e.g. ``benchmarks/results/cl_ablation.csv`` (DSA on the memory)::

    python benchmarks/cl.py --data-root ../shared/data --benchmarks split-fmnist --mem-per-class 10 --orders 3 \
        --buffers class-balanced herding dm --strategies gdumb --augment dsa --out benchmarks/results/cl_ablation.csv

Processes running in parallel (e.g. one per benchmark) may share one ``--out`` table: every append locks
the file and merges with the rows already on disk (:class:`~cl_nas.results.ResultsTable`), so no row is lost.
"""

from __future__ import annotations

import argparse
import sys

from _common import RESULTS

from cl_nas.cl.command import configure_parser, run
from cl_nas.cli import run_reporting_errors

FP32_BUFFERS = ["class-balanced", "herding", "dsa", "dm", "apm", "apm-teacher"]
STUDY = {
    "benchmarks": ["split-mnist", "split-fmnist"],
    "strategies": ["naive", "joint", "replay", "gdumb", "er-ace"],
    "buffers": [*FP32_BUFFERS, *(f"{buffer}@uint8" for buffer in FP32_BUFFERS)],  # like with like at each precision
    "mem_per_class": [1, 10, 20],
    "orders": 5,
    "out": str(RESULTS / "cl.csv"),
    "runs": "runs/cl-benchmark",  # per-run state (resume), not committed
}


def main(argv: list[str] | None = None) -> int:
    parser = configure_parser(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.set_defaults(**STUDY)
    args = parser.parse_args(argv)
    return run_reporting_errors(run, args, "benchmarks/cl.py")


if __name__ == "__main__":
    sys.exit(main())
