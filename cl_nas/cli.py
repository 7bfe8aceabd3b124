"""Command-line interface: ``cl-nas`` / ``python -m cl_nas``.

Subcommands: ``condense`` (dataset -> synthetic set file), ``evaluate`` (synthetic set ->
test accuracy under the papers' protocol), ``cl`` (class-incremental learning with condensed
replay; with no options, the main job on the embedded ``digits``) and ``nas`` (proxy NAS).
Every argument, output path included, is validated before any long computation starts; bad input is
one line on stderr and exit status 2.

Long commands resume: rerunning a command that was killed continues where it stopped. ``condense``
checkpoints learned condensations under the cache root (``--cache``, else ``$CL_NAS_CACHE``, else
``~/.cache/cl_nas/synthetic``) and ``evaluate`` keeps every finished seed's accuracy there, both named by
what they compute and removed when the command completes; ``--no-checkpoint`` turns that off. Ctrl-C
and SIGTERM save progress and exit with 130 and 143, printing the command that resumes.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Callable, Sequence

from cl_nas.cl import command as cl_command
from cl_nas.condense import Condenser, SyntheticCache, available_methods, build_condenser
from cl_nas.condense.iterative import CondensationDiverged, IterativeCondenser
from cl_nas.data import (
    DATA_ENV_VAR,
    DatasetUnavailableError,
    ImageDataset,
    available_datasets,
    canonical_name,
    load_dataset,
)
from cl_nas.models import build_model, model_spec_string
from cl_nas.nas import command as nas_command
from cl_nas.protocols import (
    evaluate_resumably,
    evaluation_checkpoint,
    protocol_names,
    resolve_protocol,
    training_targets,
)
from cl_nas.synthetic import SyntheticSet
from cl_nas.utils import (
    Interrupted,
    check_positive_int,
    check_seed,
    check_writable,
    check_writable_folder,
    parse_params,
    resolve_bf16,
    resolve_device,
    terminate_as_interrupt,
)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root", default=None, help=f"dataset folder (default: ${DATA_ENV_VAR}, else ~/.cache/cl_nas/data)"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")


def _add_checkpoint_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--cache",
        default=None,
        help="cache root for checkpoints (default: $CL_NAS_CACHE, else ~/.cache/cl_nas/synthetic)",
    )
    p.add_argument("--no-checkpoint", action="store_true", help=f"do not keep {what}: a killed run starts again")


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default="convnet", help="model spec, e.g. convnet, resnet18, 'convnet:depth=2,norm=batch'"
    )
    p.add_argument(
        "--protocol", default="fast", choices=protocol_names(),
        help="evaluation protocol: epochs, augmentation and labels of a paper (see cl_nas.protocols; default: fast)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, default=None, help="override the protocol's training epochs")
    p.add_argument("--eval-seeds", type=int, default=3, help="models trained from scratch, one per seed")
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="bf16 autocast (default: where the device has native bf16, e.g. AVX-512-BF16)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cl-nas", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "condense",
        help="condense a dataset into a synthetic set file",
        description="Condense a dataset into a synthetic set file. Learned methods checkpoint under the cache root "
        "(every `checkpoint_every` iterations: 10 for dc and dsa, 50 for apm, 100 for dm; and on Ctrl-C or SIGTERM): "
        "rerunning a killed command resumes where it stopped.",
    )
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
    _add_checkpoint_args(p, "checkpoints of learned methods (dc, dsa, dm, apm)")
    _add_common(p)

    p = sub.add_parser(
        "evaluate",
        help="train fresh models on a synthetic set, report test accuracy",
        description="Train fresh models on a synthetic set and report their test accuracy. Each finished seed is "
        "kept under the cache root: rerunning a killed command trains only the seeds still missing.",
    )
    p.add_argument("synthetic", help="a .pt file written by `cl-nas condense`")
    _add_eval_args(p)
    _add_checkpoint_args(p, "the accuracies of finished seeds")
    _add_common(p)

    cl_command.add_parser(sub)
    nas_command.add_parser(sub)
    return parser


def cmd_condense(args: argparse.Namespace) -> int:
    dataset = canonical_name(args.dataset)
    check_positive_int("--ipc", args.ipc)
    check_seed("--seed", args.seed)
    params = parse_params(args.param)
    if "device" in params or "progress" in params:
        raise ValueError("give the device with --device, not --param (progress bars are always on here)")
    condenser = build_condenser(args.method, progress=True, device=args.device, **params)
    resumable = isinstance(condenser, IterativeCondenser)
    if args.no_checkpoint and not resumable:
        raise ValueError(f"--no-checkpoint applies to learned methods (dc, dsa, dm, apm); {args.method} keeps none")
    if args.no_checkpoint and "checkpoint_dir" in params:
        raise ValueError("--no-checkpoint and --param checkpoint_dir contradict each other: give one")
    if resumable and not args.no_checkpoint and condenser.checkpoint_dir is None:
        SyntheticCache(args.cache).prepare(condenser)  # checkpoints and APM's teachers where cached runs keep theirs
    if resumable and condenser.checkpoint_dir is not None:
        check_writable_folder(condenser.checkpoint_dir, "checkpoint folder")
    out = check_writable(args.out or f"runs/{condenser.name}-{dataset}-ipc{args.ipc}-s{args.seed}.pt", "--out")
    png = check_writable(args.png, "--png") if args.png else None
    if png is not None and png.resolve() == out.resolve():
        raise ValueError("--png and --out name the same file")
    splits = load_dataset(dataset, args.data_root)
    try:
        syn = condenser.condense(splits.train, args.ipc, seed=args.seed)
    except KeyboardInterrupt as err:
        kept = _condense_progress(condenser, splits.train, args.ipc, args.seed)
        raise Interrupted(getattr(err, "signum", signal.SIGINT), kept) from None
    syn.save(out)
    if png is not None:
        syn.save_png(png)
    print(f"wrote {out} ({len(syn)} images, {syn.meta.wall_seconds:.1f} s)")
    return 0


def _condense_progress(condenser: Condenser, train_set: ImageDataset, ipc: int, seed: int) -> str:
    """What an interrupted condensation kept, for the one-line message."""
    if not isinstance(condenser, IterativeCondenser) or condenser.checkpoint_dir is None:
        return "nothing was kept; rerun the same command to start again"
    if condenser.checkpointed_ == 0:
        return "stopped before the first iteration ended, nothing was kept; rerun the same command to start again"
    path = condenser.checkpoint_path(train_set, ipc, seed)
    return (
        f"{path} keeps iteration {condenser.checkpointed_} of {condenser.iterations}; rerun the same command to resume"
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    check_positive_int("--eval-seeds", args.eval_seeds)
    syn = SyntheticSet.load(args.synthetic)
    syn.check_dataset()  # metadata against the dataset it names: before that dataset loads
    info = syn.info
    build_model(args.model, info.channels, info.num_classes, info.image_size)  # fail fast on a bad spec
    settings = resolve_protocol(args.protocol, info.name, args.model, epochs=args.epochs)
    training_targets(syn, settings)  # a protocol that needs teacher logits fails here, before any data loads
    device = resolve_device(args.device)
    bf16 = resolve_bf16(args.bf16, device)
    kept = None
    if not args.no_checkpoint:
        folder = SyntheticCache(args.cache).evaluation_root
        kept = evaluation_checkpoint(syn, settings, args.model, bf16, device.type, folder)
        check_writable(kept, "evaluation checkpoint")
    splits = load_dataset(info.name, args.data_root)
    syn.check_source(splits.train)
    result = evaluate_resumably(
        syn, splits.test, settings, checkpoint=kept, model=args.model, n_seeds=args.eval_seeds, bf16=bf16,
        device=device, progress=True,
    )  # fmt: skip
    print(
        f"{syn.meta.method} {info.name} ipc={syn.meta.ipc} {model_spec_string(args.model)} "
        f"protocol={settings.protocol} ({settings.epochs} epochs, {settings.augment}, {settings.labels} labels): "
        f"test accuracy {result}"
    )
    return 0


def run_reporting_errors(
    handler: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str, command: str | None = None
) -> int:
    """Run a command and turn its failures into one line on stderr and an exit status, never a traceback:
    2 for bad input or an unusable file (raised before any long computation), 1 for a computation that failed
    (a condensation diverged) or a file that could not be written, 130 / 143 when Ctrl-C / SIGTERM stopped it
    (SIGTERM raises like Ctrl-C while the command runs, so progress is saved). ``command`` is the command
    line that resumes (default: this process's)."""
    command = command or shlex.join(["python", *sys.argv])
    try:
        with terminate_as_interrupt():
            return handler(args)
    except KeyboardInterrupt as err:
        signum = getattr(err, "signum", signal.SIGINT)
        detail = getattr(err, "detail", "") or "rerun the same command to resume"
        print(f"{prog}: interrupted by {signal.Signals(signum).name}; {detail}: {command}", file=sys.stderr)
        return 128 + signum
    except (ValueError, FileNotFoundError, DatasetUnavailableError) as err:
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (CondensationDiverged, OSError) as err:
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return 1


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"cannot write {str(err.filename)!r}: {err.strerror}"
    return " ".join(str(err).split())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    handlers = {"condense": cmd_condense, "evaluate": cmd_evaluate}
    handlers.update(cl=cl_command.run, nas=nas_command.run)
    return run_reporting_errors(handlers[args.command], args, f"cl-nas {args.command}", shlex.join(["cl-nas", *argv]))


if __name__ == "__main__":
    sys.exit(main())
