"""Time to quality: test accuracy of a learned condenser's set against its condensation time.

One condensation run keeps snapshots of the images at ``--snapshots`` iterations (the last one is
the final set); each snapshot is then trained on and tested under the papers' protocol, like a row
of ``condense.py``. Rows land in ``benchmarks/results/condense_curve.csv`` as they finish, with a plot
of accuracy vs condensation time beside it (the issue's targets drawn in).

    python benchmarks/time_to_quality.py --dataset mnist --method dm --ipc 10 \\
        --param iterations=2000 --param batch_real=64 --snapshots 100 250 500 1000 2000

A sweep is one command per setting into one table (``--out``); the plot draws one line per run,
labelled with the options that differ::

    for lr in 1 3 10; do python benchmarks/time_to_quality.py --dataset fashionmnist --method dm \\
        --param iterations=500 --param lr_img=$lr --param batch_real=64 --snapshots 250 500 \\
        --out benchmarks/results/condense_sweep.csv; done

Resume: the condensation checkpoints (snapshots included) under ``--work``, and the snapshot sets
are saved there once it finishes; rerunning the same command skips finished rows and reuses them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

import cl_nas  # noqa: F401  (makes torchvision importable first)
from cl_nas.augment import DSA, resolve_strategy
from cl_nas.cli import run_reporting_errors
from cl_nas.condense import IterativeCondenser, build_condenser
from cl_nas.condense.plots import curve_figure, save_figure
from cl_nas.data import canonical_name, load_dataset
from cl_nas.results import ResultsTable
from cl_nas.synthetic import SyntheticSet
from cl_nas.train import TrainConfig, evaluate_protocol
from cl_nas.utils import machine_description, native_bf16, parse_params

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "method", "dataset", "ipc", "iteration", "condense_seconds", "acc_mean", "acc_std", "n_eval", "eval_epochs",
    "eval_augment", "seed", "machine", "config", "eval_seconds", "accuracies", "command",
]  # fmt: skip
KEY = ["method", "dataset", "ipc", "seed", "config", "iteration", "eval_epochs", "eval_augment"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--method", default="dm", help="a learned condenser: dc, dsa, dm or apm")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="condenser option, repeatable")
    p.add_argument("--snapshots", type=int, nargs="+", required=True, help="iterations to evaluate (last = final)")
    p.add_argument("--eval-seeds", type=int, default=3)
    p.add_argument("--eval-epochs", type=int, default=300)
    p.add_argument("--augment", default="dsa", choices=["dsa", "none"], help="augmentation while training eval models")
    p.add_argument("--seed", type=int, default=0, help="condensation seed")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--work", default="runs/time_to_quality", help="checkpoints and snapshot sets (not committed)")
    p.add_argument("--out", default=str(RESULTS / "condense_curve.csv"))
    return p.parse_args(argv)


def snapshot_sets(condenser: IterativeCondenser, train, args: argparse.Namespace) -> list[SyntheticSet]:
    """The snapshot sets of this run: read back from ``--work`` or condensed now (resumably) and saved there."""
    folder = Path(args.work) / condenser.cache_key(train, args.ipc, args.seed)
    paths = [folder / f"iteration{it}.pt" for it in sorted(args.snapshots)]
    if all(p.is_file() for p in paths):
        return [SyntheticSet.load(p) for p in paths]
    condenser.checkpoint_dir = folder  # resume after a crash
    result = condenser.condense(train, args.ipc, seed=args.seed)
    sets = condenser.snapshot_sets(result)
    for path, syn in zip(paths, sets, strict=True):
        syn.save(path)
    return sets


def run(args: argparse.Namespace) -> int:
    if args.ipc < 1 or args.eval_seeds < 1 or args.eval_epochs < 1:
        raise ValueError("--ipc, --eval-seeds and --eval-epochs must be positive")
    if not isinstance(build_condenser(args.method), IterativeCondenser):
        raise ValueError(f"--method {args.method!r} is a coreset: a time-to-quality curve needs dc, dsa, dm or apm")
    params = parse_params(args.param)
    params.setdefault("iterations", max(args.snapshots))
    condenser = build_condenser(args.method, device=args.device, snapshot_at=args.snapshots, **params)
    dataset = canonical_name(args.dataset)
    splits = load_dataset(dataset, args.data_root)
    config = json.dumps(condenser.get_config(), sort_keys=True)
    command = "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:])
    table = ResultsTable(args.out, COLUMNS, KEY)
    key = dict(method=args.method, dataset=dataset, ipc=args.ipc, seed=args.seed, config=config)
    key.update(eval_epochs=args.eval_epochs, eval_augment=args.augment)
    if all(table.has(**key, iteration=it) for it in args.snapshots):
        print(f"every snapshot of this run is already in {args.out}")
    else:
        train_config = TrainConfig(epochs=args.eval_epochs, bf16=native_bf16(args.device))
        augment = DSA(strategy) if (strategy := resolve_strategy(args.augment, dataset)) else None
        for syn in snapshot_sets(condenser, splits.train, args):
            iteration = syn.meta.config["iterations"]
            if table.has(**key, iteration=iteration):
                continue
            start = time.perf_counter()
            result = evaluate_protocol(
                syn.images, syn.labels, splits.test, n_seeds=args.eval_seeds, config=train_config, augment=augment,
                device=args.device,
            )  # fmt: skip
            table.append({
                **key, "iteration": iteration, "condense_seconds": round(syn.meta.wall_seconds, 1),
                "acc_mean": round(result.mean, 2), "acc_std": round(result.std, 2), "n_eval": args.eval_seeds,
                "machine": machine_description(), "eval_seconds": round(time.perf_counter() - start, 1),
                "accuracies": " ".join(f"{a:.2f}" for a in result.accuracies), "command": command,
            })  # fmt: skip
            print(
                f"{dataset} {args.method} ipc={args.ipc} iteration {iteration} "
                f"({syn.meta.wall_seconds / 60:.1f} min): {result}",
                flush=True,
            )
    png = save_figure(curve_figure(pd.read_csv(args.out)), Path(args.out).with_suffix(".png"))
    print(f"table: {args.out}; plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(run_reporting_errors(run, parse_args(), "benchmarks/time_to_quality.py"))
