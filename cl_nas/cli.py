"""Command-line interface: ``cl-nas`` / ``python -m cl_nas``.

Subcommands: ``condense`` (dataset -> synthetic set file), ``evaluate`` (synthetic set ->
test accuracy under the papers' protocol), ``cl`` (class-incremental learning with condensed
replay; with no options, the main job on the embedded ``digits``) and ``nas`` (proxy NAS).
Every argument is validated before any long computation starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cl_nas.augment import DSA, resolve_strategy
from cl_nas.cl import command as cl_command
from cl_nas.condense import available_methods, build_condenser
from cl_nas.data import DATA_ENV_VAR, DatasetUnavailableError, available_datasets, canonical_name, load_dataset
from cl_nas.models import build_model, model_spec_string
from cl_nas.nas import command as nas_command
from cl_nas.synthetic import SyntheticSet
from cl_nas.train import TrainConfig, evaluate_protocol
from cl_nas.utils import parse_params, resolve_bf16


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root", default=None, help=f"dataset folder (default: ${DATA_ENV_VAR}, else ~/.cache/cl_nas/data)"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default="convnet", help="model spec, e.g. convnet, resnet18, 'convnet:depth=2,norm=batch'"
    )
    p.add_argument("--epochs", type=int, default=300, help="training epochs (papers: 300 plain, 1000 with DSA)")
    p.add_argument("--eval-seeds", type=int, default=3, help="models trained from scratch, one per seed")
    p.add_argument(
        "--augment", default="none", help="'none', 'dsa' (the dataset's default DSA strategy) or a DSA strategy string"
    )
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="bf16 autocast (default: where the device has native bf16, e.g. AVX-512-BF16)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cl-nas", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("condense", help="condense a dataset into a synthetic set file")
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(available_datasets())}")
    p.add_argument("--method", required=True, help=f"one of {', '.join(available_methods())}")
    p.add_argument("--ipc", type=int, required=True, help="images per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option, repeatable (e.g. iterations=200)",
    )
    p.add_argument("--out", default=None, help="output .pt file (default: runs/<method>-<dataset>-ipc<N>-s<seed>.pt)")
    p.add_argument("--png", default=None, help="also write an image grid, one row per class")
    _add_common(p)

    p = sub.add_parser("evaluate", help="train fresh models on a synthetic set, report test accuracy")
    p.add_argument("synthetic", help="a .pt file written by `cl-nas condense`")
    _add_eval_args(p)
    _add_common(p)

    cl_command.add_parser(sub)
    nas_command.add_parser(sub)
    return parser


def _augment(spec: str, dataset: str) -> DSA | None:
    strategy = resolve_strategy(spec, dataset)
    return DSA(strategy) if strategy else None


def cmd_condense(args: argparse.Namespace) -> int:
    dataset = canonical_name(args.dataset)
    if args.ipc < 1:
        raise ValueError(f"--ipc must be a positive integer, got {args.ipc}")
    condenser = build_condenser(args.method, progress=True, device=args.device, **parse_params(args.param))
    splits = load_dataset(dataset, args.data_root)
    out = Path(args.out or f"runs/{condenser.name}-{dataset}-ipc{args.ipc}-s{args.seed}.pt")
    syn = condenser.condense(splits.train, args.ipc, seed=args.seed)
    syn.save(out)
    if args.png:
        syn.save_png(args.png)
    print(f"wrote {out} ({len(syn)} images, {syn.meta.wall_seconds:.1f} s)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    syn = SyntheticSet.load(args.synthetic)
    info = syn.info
    build_model(args.model, info.channels, info.num_classes, info.image_size)  # fail fast on a bad spec
    augment = _augment(args.augment, info.name)
    splits = load_dataset(info.name, args.data_root)
    syn.check_compatible(splits.info.channels, splits.info.image_size)
    config = TrainConfig(epochs=args.epochs, bf16=resolve_bf16(args.bf16, args.device))
    result = evaluate_protocol(
        syn.images,
        syn.labels,
        splits.test,
        model=args.model,
        n_seeds=args.eval_seeds,
        config=config,
        augment=augment,
        device=args.device,
        progress=True,
    )
    print(f"{syn.meta.method} {info.name} ipc={syn.meta.ipc} {model_spec_string(args.model)}: test accuracy {result}")
    return 0


def run_reporting_errors(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """Run a command; bad input (raised before any long computation) becomes one line and exit 2."""
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, DatasetUnavailableError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"condense": cmd_condense, "evaluate": cmd_evaluate}
    handlers.update(cl=cl_command.run, nas=nas_command.run)
    return run_reporting_errors(handlers[args.command], args, f"cl-nas {args.command}")


if __name__ == "__main__":
    sys.exit(main())
