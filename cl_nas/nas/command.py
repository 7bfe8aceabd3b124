"""``cl-nas nas`` (and ``benchmarks/nas.py``): proxy NAS with Optuna and its correlation report.

One command does the whole study, resumably (rerun it to continue after any interruption):

1. for every seed, score ``--trials`` architectures on the proxy (``--proxy`` at ``--ipc`` images
   per class, ``--epochs`` epochs; condensed once into the synthetic cache) and on each control
   (``--controls``: random and herding subsets of the same size, early stopping on full data at the
   same budget), with the chosen sampler and pruner;
2. with ``--ground-truth``, train the ground-truth sample on the full training split (skipping the
   architectures already done);
3. with ``--gt-reseeds``, retrain the first ``--gt-reseed-archs`` of them with other training seeds:
   reported as the proxy ``gt-reseed``, the ground truth's own seed noise, hence the ceiling any
   proxy's agreement with it can reach;
4. unless ``--no-report``, print the correlation report and write it under ``--out``.

``--scores-from nas_scores.csv`` takes the ground truth from a table an earlier run wrote, instead
of training it, together with every proxy run of that table (at this run's budget) that this run does
not score again, whatever ``--controls`` says: so a committed ground truth (hours of training here)
serves later runs that add proxy seeds, and rewriting the tables keeps what they held.

Scale-out: give every worker the same command and a shared ``--storage postgresql://...``; they
split every study between them, and a killed worker's trial is retried by the others. Give all but
one of them ``--no-report``. Studies open in optuna-dashboard (see :mod:`cl_nas.nas.storage`).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import optuna

from cl_nas.condense import SyntheticCache
from cl_nas.data import DATA_ENV_VAR, DatasetInfo, available_datasets, canonical_name, load_dataset
from cl_nas.nas.ground_truth import GroundTruthConfig, open_ground_truth
from cl_nas.nas.objective import ArchScore
from cl_nas.nas.proxy import EARLY_STOP, TrainingData, check_proxy, file_data, proxy_data, proxy_names
from cl_nas.nas.queue import queue_status
from cl_nas.nas.report import ProxyRun, evaluate, format_report, read_scores_table, scatter_plot, write_tables
from cl_nas.nas.search import PRUNERS, SAMPLERS, Search, open_search
from cl_nas.nas.space import SearchSpace, convnet_space, parse_space_overrides
from cl_nas.nas.storage import DEFAULT_HEARTBEAT_SECONDS, DEFAULT_STORAGE, mask_url, open_storage
from cl_nas.utils import parse_params, resolve_bf16

RESEED = "gt-reseed"  # the ground truth retrained with another seed, reported like a proxy
HELP = "proxy NAS on condensed data with Optuna, and how well the proxy ranks architectures"


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``nas`` options to ``p``."""
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(available_datasets())}")
    p.add_argument("--proxy", default="dm", help=f"proxy training set: one of {', '.join(proxy_names())}")
    p.add_argument("--proxy-set", default=None, help="use this synthetic-set file (cl-nas condense) as the proxy")
    p.add_argument("--ipc", type=int, default=10, help="images per class of the proxy and its controls")
    p.add_argument("--epochs", type=int, default=20, help="proxy training epochs per candidate")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="proxy condenser option, repeatable"
    )
    p.add_argument(
        "--controls",
        nargs="*",
        default=["random", "herding", EARLY_STOP],
        help="control proxies at the same budget (none: --controls with no value)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="proxy seeds (condensation and training)")
    p.add_argument("--trials", type=int, default=48, help="candidates per proxy study")
    p.add_argument("--sampler", choices=SAMPLERS, default="grid", help="grid: a seeded subset of the grid")
    p.add_argument("--pruner", choices=PRUNERS, default="none")
    p.add_argument("--report-every", type=int, default=None, help="epochs between pruning reports")
    p.add_argument("--arch-seed", type=int, default=0, help="seed of the grid order (grid sampler, ground truth)")
    p.add_argument("--space", action="append", default=[], metavar="NAME=V1,V2", help="replace a dimension's choices")
    p.add_argument("--ground-truth", action="store_true", help="train (or resume) the full-data ground truth")
    p.add_argument("--gt-archs", type=int, default=GroundTruthConfig.n_arch, help="ground-truth architectures")
    p.add_argument("--gt-epochs", type=int, default=GroundTruthConfig.epochs, help="full-data epochs each")
    p.add_argument(
        "--gt-reseeds", type=int, nargs="+", default=[], metavar="SEED",
        help="retrain ground-truth architectures with these training seeds (reported as proxy gt-reseed)",
    )  # fmt: skip
    p.add_argument("--gt-reseed-archs", type=int, default=None, help="how many of them (default: --gt-archs)")
    p.add_argument(
        "--scores-from", default=None, metavar="CSV",
        help="read the ground truth, and the proxy runs of other seeds, from this nas_scores.csv instead of training",
    )  # fmt: skip
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="sqlite:///FILE or postgresql://USER:PW@HOST/DB")
    p.add_argument("--heartbeat-interval", type=int, default=DEFAULT_HEARTBEAT_SECONDS, help="seconds")
    p.add_argument("--grace-period", type=int, default=None, help="seconds before a silent trial is retried")
    p.add_argument("--cache", default=None, help="synthetic-set cache folder (default: $CL_NAS_CACHE)")
    p.add_argument("--out", default="benchmarks/results", help="folder for the CSV tables, report and plot")
    p.add_argument("--no-report", action="store_true", help="only work on the studies (extra workers)")
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="bf16 autocast (default: where the device has native bf16)",
    )  # fmt: skip
    p.add_argument(
        "--data-root", default=None, help=f"dataset folder (default: ${DATA_ENV_VAR}, else ~/.cache/cl_nas/data)"
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    return p


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nas`` on the CLI's subparsers."""
    return configure_parser(subparsers.add_parser("nas", help=HELP, description=HELP))


def _check_args(args: argparse.Namespace) -> None:
    """Reject bad numbers and names before anything is loaded or trained."""
    for flag in ("trials", "ipc", "epochs", "gt_archs", "gt_epochs"):
        value = getattr(args, flag)
        if value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be a positive integer, got {value}")
    if args.gt_reseed_archs is not None and not 1 <= args.gt_reseed_archs <= args.gt_archs:
        raise ValueError(
            f"--gt-reseed-archs must be between 1 and --gt-archs ({args.gt_archs}), got {args.gt_reseed_archs}"
        )
    if GroundTruthConfig.seed in args.gt_reseeds:
        raise ValueError(f"--gt-reseeds must differ from the ground truth's own training seed {GroundTruthConfig.seed}")
    if args.report_every is not None and args.report_every < 1:
        raise ValueError(f"--report-every must be a positive integer, got {args.report_every}")
    unknown = [p for p in [args.proxy, *args.controls] if p not in proxy_names()]
    if unknown:
        raise ValueError(f"unknown proxy {unknown[0]!r}; choose from {', '.join(proxy_names())}")
    if args.scores_from:
        if args.ground_truth:
            raise ValueError("--ground-truth trains the ground truth and --scores-from reads it from a table: pick one")
        if not Path(args.scores_from).is_file():
            raise FileNotFoundError(f"--scores-from {args.scores_from!r} does not exist")


def _space(args: argparse.Namespace) -> SearchSpace:
    space = convnet_space()
    return space.restrict(parse_space_overrides(args.space)) if args.space else space


def _progress(label: str, total: int):
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            return
        done = queue_status(study).done
        value = trial.value if trial.value is not None else trial.intermediate_values[max(trial.intermediate_values)]
        print(
            f"[{label}] {trial.state.name.lower()} {done}/{total}: {trial.user_attrs['arch']} "
            f"val {value:.2f} % (train {trial.user_attrs['train_seconds']:.2f} s)",
            flush=True,
        )

    return callback


def _work(search: Search, label: str, total: int) -> dict[str, ArchScore]:
    print(f"[{label}] study {search.name}: {search.status()}", flush=True)
    ran = search.run(
        callbacks=(_progress(label, total),),
        on_wait=lambda n: print(f"[{label}] waiting for {n} running trial(s) of other workers", flush=True),
    )
    if ran:
        print(f"[{label}] {search.status()}", flush=True)
    return search.scores()


def run(args: argparse.Namespace) -> int:
    """Run ``cl-nas nas``; returns the exit status. Bad input raises ``ValueError`` before any work."""
    _check_args(args)

    proxy_params = parse_params(args.param)
    if args.proxy_set and not Path(args.proxy_set).is_file():
        raise FileNotFoundError(f"--proxy-set {args.proxy_set!r} does not exist")
    dataset = canonical_name(args.dataset)
    space = _space(args)
    storage = open_storage(args.storage, heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress lines below replace Optuna's INFO log
    print(f"storage {mask_url(args.storage)}; space {space.describe()}", flush=True)
    splits = load_dataset(dataset, args.data_root)
    info = splits.info
    grid = space.grid(info.channels, info.image_size)
    print(f"{len(grid)} of {space.size} architectures fit {info.name} {info.image_shape} images", flush=True)
    for flag, n in (("--trials", args.trials if args.sampler == "grid" else 0), ("--gt-archs", args.gt_archs)):
        if n > len(grid):
            raise ValueError(f"{flag} {n} exceeds the {len(grid)} architectures that fit {info.name} images")
    names = [args.proxy] + [c for c in args.controls if c != args.proxy]
    recorded = _recorded_scores(args, dataset, space, info) if args.scores_from else None
    for name in names[1:] if args.proxy_set else names:  # before the first (possibly long) condensation
        params = proxy_params if name == args.proxy else {}
        check_proxy(name, splits.train, ipc=args.ipc, epochs=args.epochs, params=params, device=args.device)
    cache = SyntheticCache(args.cache)
    common = dict(bf16=resolve_bf16(args.bf16, args.device), device=args.device)

    runs: list[ProxyRun] = []
    for seed in args.seeds:
        for name in names:
            start = time.perf_counter()
            if name == args.proxy and args.proxy_set:
                data: TrainingData = file_data(args.proxy_set, splits.train, epochs=args.epochs)
            else:
                data = proxy_data(
                    name, splits.train, ipc=args.ipc, epochs=args.epochs, seed=seed, cache=cache,
                    params=proxy_params if name == args.proxy else {}, device=args.device,
                )  # fmt: skip
            label = f"{data.name} s{seed}"
            print(f"[{label}] {len(data.images)} training images ready in {time.perf_counter() - start:.1f} s")
            search = open_search(
                storage, space, data, splits.val, trials=args.trials, sampler=args.sampler, pruner=args.pruner,
                arch_seed=args.arch_seed, seed=seed, report_every=args.report_every, **common,
            )  # fmt: skip
            runs.append(ProxyRun(data.name, data.ipc, seed, data.epochs, _work(search, label, args.trials)))

    gt_config = GroundTruthConfig(args.gt_archs, args.gt_epochs, args.arch_seed)
    if recorded is not None:
        truth, recorded_runs = recorded
    else:
        ground_truth = open_ground_truth(storage, space, splits, gt_config, **common)
        truth = _work(ground_truth, "ground truth", args.gt_archs) if args.ground_truth else ground_truth.scores()
    reseed_archs = args.gt_reseed_archs or args.gt_archs
    for seed in args.gt_reseeds:
        config = dataclasses.replace(gt_config, n_arch=reseed_archs, seed=seed)
        search = open_ground_truth(storage, space, splits, config, **common)
        scores = _work(search, f"ground truth s{seed}", reseed_archs) if args.ground_truth else search.scores()
        if scores:
            runs.append(ProxyRun(RESEED, None, seed, args.gt_epochs, scores))
    if recorded is not None:
        # every recorded run not scored now, whatever --controls says: the tables written below replace the
        # ones read, so leaving a proxy out here would drop finished work from them
        done = {(r.name, r.seed) for r in runs}
        earlier = [r for r in recorded_runs if (r.name, r.seed) not in done]
        added = ", ".join(f"{r.name} s{r.seed}" for r in earlier) or "no proxy run"
        print(f"from {args.scores_from}: the ground truth and {added}", flush=True)
        runs = sorted([*runs, *earlier], key=lambda r: (r.name != args.proxy, r.name == RESEED, r.name, r.seed))
    if args.no_report:
        return 0
    return _report(Path(args.out), dataset, truth, runs)


def _recorded_scores(
    args: argparse.Namespace, dataset: str, space: SearchSpace, info: DatasetInfo
) -> tuple[dict[str, ArchScore], list[ProxyRun]]:
    """``--scores-from``: its ground truth, checked against this run's, and its runs at this run's budget."""
    truth, runs = read_scores_table(Path(args.scores_from), dataset)
    sample = {space.spec_string(p) for p in space.sample(args.gt_archs, args.arch_seed, info.channels, info.image_size)}
    if set(truth) != sample:
        raise ValueError(
            f"the ground truth in {args.scores_from} covers {len(truth)} architectures, not the {args.gt_archs} "
            f"that --gt-archs {args.gt_archs} --arch-seed {args.arch_seed} draw from this space: give the flags "
            "it was made with"
        )
    epochs = {s.epochs for s in truth.values()}
    if epochs != {args.gt_epochs}:
        raise ValueError(
            f"the ground truth in {args.scores_from} was trained for {sorted(epochs)} epoch(s), not --gt-epochs "
            f"{args.gt_epochs}: give the flag it was made with"
        )
    # earlystop trains one epoch on ipc x classes x --epochs samples: the table keeps its ipc, not its --epochs
    same_budget = [
        r for r in runs
        if r.name == RESEED or (r.ipc == args.ipc and r.epochs == (1 if r.name == EARLY_STOP else args.epochs))
    ]  # fmt: skip
    return truth, same_budget


def _report(out: Path, dataset: str, truth: dict[str, ArchScore], runs: list[ProxyRun]) -> int:
    shared = min(len(set(truth) & set(r.scores)) for r in runs)
    if shared < 2:
        print(
            f"\nonly {shared} architecture(s) have both proxy and ground-truth scores: no correlation report. "
            "Run with --ground-truth (and --sampler grid with as many --trials as --gt-archs)."
        )
        best = sorted(runs[0].scores.values(), key=lambda s: -s.value)[:5]
        print(f"best by {runs[0].name}: " + "; ".join(f"{s.arch} {s.value:.2f} %" for s in best))
        return 0
    results = evaluate(truth, runs)
    write_tables(out, dataset, truth, results)
    text = f"# NAS proxy correlation: {dataset}\n\n" + format_report(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nas_report.md").write_text(text)
    scatter_plot(out / "nas_scatter.png", truth, results)
    print("\n" + text)
    print(f"wrote {out}/nas_correlation.csv, nas_scores.csv, nas_report.md and nas_scatter.png")
    return 0
