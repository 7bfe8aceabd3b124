"""Condensing one experience at a time: what a method keeps of its offline accuracy in a class-incremental buffer.

A condensed CL buffer condenses each experience's data on its own classes, so after the last
experience it holds the union of ``--tasks`` per-task sets, not one set condensed on all classes.
This study condenses the training split both ways (tasks: the classes in order 0 of the CL
benchmarks, split evenly) and evaluates each with the protocol of ``benchmarks/condense.py``
(ConvNet-3, ``--eval-epochs`` with DSA, ``--eval-seeds`` seeds, the real test set):

    OMP_NUM_THREADS=1 python benchmarks/cl_task_local.py --data-root ../shared/data --dataset fashionmnist \\
        --methods dsa --ipc 10 --tasks 1 5 --param dsa.iterations=10 --param dsa.batch_real=64 \\
        --param dsa.outer_loop=5 --param dsa.inner_loop=10    # the CL benchmarks' CPU budget

Rows (``tasks`` 1: the whole split at once) land in ``benchmarks/results/cl_task_local.csv`` as
they finish; a rerun skips them, and every set comes from the synthetic cache.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import torch
from _common import RESULTS, Evaluation, add_condensation_flags, add_evaluation_flags, condenser_params, run_script

from cl_nas.cl.scenarios import class_order
from cl_nas.condense import SyntheticCache, build_condenser
from cl_nas.data import ImageDataset, canonical_name, load_dataset
from cl_nas.results import ResultsTable
from cl_nas.synthetic import SyntheticSet
from cl_nas.utils import check_positive_int

COLUMNS = [
    "method", "dataset", "ipc", "tasks", "acc_mean", "acc_std", "n_eval", "condense_seconds", "eval_epochs", "seed",
    "machine", "eval_seconds", "accuracies", "command", "condense_model", "protocol", "labels",
]  # fmt: skip
KEY = ["method", "dataset", "ipc", "tasks", "seed", "protocol", "labels"]


def task_subsets(train: ImageDataset, tasks: int) -> list[ImageDataset]:
    """``train`` cut into ``tasks`` class groups, in class order 0 (the CL benchmarks' first order)."""
    order = class_order(0, len(train.classes))
    if len(order) % tasks:
        raise ValueError(f"--tasks {tasks} does not divide the {len(order)} classes evenly")
    size = len(order) // tasks
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    return [train.subset(torch.cat([train.class_indices(c) for c in group])) for group in groups]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--methods", nargs="+", default=["dsa", "dm"])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--tasks", nargs="+", type=int, default=[1, 5], help="class groups condensed one at a time")
    add_evaluation_flags(p)
    add_condensation_flags(p)
    p.add_argument("--out", default=str(RESULTS / "cl_task_local.csv"))
    return p


def run(args: argparse.Namespace, command: str) -> None:
    evaluation = Evaluation.from_args(args, COLUMNS)
    check_positive_int("--ipc", args.ipc)
    for tasks in args.tasks:
        check_positive_int("--tasks", tasks)
    dataset = canonical_name(args.dataset)
    params = condenser_params(args.param)
    condensers = {m: build_condenser(m, device=args.device, **params.get(m, {})) for m in args.methods}
    splits = load_dataset(dataset, args.data_root)
    subsets = {n: task_subsets(splits.train, n) for n in args.tasks}  # checks --tasks before any compute
    table, cache = ResultsTable(args.out, COLUMNS, KEY), SyntheticCache(args.cache)
    (model,) = evaluation.models  # the default only: the table has no model column
    for method, condenser in condensers.items():
        for tasks, parts in subsets.items():
            key = dict(method=method, dataset=dataset, ipc=args.ipc, tasks=tasks, seed=args.seed)
            key.update(evaluation.key(dataset, model))
            if table.has(**key):
                continue
            sets = [cache.get_or_condense(condenser, part, args.ipc, seed=args.seed) for part in parts]
            meta = replace(sets[0].meta, wall_seconds=sum(s.meta.wall_seconds for s in sets))
            union = SyntheticSet(torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]), meta)
            key["condense_model"] = condenser.get_config().get("model", "")
            evaluation.record(
                table, key, union, splits, model, command=command,
                label=f"{dataset} {method} ipc={args.ipc} tasks={tasks}",
            )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run_script(__file__, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
