"""Proxy NAS benchmark: how well training on condensed data ranks ConvNets, against controls.

The same code as ``cl-nas nas`` (:mod:`cl_nas.nas.command`); see its docstring for the steps and
``--help`` for the flags. Results go to ``benchmarks/results/``: ``nas_correlation.csv``,
``nas_scores.csv``, ``nas_report.md`` and ``nas_scatter.png``. Rerunning a command resumes it.

The full run (Fashion-MNIST, DM at 10 images per class, 48 ground-truth architectures, 3 seeds, the
three controls): two workers, one thread each, sharing the default SQLite storage
``runs/nas/optuna.db`` and the synthetic cache; the second prints the report once all is done::

    export OMP_NUM_THREADS=1; mkdir -p runs/nas
    ARGS="--dataset fashionmnist --proxy dm --ipc 10 --param iterations=1000 --param batch_real=64 \\
          --epochs 20 --trials 48 --seeds 0 1 2 --controls random herding earlystop \\
          --ground-truth --gt-archs 48 --gt-epochs 1"
    python benchmarks/nas.py $ARGS --no-report > runs/nas/worker2.log 2>&1 &
    python benchmarks/nas.py $ARGS | tee runs/nas/worker1.log

Measured on the 2-core AMD EPYC here while other jobs kept it loaded (about half a core per
process): the ground truth is 6.7 core-hours (three ConvNet-4 width-256 no-pooling architectures
are 4.2 of them), a proxy study 32 core-minutes (14 training, 18 validation passes), DM 27 minutes
per seed; about 14.6 core-hours in all, 7-8 hours for two workers at that load, roughly 3 hours on
an idle machine (unmeasured: the CPU was never idle). Training time of the ground truth over the
proxy's: 29.5x over the 48 architectures.

A smoke test on the embedded digits in about a minute::

    python benchmarks/nas.py --dataset digits --proxy random --ipc 5 --epochs 2 --trials 6 \\
        --gt-archs 6 --controls herding --ground-truth --storage sqlite:////tmp/nas.db --out /tmp/nas
"""

from __future__ import annotations

import argparse
import sys

import cl_nas  # noqa: F401  (first: makes torchvision importable)
from cl_nas.cli import run_reporting_errors
from cl_nas.nas.command import configure_parser, run


def main(argv: list[str] | None = None) -> int:
    args = configure_parser(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args(argv)
    return run_reporting_errors(run, args, "nas")


if __name__ == "__main__":
    sys.exit(main())
