"""Condensation quality: method x dataset x IPC, under the papers' evaluation protocol.

For every (method, dataset, ipc) it condenses the training split (condensation seed
``--seed``), trains ``--eval-seeds`` fresh ConvNets on the result and tests each on the real
test set. Rows land in ``benchmarks/results/condense_quality.csv`` as they finish; rerunning
the same command skips finished rows (resume). A plot of accuracy vs IPC sits beside it.

    python benchmarks/condense.py --datasets mnist fashionmnist --methods random herding kcenter \\
        --ipcs 1 10 50 --eval-seeds 3 --eval-epochs 300

Synthetic sets come from the shared cache (``--cache``, else ``$CL_NAS_CACHE``), so the
cross-architecture rows (``--models``) and the NAS proxy reuse the sets the ConvNet rows made.

``--images`` also draws the methods' sets side by side, one figure per dataset and IPC
(``condense_quality_images_<dataset>_ipc<k>.png`` beside the table; rows already recorded are not
evaluated again, their sets are read from the cache).

``--speed`` instead times one DM step and one DC outer iteration against a straightforward
implementation (see ``benchmarks/speed.py``) and writes its rows to ``condense_speed.csv``, replacing
earlier rows of the same machine only (so the table compares machines, e.g. with and without bf16).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

import cl_nas  # noqa: F401  (makes torchvision importable first)
from cl_nas.augment import DSA, resolve_strategy
from cl_nas.condense import SyntheticCache, build_condenser
from cl_nas.condense.plots import cross_architecture_figure, quality_figure, save_figure, synthetic_sets_figure
from cl_nas.data import canonical_name, dataset_info, load_dataset
from cl_nas.models import build_model, model_spec_string
from cl_nas.results import ResultsTable
from cl_nas.train import TrainConfig, evaluate_protocol
from cl_nas.utils import machine_description, native_bf16, parse_method_params

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "method", "dataset", "ipc", "acc_mean", "acc_std", "n_eval", "condense_seconds", "eval_epochs", "seed", "machine",
    "model", "eval_augment", "eval_seconds", "accuracies", "command",
]  # fmt: skip
CROSS_ARCH_IPC = 10  # the cross-architecture rows are at IPC 10
KEY = ["method", "dataset", "ipc", "seed", "model", "eval_epochs", "eval_augment"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashionmnist"])
    p.add_argument("--methods", nargs="+", default=["random", "herding", "kcenter"])
    p.add_argument("--ipcs", nargs="+", type=int, default=[1, 10, 50])
    p.add_argument("--models", nargs="+", default=["convnet"], help="evaluation models (cross-architecture rows)")
    p.add_argument("--eval-seeds", type=int, default=3)
    p.add_argument("--eval-epochs", type=int, default=300)
    p.add_argument("--augment", default="dsa", choices=["dsa", "none"], help="augmentation while training eval models")
    p.add_argument("--seed", type=int, default=0, help="condensation seed")
    p.add_argument("--param", action="append", default=[], metavar="METHOD.KEY=VALUE", help="e.g. dm.iterations=2000")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache", default=None, help="synthetic-set cache folder (default: $CL_NAS_CACHE)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(RESULTS / "condense_quality.csv"))
    p.add_argument("--images", action="store_true", help="draw each dataset and IPC's sets side by side")
    p.add_argument("--speed", action="store_true", help="run the speed benchmark instead")
    return p.parse_args(argv)


def plot(table_path: Path) -> list[Path]:
    """Accuracy vs IPC beside the table, and the cross-architecture bars when the table has them."""
    table = pd.read_csv(table_path)
    paths = [save_figure(quality_figure(table), table_path.with_suffix(".png"))]
    if table.loc[table["ipc"] == CROSS_ARCH_IPC, "model"].nunique() > 1:
        cross = table_path.with_name(table_path.stem + "_cross_arch.png")
        paths.append(save_figure(cross_architecture_figure(table, ipc=CROSS_ARCH_IPC), cross))
    return paths


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.speed:
        from speed import run_speed

        table = run_speed(data_root=args.data_root)
        speed = ResultsTable(RESULTS / "condense_speed.csv", list(table.columns), ["method", "setting", "machine"])
        for row in table.to_dict("records"):
            speed.append(row)
        print(table.to_string(index=False))
        return 0
    datasets = [canonical_name(d) for d in args.datasets]
    params = parse_method_params(args.param)
    condensers = {m: build_condenser(m, device=args.device, **params.get(m, {})) for m in args.methods}
    for dataset in datasets:  # validate every spec against every dataset before any compute
        info = dataset_info(dataset)
        for spec in args.models:
            build_model(spec, info.channels, info.num_classes, info.image_size)
    if min(args.ipcs) < 1 or args.eval_seeds < 1 or args.eval_epochs < 1:
        raise SystemExit("--ipcs, --eval-seeds and --eval-epochs must be positive")
    command = "python benchmarks/condense.py " + " ".join(sys.argv[1:] if argv is None else argv)
    table = ResultsTable(args.out, COLUMNS, KEY)
    cache = SyntheticCache(args.cache)
    machine = machine_description()
    config = TrainConfig(epochs=args.eval_epochs, bf16=native_bf16(args.device))
    start = time.perf_counter()
    for dataset in datasets:
        splits = load_dataset(dataset, args.data_root)
        augment = DSA(strategy) if (strategy := resolve_strategy(args.augment, dataset)) else None
        for ipc in sorted(args.ipcs):
            sets = {}
            for method, condenser in condensers.items():
                key = dict(method=method, dataset=dataset, ipc=ipc, seed=args.seed, eval_epochs=args.eval_epochs)
                key["eval_augment"] = args.augment
                todo = [m for m in args.models if not table.has(**key, model=model_spec_string(m))]
                if not todo and not args.images:
                    continue
                syn = cache.get_or_condense(condenser, splits.train, ipc, seed=args.seed)  # shared with CL and NAS
                sets[method] = syn
                for model in todo:
                    t0 = time.perf_counter()
                    result = evaluate_protocol(
                        syn.images, syn.labels, splits.test, model=model, n_seeds=args.eval_seeds,
                        config=config, augment=augment, device=args.device,
                    )  # fmt: skip
                    row = {
                        **key, "model": model_spec_string(model), "acc_mean": round(result.mean, 2),
                        "acc_std": round(result.std, 2), "n_eval": args.eval_seeds,
                        "condense_seconds": round(syn.meta.wall_seconds, 1), "machine": machine,
                        "eval_seconds": round(time.perf_counter() - t0, 1),
                        "accuracies": " ".join(f"{a:.2f}" for a in result.accuracies), "command": command,
                    }  # fmt: skip
                    table.append(row)
                    print(
                        f"{dataset:>12} {method:>8} ipc={ipc:<3} {row['model']:<10} {result}  "
                        f"(condense {row['condense_seconds']} s, eval {row['eval_seconds']} s)",
                        flush=True,
                    )
            if args.images:
                path = Path(args.out)
                path = path.with_name(f"{path.stem}_images_{dataset}_ipc{ipc}.png")
                print(f"images: {save_figure(synthetic_sets_figure(sets), path)}")
    plot(Path(args.out))
    print(f"done in {time.perf_counter() - start:.0f} s on {machine}; table: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
