"""Class-incremental learning with condensed replay: the study behind ``benchmarks/results/cl.csv``.

The same library code as ``cl-nas cl`` (:mod:`cl_nas.cl.command`) with the full study as defaults:
Split-MNIST and Split-Fashion-MNIST (5 experiences of 2 classes), experience replay and GDumb-style
training with Avalanche's class-balanced and herding buffers, DC/DSA/DM/APM condensed buffers, APM
taught by the learner (replay only) and DM stored as uint8, at the bytes of 1, 10 and 20 fp32 images
per class, naive and joint bounds, over 5 seeded class orders, condensers at the benchmarks' CPU budgets.
Rows land in the CSV as each case finishes; per-run state under ``runs/cl-benchmark/`` lets
the same command resume after a crash; a plot of accuracy per experience sits beside the CSV.

    python benchmarks/cl.py --data-root ../shared/data      # the full study (days on a 2-core CPU: see the README)
    python benchmarks/cl.py --benchmarks split-digits --orders 2 --out /tmp/cl.csv   # a quick check

Every ``cl-nas cl`` option works here, e.g. ``--param dm.iterations=500`` or ``--buffers dm dm@uint8``.
Ablations go to their own table, e.g. ``benchmarks/results/cl_ablation.csv`` (DSA on the memory)::

    python benchmarks/cl.py --data-root ../shared/data --benchmarks split-fmnist --mem-per-class 10 --orders 3 \
        --buffers class-balanced herding dm --strategies gdumb --augment dsa --out benchmarks/results/cl_ablation.csv

Processes running in parallel (e.g. one per benchmark) need separate ``--out`` tables: each rewrites its
whole table, so two writers of one file would drop each other's rows. Merge the CSVs afterwards.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cl_nas  # noqa: F401  (makes torchvision importable first)
from cl_nas.cl.command import add_arguments, run
from cl_nas.cli import run_reporting_errors

RESULTS = Path(__file__).resolve().parent / "results"
STUDY = {
    "benchmarks": ["split-mnist", "split-fmnist"],
    "strategies": ["naive", "joint", "replay", "gdumb"],
    "buffers": ["class-balanced", "herding", "dc", "dsa", "dm", "apm", "apm-teacher", "dm@uint8"],
    "mem_per_class": [1, 10, 20],
    "orders": 5,
    "out": str(RESULTS / "cl.csv"),
    "runs": "runs/cl-benchmark",  # per-run state (resume), not committed
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.set_defaults(**STUDY)
    args = parser.parse_args(argv)
    return run_reporting_errors(run, args, "benchmarks/cl.py")


if __name__ == "__main__":
    sys.exit(main())
