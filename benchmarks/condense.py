"""Condensation quality: method x dataset x IPC, under an evaluation protocol (``--protocol``, default ``fast``).

For every (method, dataset, ipc) it condenses the training split (condensation seed
``--seed``), trains ``--eval-seeds`` fresh networks on the result as ``--protocol`` prescribes
(:mod:`cl_nas.protocols`) and tests each once on the real test set. Rows land in
``benchmarks/results/condense_quality.csv`` as they finish, with the protocol, the labels and the
condenser's configuration; rerunning the same command skips finished rows (resume). A plot of
accuracy vs IPC sits beside it.

    python benchmarks/condense.py --datasets mnist fashionmnist --methods random --ipcs 1 10 50 --protocol dc

Under a protocol that trains on a teacher's logits (``apm``), every set is labelled by the teachers of
the APM condenser that ``--param apm.KEY=VALUE`` configures (kept in the cache, trained once): APM's
own set, and the baselines (random real images, a DM set) judged with the same labels. The teachers'
test accuracy is recorded in ``teacher_acc``.

Synthetic sets come from the shared cache (``--cache``, else ``$CL_NAS_CACHE``), so the
cross-architecture rows (``--models``) and the NAS proxy reuse the sets the ConvNet rows made.

``--images`` also draws the methods' sets side by side, one figure per dataset and IPC
(``condense_quality_images_<dataset>_ipc<k>.png`` beside the table; rows already recorded are not
evaluated again, their sets are read from the cache).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import pandas as pd
from _common import (
    RESULTS,
    Evaluation,
    add_condensation_flags,
    add_evaluation_flags,
    condenser_params,
    run_script,
)

from cl_nas.condense import APMCondenser, SyntheticCache, build_condenser
from cl_nas.condense.plots import cross_architecture_figure, quality_figure, save_figure, synthetic_sets_figure
from cl_nas.data import DatasetSplits, canonical_name, dataset_info, load_dataset
from cl_nas.models import build_model
from cl_nas.protocols import TEACHER_LOGITS
from cl_nas.results import ResultsTable
from cl_nas.train import accuracy
from cl_nas.utils import check_positive_int, machine_description

COLUMNS = [
    "method", "dataset", "ipc", "acc_mean", "acc_std", "n_eval", "condense_seconds", "eval_epochs", "seed", "machine",
    "model", "eval_augment", "eval_seconds", "accuracies", "command", "condense_model", "protocol", "labels",
    "teacher", "teacher_acc", "config",
]  # fmt: skip
KEY = ["method", "dataset", "ipc", "seed", "model", "protocol", "labels", "teacher", "config"]
CROSS_ARCH_IPC = 10  # the cross-architecture rows are at IPC 10


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashionmnist"])
    p.add_argument("--methods", nargs="+", default=["random", "herding", "kcenter"])
    p.add_argument("--ipcs", nargs="+", type=int, default=[1, 10, 50])
    add_evaluation_flags(p)
    add_condensation_flags(p)
    p.add_argument("--out", default=str(RESULTS / "condense_quality.csv"))
    p.add_argument("--images", action="store_true", help="draw each dataset and IPC's sets side by side")
    return p


def plot(table_path: Path) -> list[Path]:
    """Accuracy vs IPC beside the table, one figure per (evaluation model, protocol)
    (``condense_quality_<protocol>[_<model>].png``), and the cross-architecture bars of each protocol whose
    IPC-10 rows span several evaluation models (``condense_quality_cross_arch_<protocol>.png``)."""
    table = pd.read_csv(table_path)
    paths = []
    for model, protocol in table[["model", "protocol"]].drop_duplicates().itertuples(index=False):
        suffix = protocol if model == "convnet" else f"{protocol}_{re.sub(r'[^A-Za-z0-9]+', '-', model).strip('-')}"
        path = table_path.with_name(f"{table_path.stem}_{suffix}.png")
        paths.append(save_figure(quality_figure(table, model, protocol), path))
    at_ipc = table[table["ipc"] == CROSS_ARCH_IPC]
    for protocol, rows in at_ipc.groupby("protocol"):
        if rows["model"].nunique() > 1:
            cross = table_path.with_name(f"{table_path.stem}_cross_arch_{protocol}.png")
            paths.append(save_figure(cross_architecture_figure(rows, ipc=CROSS_ARCH_IPC), cross))
    return paths


def teacher_columns(labeller: APMCondenser, splits: DatasetSplits) -> tuple[str, float]:
    """The ``teacher`` key column (how the labelling teachers are trained) and their mean test accuracy;
    trains the teachers on first use (they are kept in the cache)."""
    teachers, _ = labeller.load_teachers(splits.train)
    recipes = labeller.teacher_recipes(splits.info)
    described = "; ".join(f"{r.model} {r.epochs} ep lr {r.lr} {r.augment} seed {r.seed}" for r in recipes)
    return described, round(sum(accuracy(t, splits.test) for t in teachers) / len(teachers), 2)


def run(args: argparse.Namespace, command: str) -> None:
    evaluation = Evaluation.from_args(args, COLUMNS)
    for ipc in args.ipcs:
        check_positive_int("--ipcs", ipc)
    datasets = [canonical_name(d) for d in args.datasets]
    params = condenser_params(args.param)
    condensers = {m: build_condenser(m, device=args.device, **params.get(m, {})) for m in args.methods}
    for dataset in datasets:  # validate every spec against every dataset before any compute
        info = dataset_info(dataset)
        for spec in evaluation.models:
            build_model(spec, info.channels, info.num_classes, info.image_size)
    table = ResultsTable(args.out, COLUMNS, KEY)
    cache = SyntheticCache(args.cache)
    teaching = evaluation.settings(datasets[0], evaluation.models[0]).labels == TEACHER_LOGITS
    labeller = build_condenser("apm", device=args.device, **params.get("apm", {})) if teaching else None
    if labeller is not None:
        cache.keep_teachers(labeller)  # unless --param apm.teacher_dir=... keeps them elsewhere
    start = time.perf_counter()
    for dataset in datasets:
        splits = load_dataset(dataset, args.data_root)
        teacher, teacher_acc = teacher_columns(labeller, splits) if labeller is not None else ("", None)
        for ipc in sorted(args.ipcs):
            sets = {}
            for method, condenser in condensers.items():
                config = condenser.get_config()
                key = dict(method=method, dataset=dataset, ipc=ipc, seed=args.seed, teacher=teacher)
                key["config"] = json.dumps(config, sort_keys=True)
                todo = [m for m in evaluation.models if not table.has(**key, **evaluation.key(dataset, m))]
                if not todo and not args.images:
                    continue
                syn = cache.get_or_condense(condenser, splits.train, ipc, seed=args.seed)  # shared with CL and NAS
                if labeller is not None and syn.teacher_logits is None:
                    syn = labeller.label(syn, splits.train)
                sets[method] = syn
                for model in todo:
                    row_key = {**key, **evaluation.key(dataset, model), "teacher_acc": teacher_acc}
                    row_key["condense_model"] = config.get("model", "")
                    evaluation.record(
                        table, row_key, syn, splits, model, command=command,
                        label=f"{dataset:>12} {method:>8} ipc={ipc:<3} {model:<10}",
                    )  # fmt: skip
            if args.images:
                path = Path(args.out)
                path = path.with_name(f"{path.stem}_images_{dataset}_ipc{ipc}.png")
                print(f"images: {save_figure(synthetic_sets_figure(sets), path)}")
    plot(Path(args.out))
    print(f"done in {time.perf_counter() - start:.0f} s on {machine_description()}; table: {args.out}")


def main(argv: list[str] | None = None) -> int:
    return run_script(__file__, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
