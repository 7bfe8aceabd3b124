"""Time to quality: test accuracy of a learned condenser's set against its condensation time.

One condensation run keeps snapshots of the images at ``--snapshots`` iterations (the last one is the
final set); each snapshot is then trained on and tested under the ``--protocol`` chosen (default
``fast``), like a row of ``condense.py``. Rows land in ``benchmarks/results/condense_curve.csv`` as they
finish, with a plot of accuracy vs condensation time beside it (the targets drawn in).

    python benchmarks/time_to_quality.py --dataset mnist --method dm --ipc 10 \\
        --param iterations=2000 --param batch_real=64 --snapshots 100 250 500 1000 2000

A sweep is one command per setting into one table (``--out``); the plot draws one line per run,
labelled with the options that differ. Each row also records the same models' accuracy on the
validation split (``val_acc_mean``): a sweep's winner is chosen on that, never on the test accuracy::

    for lr in 1 3 10; do python benchmarks/time_to_quality.py --dataset fashionmnist --method dm \\
        --param iterations=500 --param lr_img=$lr --param batch_real=64 --snapshots 250 500 \\
        --out benchmarks/results/condense_sweep.csv; done

The condensation shares the synthetic-set cache with ``condense.py`` (``--cache``, else
``$CL_NAS_CACHE``): it checkpoints where ``condense.py`` does, so either script resumes the other's
run; its final set is stored there, so ``condense.py`` evaluates it without condensing again; APM
keeps its teachers there. The snapshot sets are saved under ``--work`` once it finishes; rerunning
the same command skips finished rows and reuses them.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd
from _common import RESULTS, Evaluation, add_condensation_flags, add_evaluation_flags, condenser_params, run_script

from cl_nas.condense import IterativeCondenser, SyntheticCache, build_condenser
from cl_nas.condense.plots import curve_figure, save_figure
from cl_nas.data import canonical_name, load_dataset
from cl_nas.results import ResultsTable
from cl_nas.synthetic import SyntheticSet
from cl_nas.utils import check_positive_int

COLUMNS = [
    "method", "dataset", "ipc", "iteration", "condense_seconds", "acc_mean", "acc_std", "n_eval", "eval_epochs",
    "eval_augment", "seed", "machine", "config", "eval_seconds", "accuracies", "command", "condense_model", "protocol",
    "labels", "val_acc_mean",
]  # fmt: skip
# condense_model too: rows condensed before the reference ConvNet became "convnet" record that name in config
KEY = ["method", "dataset", "ipc", "seed", "config", "condense_model", "iteration", "protocol", "labels"]
# the study's aim, drawn into its plot: the DM paper's IPC 10 accuracy within 15 minutes of condensation
TIME_LIMIT_MINUTES = 15.0


def paper_targets(method: str, ipc: int) -> dict[str, float]:
    """``{dataset: accuracy}`` of ``method`` at ``ipc`` in the papers' tables (``paper_reference.csv``)."""
    papers = pd.read_csv(RESULTS / "paper_reference.csv")
    rows = papers[(papers.method == method) & (papers.ipc == ipc)]
    return dict(zip(rows.dataset, rows.acc_mean, strict=True))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--method", default="dm", help="a learned condenser: dc, dsa, dm or apm")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--snapshots", type=int, nargs="+", required=True, help="iterations to evaluate (last = final)")
    add_evaluation_flags(p)
    add_condensation_flags(p)  # --param KEY=VALUE also works: the options of --method
    p.add_argument("--work", default="runs/time_to_quality", help="folder of the snapshot sets")
    p.add_argument("--out", default=str(RESULTS / "condense_curve.csv"))
    return p


def snapshot_sets(condenser: IterativeCondenser, train, args: argparse.Namespace) -> list[SyntheticSet]:
    """The snapshot sets of this run: read back from ``--work`` or condensed now (resumably, in the cache)."""
    folder = Path(args.work) / condenser.cache_key(train, args.ipc, args.seed)
    paths = {it: folder / f"iteration{it}.pt" for it in sorted(args.snapshots)}
    if all(p.is_file() for p in paths.values()):
        return [SyntheticSet.load(p) for p in paths.values()]
    # condensed through the cache: it resumes condense.py's checkpoint, and condense.py finds the final set
    result = SyntheticCache(args.cache).condense(condenser, train, args.ipc, seed=args.seed)
    sets = condenser.snapshot_sets(result)
    missing = sorted(set(paths) - {syn.meta.config["iterations"] for syn in sets})
    if missing:  # the run resumed from a checkpoint written past them without taking them
        warnings.warn(
            f"no snapshot at iterations {missing}: the resumed checkpoint had passed them; the other snapshots "
            "are evaluated, and a rerun condenses afresh to take them all",
            stacklevel=2,
        )
    for syn in sets:
        syn.save(paths[syn.meta.config["iterations"]])
    return sets


def run(args: argparse.Namespace, command: str) -> None:
    evaluation = Evaluation.from_args(args, COLUMNS)
    check_positive_int("--ipc", args.ipc)
    if not isinstance(build_condenser(args.method), IterativeCondenser):
        raise ValueError(f"--method {args.method!r} is a coreset: a time-to-quality curve needs dc, dsa, dm or apm")
    method = args.method.lower()
    per_method = condenser_params(args.param, method)
    others = sorted(set(per_method) - {method})
    if others:
        raise ValueError(f"--param sets options of {', '.join(others)}, but --method is {method}")
    params = per_method.get(method, {})
    params.setdefault("iterations", max(args.snapshots))
    condenser = build_condenser(args.method, device=args.device, snapshot_at=args.snapshots, **params)
    dataset = canonical_name(args.dataset)
    splits = load_dataset(dataset, args.data_root)
    condenser_config = condenser.get_config()
    table = ResultsTable(args.out, COLUMNS, KEY)
    (model,) = evaluation.models  # the default only: the table has no model column
    config = json.dumps(condenser_config, sort_keys=True)
    key = dict(method=args.method, dataset=dataset, ipc=args.ipc, seed=args.seed, config=config,
               condense_model=condenser_config["model"])  # fmt: skip
    key.update(evaluation.key(dataset, model))
    if all(table.has(**key, iteration=it) for it in args.snapshots):
        print(f"every snapshot of this run is already in {args.out}")
    else:
        for syn in reversed(snapshot_sets(condenser, splits.train, args)):  # the final set's row first
            iteration = syn.meta.config["iterations"]
            if table.has(**key, iteration=iteration):
                continue
            row_key = {**key, "iteration": iteration}
            evaluation.record(
                table, row_key, syn, splits, model, command=command,
                label=f"{dataset} {args.method} ipc={args.ipc} iteration {iteration}",
            )  # fmt: skip
    targets = paper_targets(method, args.ipc)
    figure = curve_figure(pd.read_csv(args.out), targets=targets, time_limit_minutes=TIME_LIMIT_MINUTES)
    png = save_figure(figure, Path(args.out).with_suffix(".png"))
    print(f"table: {args.out}; plot: {png}")


def main(argv: list[str] | None = None) -> int:
    return run_script(__file__, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
