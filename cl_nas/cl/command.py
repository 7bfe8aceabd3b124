"""``cl-nas cl``: class-incremental learning with condensed replay, as a resumable study.

``add_parser(subparsers)`` registers the subcommand, ``configure_parser(p)`` adds its options to any parser,
``run(args)`` runs it; ``benchmarks/cl.py`` uses the same pieces with the full study as defaults. The defaults
here are the short demo on the embedded digits: experience replay and GDumb-style training with
class-balanced, herding and DM buffers, each stored at fp32 and at uint8, in the bytes of 10 fp32 exemplars
per class, one class order. The flags map onto :class:`~cl_nas.cl.config.CLSettings` and the cases of
:func:`~cl_nas.cl.config.expand_cases`.

Every case (benchmark x strategy x buffer x memory) is validated before anything trains; each run
keeps per-experience state, so rerunning the same command after a crash resumes, and rows already
in the results table are skipped. Heavy imports (Avalanche) happen in :func:`run`, so the rest of the
CLI starts fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cl_nas.utils import check_positive_int, check_writable_folder, parse_method_params

HELP = "class-incremental learning with condensed replay buffers (Avalanche)"
DESCRIPTION = f"{HELP}; the defaults are a short demo on the embedded digits. Rerunning resumes."


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``cl-nas cl`` to ``p`` (``benchmarks/cl.py`` changes their defaults)."""
    p.add_argument(
        "--benchmarks", nargs="+", default=["split-digits"],
        help="split-digits, split-digits-xy, split-mnist, split-fmnist, split-cifar10-{5,10}, split-cifar100-{5,10}",
    )  # fmt: skip
    p.add_argument(
        "--strategies", nargs="+", default=["replay", "gdumb"],
        help="replay (Naive+ReplayPlugin), er-ace, ewc-replay, lwf-replay, gdumb (from scratch on the memory), "
        "avalanche-gdumb (Avalanche's GDumbPlugin), naive and joint (bounds, no buffer)",
    )  # fmt: skip
    p.add_argument(
        "--buffers", nargs="+",
        default=["class-balanced", "herding", "dm", "class-balanced@uint8", "herding@uint8", "dm@uint8"],
        help="reservoir, class-balanced, herding (Avalanche), a condensation method (dc, dsa, dm, apm, ...), "
        "apm-teacher; any takes @fp16 or @uint8 for reduced-precision storage",
    )  # fmt: skip
    p.add_argument(
        "--mem-per-class", nargs="+", type=int, default=[10],
        help="memory budgets, in fp32 exemplars (image and label) per class: bytes are what is compared",
    )  # fmt: skip
    p.add_argument("--mem-bytes", type=int, default=None, help="one memory budget in bytes instead of --mem-per-class")
    p.add_argument(
        "--budget", default="per-class", choices=["per-class", "shared"],
        help="per-class: each class its fixed share from the start (DM paper); shared: the seen classes share it all, "
        "older groups shrink as classes arrive (Avalanche's adaptive size)",
    )  # fmt: skip
    p.add_argument("--orders", type=int, default=1, help="seeded class orders to repeat over (seeds 0..N-1)")
    p.add_argument("--class-order", default=None, help="one explicit class order instead, e.g. 3,1,4,0,5,9,2,6,8,7")
    p.add_argument("--model", default=None, help="learner model spec (default: the benchmark's)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per experience (default: the benchmark's)")
    p.add_argument("--memory-epochs", type=int, default=None, help="gdumb: epochs on the memory per experience")
    p.add_argument(
        "--augment", default=None, metavar="DSA",
        help="DSA on every training mini-batch: 'dsa' (the dataset's default operations) or ops such as crop_flip",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None, help="default: where the device has native bf16"
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="METHOD.KEY=VALUE", help="condenser option: dm.iterations=500"
    )
    p.add_argument(
        "--strategy-param", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
        help="a strategy's own option: ewc-replay.ewc_lambda=10, lwf-replay.alpha=0.5, er-ace.batch_size_mem=10",
    )  # fmt: skip
    p.add_argument(
        "--loggers", default="", metavar="NAMES",
        help="Avalanche loggers of every run, comma-separated: interactive, text, csv, tensorboard "
        "(written under each run's folder, logs/)",
    )  # fmt: skip
    p.add_argument("--out", default="runs/cl/results.csv", help="results table (CSV); the plot goes beside it")
    p.add_argument("--runs", default=None, help="per-run state folders (default: runs/ beside --out)")
    p.add_argument(
        "--cache", default=None, help="synthetic-set cache (default: $CL_NAS_CACHE, else ~/.cache/cl_nas/synthetic)"
    )
    p.add_argument("--no-plot", action="store_true", help="skip the accuracy-per-experience PNG")
    p.add_argument("--data-root", default=None, help="dataset folder (default: $CL_NAS_DATA)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    return p


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cl`` on the CLI's subparsers and return its parser."""
    return configure_parser(subparsers.add_parser("cl", help=HELP, description=DESCRIPTION))


def _class_order(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError as err:
        raise ValueError(f"--class-order expects comma-separated class ids, got {text!r}") from err


def run(args: argparse.Namespace) -> int:
    """Run the study described by ``args``; print its rows; return 0 (bad input raises ``ValueError``)."""
    from cl_nas.cl.config import CLSettings, expand_cases
    from cl_nas.cl.plot import plot_accuracy
    from cl_nas.cl.runner import run_cases

    check_positive_int("--orders", args.orders)
    out = Path(args.out)
    settings = CLSettings(
        order_seeds=tuple(range(args.orders)), class_order=_class_order(args.class_order), model=args.model,
        epochs=args.epochs, memory_epochs=args.memory_epochs, batch_size=args.batch_size, lr=args.lr, bf16=args.bf16,
        mem_bytes=args.mem_bytes, budget=args.budget, augment=args.augment,
        condense_params=parse_method_params(args.param), strategy_params=parse_method_params(args.strategy_param),
        loggers=tuple(name for name in args.loggers.split(",") if name.strip()),
        device=args.device, data_root=args.data_root, cache_dir=args.cache,
        run_root=str(args.runs or out.parent / "runs"),
    )  # fmt: skip
    check_writable_folder(settings.run_root, "--runs")  # output folders fail here, before any run (--out: the table)
    cases = expand_cases(args.benchmarks, args.strategies, args.buffers, args.mem_per_class, settings)
    _check_options_are_used(settings, cases)
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])  # recorded in the table, for the reader
    rows = run_cases(cases, settings, out, command=command)
    _print_rows(rows)
    print(f"results: {out}")
    if not args.no_plot:
        print(f"plot: {plot_accuracy(out)}")
    return 0


def _check_options_are_used(settings: Any, cases: list[Any]) -> None:
    """``--param`` and ``--strategy-param`` options that no case of the run would read are mistakes: refuse them."""
    from cl_nas.cl.buffers import parse_buffer

    methods = {parse_buffer(case.buffer).method for case in cases}
    for method in settings.condense_params:
        if method not in methods:
            raise ValueError(f"--param {method}.* given but no {method} buffer runs")
    strategies = {case.strategy for case in cases}
    for strategy in settings.strategy_params:
        if strategy not in strategies:
            raise ValueError(f"--strategy-param {strategy}.* given but strategy {strategy} does not run")


def _print_rows(rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    table = pd.DataFrame(rows)
    # ± the sample standard deviation over class orders
    table["final_acc"] = [f"{m:.2f} ± {s:.2f}" for m, s in zip(table.final_acc_mean, table.final_acc_std, strict=True)]
    columns = ["benchmark", "strategy", "buffer", "mem_per_class", "n_orders", "final_acc", "avg_incremental_acc",
               "forgetting", "condense_seconds", "train_seconds"]  # fmt: skip
    print(table[columns].to_string(index=False))
