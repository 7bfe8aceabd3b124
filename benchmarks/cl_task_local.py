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
import time
from pathlib import Path

import torch

import cl_nas  # noqa: F401  (makes torchvision importable first)
from cl_nas.augment import DSA, resolve_strategy
from cl_nas.cl.scenarios import class_order
from cl_nas.condense import SyntheticCache, build_condenser
from cl_nas.data import ImageDataset, canonical_name, load_dataset
from cl_nas.results import ResultsTable
from cl_nas.train import TrainConfig, evaluate_protocol
from cl_nas.utils import machine_description, native_bf16, parse_method_params

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "method", "dataset", "ipc", "tasks", "acc_mean", "acc_std", "n_eval", "condense_seconds", "eval_epochs", "seed",
    "machine", "eval_seconds", "accuracies", "command",
]  # fmt: skip
KEY = ["method", "dataset", "ipc", "tasks", "seed", "eval_epochs"]


def task_subsets(train: ImageDataset, tasks: int) -> list[ImageDataset]:
    """``train`` cut into ``tasks`` class groups, in class order 0 (the CL benchmarks' first order)."""
    order = class_order(0, len(train.classes))
    if len(order) % tasks:
        raise SystemExit(f"--tasks {tasks} does not divide the {len(order)} classes evenly")
    size = len(order) // tasks
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    return [train.subset(torch.cat([train.class_indices(c) for c in group])) for group in groups]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--methods", nargs="+", default=["dsa", "dm"])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--tasks", nargs="+", type=int, default=[1, 5], help="class groups condensed one at a time")
    p.add_argument("--eval-seeds", type=int, default=3)
    p.add_argument("--eval-epochs", type=int, default=300)
    p.add_argument("--seed", type=int, default=0, help="condensation seed")
    p.add_argument("--param", action="append", default=[], metavar="METHOD.KEY=VALUE")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(RESULTS / "cl_task_local.csv"))
    args = p.parse_args(argv)
    if args.ipc < 1 or args.eval_seeds < 1 or args.eval_epochs < 1 or min(args.tasks) < 1:
        raise SystemExit("--ipc, --tasks, --eval-seeds and --eval-epochs must be positive")
    dataset = canonical_name(args.dataset)
    params = parse_method_params(args.param)
    condensers = {m: build_condenser(m, device=args.device, **params.get(m, {})) for m in args.methods}
    splits = load_dataset(dataset, args.data_root)
    subsets = {n: task_subsets(splits.train, n) for n in args.tasks}  # checks --tasks before any compute
    table, cache = ResultsTable(args.out, COLUMNS, KEY), SyntheticCache(args.cache)
    command = "python benchmarks/cl_task_local.py " + " ".join(sys.argv[1:] if argv is None else argv)
    config = TrainConfig(epochs=args.eval_epochs, bf16=native_bf16(args.device))
    augment = DSA(resolve_strategy("dsa", dataset))
    for method, condenser in condensers.items():
        for tasks, parts in subsets.items():
            key = dict(method=method, dataset=dataset, ipc=args.ipc, tasks=tasks, seed=args.seed)
            if table.has(**key, eval_epochs=args.eval_epochs):
                continue
            sets = [cache.get_or_condense(condenser, part, args.ipc, seed=args.seed) for part in parts]
            images, labels = torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets])
            start = time.perf_counter()
            result = evaluate_protocol(
                images, labels, splits.test, n_seeds=args.eval_seeds, config=config, augment=augment, device=args.device
            )
            row = {
                **key, "eval_epochs": args.eval_epochs, "acc_mean": round(result.mean, 2),
                "acc_std": round(result.std, 2), "n_eval": args.eval_seeds,
                "condense_seconds": round(sum(s.meta.wall_seconds for s in sets), 1),
                "machine": machine_description(), "eval_seconds": round(time.perf_counter() - start, 1),
                "accuracies": " ".join(f"{a:.2f}" for a in result.accuracies), "command": command,
            }  # fmt: skip
            table.append(row)
            print(f"{dataset} {method} ipc={args.ipc} tasks={tasks}: {result} (condense {row['condense_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
