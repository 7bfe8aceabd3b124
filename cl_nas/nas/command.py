"""``cl-nas nas`` (and ``benchmarks/nas.py``): the flags of a proxy-NAS study, mapped onto :class:`NASSettings`.

What the study does, step by step, and how workers share it: :mod:`cl_nas.nas.study`. Every flag is
the :class:`~cl_nas.nas.study.NASSettings` field of the same name (``--no-report`` is ``report=False``,
``--param`` fills ``proxy_params``, ``--space NAME=V1,V2`` fills ``space``). Rerunning a command resumes it.
"""

from __future__ import annotations

import argparse
import dataclasses

from cl_nas.data import DATA_ENV_VAR, available_datasets
from cl_nas.models.space import parse_space_overrides
from cl_nas.nas.proxy import proxy_names
from cl_nas.nas.search import PRUNERS, SAMPLERS
from cl_nas.nas.study import NASSettings, run_study
from cl_nas.utils import parse_params

HELP = "proxy NAS on condensed data with Optuna, and how well the proxy ranks architectures"
DESCRIPTION = f"{HELP}; rerunning the same command resumes the study"
_DEFAULT = {f.name: f.default for f in dataclasses.fields(NASSettings) if f.default is not dataclasses.MISSING}


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``nas`` options to ``p``."""
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(available_datasets())}")
    p.add_argument("--proxy", default=_DEFAULT["proxy"], help=f"proxy training set: one of {', '.join(proxy_names())}")
    p.add_argument("--proxy-set", default=None, help="use this synthetic-set file (cl-nas condense) as the proxy")
    p.add_argument("--ipc", type=int, default=_DEFAULT["ipc"], help="images per class of the proxy and its controls")
    p.add_argument("--epochs", type=int, default=_DEFAULT["epochs"], help="proxy training epochs per candidate")
    p.add_argument("--lr", type=float, default=_DEFAULT["lr"], help="proxy training learning rate (SGD)")
    p.add_argument(
        "--augment", default=_DEFAULT["augment"], help="proxy training augmentation: none, dsa or a DSA strategy"
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="proxy condenser option, repeatable"
    )
    p.add_argument(
        "--controls",
        nargs="*",
        default=list(_DEFAULT["controls"]),
        help="control proxies at the same budget (none: --controls with no value)",
    )
    p.add_argument(
        "--seeds", type=int, nargs="+", default=list(_DEFAULT["seeds"]), help="proxy seeds (condensation and training)"
    )
    p.add_argument("--trials", type=int, default=_DEFAULT["trials"], help="candidates per proxy study")
    p.add_argument("--sampler", choices=SAMPLERS, default=_DEFAULT["sampler"], help="grid: a seeded subset of the grid")
    p.add_argument("--pruner", choices=PRUNERS, default=_DEFAULT["pruner"])
    p.add_argument("--report-every", type=int, default=None, help="epochs between pruning reports")
    p.add_argument(
        "--arch-seed",
        type=int,
        default=_DEFAULT["arch_seed"],
        help="seed of the grid order (grid sampler, ground truth)",
    )
    p.add_argument(
        "--arch-offset", type=int, default=_DEFAULT["arch_offset"],
        help="skip this many architectures of the grid order (a tuning sample disjoint from the first ones)",
    )  # fmt: skip
    p.add_argument("--space", action="append", default=[], metavar="NAME=V1,V2", help="replace a dimension's choices")
    p.add_argument("--ground-truth", action="store_true", help="train (or resume) the full-data ground truth")
    p.add_argument(
        "--ground-truth-only", action="store_true", help="train (or resume) the ground truth alone: no proxy, no report"
    )
    p.add_argument("--gt-archs", type=int, default=_DEFAULT["gt_archs"], help="ground-truth architectures")
    p.add_argument("--gt-epochs", type=int, default=_DEFAULT["gt_epochs"], help="full-data epochs each")
    p.add_argument(
        "--gt-seeds", type=int, nargs="+", default=list(_DEFAULT["gt_seeds"]), metavar="SEED",
        help="the ground truth's training seeds (its value is the mean over them)",
    )  # fmt: skip
    p.add_argument(
        "--gt-rungs", nargs="*", default=[], metavar="EPOCHSxSEEDS:KEEP",
        help="successive halving before the full fidelity, e.g. 1x1:24 (1 epoch, 1 seed, keep the best 24)",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint-dir", default=_DEFAULT["checkpoint_dir"],
        help="where ground-truth trials checkpoint every epoch (shared by the workers)",
    )  # fmt: skip
    p.add_argument(
        "--scores-from", nargs="+", default=[], metavar="CSV",
        help="read the ground truth from this nas_scores.csv instead of training it, and the proxy runs of other "
        "seeds from it and the further tables given (re-scored against that ground truth)",
    )  # fmt: skip
    p.add_argument("--storage", default=_DEFAULT["storage"], help="sqlite:///FILE or postgresql://USER:PW@HOST/DB")
    p.add_argument("--heartbeat-interval", type=int, default=_DEFAULT["heartbeat_interval"], help="seconds")
    p.add_argument("--grace-period", type=int, default=None, help="seconds before a silent trial is retried")
    p.add_argument(
        "--cache",
        default=None,
        help="synthetic-set cache folder (default: $CL_NAS_CACHE, else ~/.cache/cl_nas/synthetic)",
    )
    p.add_argument(
        "--out", default=_DEFAULT["out"], help="folder for the CSV tables, report and plot (default: %(default)s)"
    )
    p.add_argument("--no-report", action="store_true", help="only work on the studies (extra workers)")
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="bf16 autocast (default: where the device has native bf16)",
    )  # fmt: skip
    p.add_argument(
        "--data-root", default=None, help=f"dataset folder (default: ${DATA_ENV_VAR}, else ~/.cache/cl_nas/data)"
    )
    p.add_argument("--device", default=_DEFAULT["device"], help="cpu, cuda, cuda:N or auto (default)")
    return p


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nas`` on the CLI's subparsers."""
    return configure_parser(subparsers.add_parser("nas", help=HELP, description=DESCRIPTION))


def settings_from_args(args: argparse.Namespace) -> NASSettings:
    """The study the parsed flags describe (validated: bad values raise ``ValueError``)."""
    return NASSettings(
        dataset=args.dataset, proxy=args.proxy, proxy_set=args.proxy_set, ipc=args.ipc, epochs=args.epochs,
        lr=args.lr, augment=args.augment, proxy_params=parse_params(args.param), controls=args.controls,
        seeds=args.seeds, trials=args.trials, sampler=args.sampler, pruner=args.pruner,
        report_every=args.report_every, arch_seed=args.arch_seed, arch_offset=args.arch_offset,
        space=parse_space_overrides(args.space), ground_truth=args.ground_truth,
        ground_truth_only=args.ground_truth_only, gt_archs=args.gt_archs,
        gt_epochs=args.gt_epochs, gt_seeds=args.gt_seeds, gt_rungs=args.gt_rungs,
        checkpoint_dir=args.checkpoint_dir, scores_from=args.scores_from, storage=args.storage,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period, cache=args.cache, out=args.out, report=not args.no_report, bf16=args.bf16,
        data_root=args.data_root, device=args.device,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run ``cl-nas nas``; returns the exit status. Bad input raises ``ValueError`` before any work."""
    run_study(settings_from_args(args))
    return 0
