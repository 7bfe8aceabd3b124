"""A proxy-NAS study: its settings (:class:`NASSettings`) and the run (:func:`run_study`), resumable.

One call does the whole study; calling it again with the same settings continues after any interruption:

1. for every seed in ``seeds``, score ``trials`` architectures on the proxy (``proxy`` at ``ipc`` images
   per class, ``epochs`` epochs; condensed once into the synthetic cache) and on each control
   (``controls``: random and herding subsets of the same size, early stopping on full data at the
   same budget, the zero-cost NASWOT score), with the chosen sampler and pruner;
2. with ``ground_truth``, train the ground truth (:mod:`cl_nas.nas.ground_truth`): the ``gt_archs``
   sampled architectures on the full training split for ``gt_epochs`` epochs with every training seed
   of ``gt_seeds``, after the successive-halving screens ``gt_rungs`` when given; resumable per
   architecture, seed and epoch (checkpoints in ``checkpoint_dir``); ``ground_truth_only`` does this
   step alone (no proxy study, no report);
3. with ``report``, print the correlation report and write it under ``out`` (see :mod:`cl_nas.nas.report`):
   what the ground truth is, whether its seed noise resolves its top 10, and every proxy's statistics.

Candidates train with the protocol's SGD at learning rate ``lr`` and the augmentation ``augment``
(``none``, ``dsa`` or a DSA strategy), proxies and controls alike. ``arch_offset`` moves the whole
study (proxies and ground truth) to the architectures after the first ``arch_offset`` of the seeded
shuffle: a tuning sample disjoint from the evaluation one.

``scores_from`` (``nas_scores.csv`` tables) takes the ground truth from the first table an earlier run
wrote, instead of training it, together with every proxy run of those tables (at this study's budget and
schedule) that this run does not score again, whatever ``controls`` says, re-scored against that ground
truth: so a committed ground truth (hours of training on a CPU) serves later runs that add proxy seeds,
committed proxy runs are re-scored against a new ground truth without training anything, and rewriting
the tables keeps what they held.

Scale-out: give every worker the same settings and a shared ``storage`` (``postgresql://...``); they
split every study between them, and a killed worker's trial is retried by the others. Give all but
one of them ``report=False``. Studies open in optuna-dashboard (see :mod:`cl_nas.nas.storage`).

Error messages name the settings by their ``cl-nas nas`` flags (``trials`` is ``--trials``).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from cl_nas.augment import resolve_strategy
from cl_nas.condense import SyntheticCache
from cl_nas.data import DatasetInfo, canonical_name, load_dataset
from cl_nas.models.space import SearchSpace, Value, convnet_space
from cl_nas.nas.cost import GroundTruthCost, estimate_cost
from cl_nas.nas.ground_truth import (
    DEFAULT_CHECKPOINTS,
    GroundTruth,
    GroundTruthConfig,
    Rung,
    Stage,
    open_ground_truth,
)
from cl_nas.nas.objective import ArchScore
from cl_nas.nas.proxy import EARLY_STOP, TrainingData, check_proxy, file_data, proxy_data, proxy_epochs, proxy_names
from cl_nas.nas.queue import queue_status
from cl_nas.nas.report import (
    ProxyResult,
    ProxyRun,
    evaluate,
    format_report,
    format_truth,
    read_scores_table,
    scatter_plot,
    write_tables,
)
from cl_nas.nas.search import PRUNERS, SAMPLERS, Search, open_search
from cl_nas.nas.storage import DEFAULT_HEARTBEAT_SECONDS, DEFAULT_STORAGE, mask_url, open_storage
from cl_nas.nas.zero_cost import NASWOT
from cl_nas.registry import unknown_name_message
from cl_nas.train import TrainConfig
from cl_nas.utils import check_positive_int, check_writable_folder, resolve_bf16


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class NASSettings:
    """Everything one proxy-NAS study depends on; validated on construction (one-line ``ValueError``).

    ``space`` replaces dimensions' choices of the ConvNet space (``{"depth": [1, 2]}``); ``proxy_params``
    configure the proxy's condenser; ``proxy_set`` is a synthetic-set file used as the proxy instead.
    """

    dataset: str
    proxy: str = "dm"
    proxy_set: str | None = None
    ipc: int = 10
    epochs: int = 20
    lr: float = TrainConfig.lr
    augment: str = "none"
    proxy_params: Mapping[str, Any] = field(default_factory=dict)
    controls: tuple[str, ...] = ("random", "herding", EARLY_STOP, NASWOT)
    seeds: tuple[int, ...] = (0,)
    trials: int = 48
    sampler: str = "grid"
    pruner: str = "none"
    report_every: int | None = None
    arch_seed: int = 0
    arch_offset: int = 0
    space: Mapping[str, Sequence[Value]] = field(default_factory=dict)
    ground_truth: bool = False
    ground_truth_only: bool = False  # train (or resume) the ground truth alone: no proxy study, no report
    gt_archs: int = GroundTruthConfig.n_arch
    gt_epochs: int = GroundTruthConfig.epochs
    gt_seeds: tuple[int, ...] = GroundTruthConfig.seeds
    gt_rungs: tuple[str, ...] = ()  # successive halving: EPOCHSxSEEDS:KEEP screens before the full fidelity
    checkpoint_dir: str = DEFAULT_CHECKPOINTS
    scores_from: tuple[str, ...] = ()  # nas_scores.csv tables: the ground truth from the first, runs from all
    storage: str = DEFAULT_STORAGE
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS
    grace_period: int | None = None
    cache: str | None = None  # synthetic-set cache folder (None: $CL_NAS_CACHE)
    out: str = "runs/nas"  # benchmarks/nas.py: benchmarks/results
    report: bool = True
    bf16: bool | None = None  # None: where the device has native bf16
    data_root: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.scores_from, str):
            object.__setattr__(self, "scores_from", (self.scores_from,))
        for name in ("controls", "seeds", "gt_seeds", "gt_rungs", "scores_from"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        object.__setattr__(self, "dataset", canonical_name(self.dataset))
        for name in ("trials", "ipc", "epochs", "gt_archs", "gt_epochs"):
            check_positive_int(_flag(name), getattr(self, name))
        check_positive_int(_flag("report_every"), self.report_every, optional=True)
        if not self.seeds:
            raise ValueError("--seeds needs at least one seed")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"--lr must be a positive number, got {self.lr}")
        if self.arch_offset < 0:
            raise ValueError(f"--arch-offset must be >= 0, got {self.arch_offset}")
        resolve_strategy(self.augment, self.dataset)  # an unknown DSA operation fails here
        try:
            self.ground_truth_config  # noqa: B018  (validates the seeds and rungs)
        except ValueError as err:
            raise ValueError(f"--gt-seeds/--gt-rungs: {err}") from None
        unknown = [p for p in [self.proxy, *self.controls] if p not in proxy_names()]
        if unknown:
            raise ValueError(unknown_name_message("proxy", unknown[0], proxy_names()))
        for name, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}")
        if self.scores_from and (self.ground_truth or self.ground_truth_only):
            raise ValueError("--ground-truth trains the ground truth and --scores-from reads it from a table: pick one")
        self.search_space()  # unknown dimensions fail here

    def search_space(self) -> SearchSpace:
        """The ConvNet space with :attr:`space`'s choices."""
        space = convnet_space()
        return space.restrict(self.space) if self.space else space

    @property
    def proxies(self) -> list[str]:
        """The proxy, then the controls that differ from it."""
        return [self.proxy] + [c for c in self.controls if c != self.proxy]

    @property
    def ground_truth_config(self) -> GroundTruthConfig:
        rungs = tuple(Rung.parse(r) for r in self.gt_rungs)
        return GroundTruthConfig(self.gt_archs, self.gt_epochs, self.gt_seeds, self.arch_seed, self.arch_offset, rungs)


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


def run_study(settings: NASSettings) -> list[ProxyResult]:
    """Run (or resume) the study; return the report's results (empty when no report was made).

    Bad input raises ``ValueError`` (``FileNotFoundError`` for a missing file) before any work.
    """
    s = settings
    for name, paths in (("scores_from", s.scores_from), ("proxy_set", [s.proxy_set] if s.proxy_set else [])):
        for path in paths:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{_flag(name)} {path!r} does not exist")
    if s.report:
        check_writable_folder(s.out, "--out")  # the report is written last: an unusable folder fails first
    space = s.search_space()
    storage = open_storage(s.storage, heartbeat_interval=s.heartbeat_interval, grace_period=s.grace_period)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress lines below replace Optuna's INFO log
    print(f"storage {mask_url(s.storage)}; space {space.describe()}", flush=True)
    splits = load_dataset(s.dataset, s.data_root)
    info = splits.info
    grid = space.grid(info.channels, info.image_size)
    print(f"{len(grid)} of {space.size} architectures fit {info.name} {info.image_shape} images", flush=True)
    for flag, n in (("--trials", s.trials if s.sampler == "grid" else 0), ("--gt-archs", s.gt_archs)):
        offset = f" after --arch-offset {s.arch_offset}" if s.arch_offset else ""
        if s.arch_offset + n > len(grid):
            raise ValueError(f"{flag} {n}{offset} exceeds the {len(grid)} architectures that fit {info.name} images")
    common = dict(bf16=resolve_bf16(s.bf16, s.device), device=s.device)
    if s.ground_truth_only:
        config = s.ground_truth_config
        print(f"ground truth: {config.describe()}", flush=True)
        work_ground_truth(open_ground_truth(storage, space, splits, config, checkpoint_dir=s.checkpoint_dir, **common))
        return []
    recorded = recorded_scores(s, space, info) if s.scores_from else None
    for name in s.proxies[1:] if s.proxy_set else s.proxies:  # before the first (possibly long) condensation
        params = s.proxy_params if name == s.proxy else {}
        check_proxy(name, splits.train, ipc=s.ipc, epochs=s.epochs, params=params, device=s.device)
    cache = SyntheticCache(s.cache)

    runs: list[ProxyRun] = []
    for seed in s.seeds:
        for name in s.proxies:
            start = time.perf_counter()
            if name == s.proxy and s.proxy_set:
                data: TrainingData = file_data(s.proxy_set, splits.train, epochs=s.epochs)
            else:
                data = proxy_data(
                    name, splits.train, ipc=s.ipc, epochs=s.epochs, seed=seed, cache=cache,
                    params=s.proxy_params if name == s.proxy else {}, device=s.device,
                )  # fmt: skip
            label = f"{data.name} s{seed}"
            print(f"[{label}] {len(data.images)} training images ready in {time.perf_counter() - start:.1f} s")
            search = open_search(
                storage, space, data, splits.val, trials=s.trials, sampler=s.sampler, pruner=s.pruner,
                arch_seed=s.arch_seed, arch_offset=s.arch_offset, seed=seed, report_every=s.report_every,
                lr=s.lr, augment=s.augment, **common,
            )  # fmt: skip
            scores = _work(search, label, s.trials)
            runs.append(ProxyRun(data.name, data.ipc, seed, data.epochs, scores, s.lr, search.objective.augment))

    if recorded is not None:
        truth, recorded_runs = recorded
    elif not s.ground_truth and not s.report:
        return []  # an extra proxy worker: nothing to train, nothing to report
    else:
        config = s.ground_truth_config
        ground_truth = open_ground_truth(storage, space, splits, config, checkpoint_dir=s.checkpoint_dir, **common)
        print(f"ground truth: {config.describe()}", flush=True)
        if s.ground_truth:
            work_ground_truth(ground_truth)
        truth = ground_truth.scores()
        if truth and not ground_truth.complete:
            print("ground truth: not every stage is done yet; the report uses the stages that are", flush=True)
    if recorded is not None:
        # every recorded run not scored now, whatever the controls: the tables written below replace the
        # ones read, so leaving a proxy out here would drop finished work from them
        done = {(r.name, r.seed) for r in runs}
        earlier = [r for r in recorded_runs if (r.name, r.seed) not in done]
        added = ", ".join(f"{r.name} s{r.seed}" for r in earlier) or "no proxy run"
        print(f"from {', '.join(s.scores_from)}: the ground truth and {added}", flush=True)
        runs = sorted([*runs, *earlier], key=lambda r: (r.name != s.proxy, r.name, r.seed))
    if not s.report:
        return []
    return _report(Path(s.out), s.dataset, truth, runs)


def ground_truth_cost(settings: NASSettings, budget_seconds: float = 60.0) -> GroundTruthCost:
    """What the ground truth of ``settings`` would cost here, stage by stage (:func:`cl_nas.nas.cost.estimate_cost`:
    one epoch of its cheapest and its costliest architecture timed, at most ``budget_seconds`` each)."""
    s = settings
    splits = load_dataset(s.dataset, s.data_root)
    config = s.ground_truth_config
    specs = list(config.sample(s.search_space(), splits.info))
    bf16 = resolve_bf16(s.bf16, s.device)
    return estimate_cost(specs, splits.train, config.fidelities(), budget_seconds=budget_seconds, bf16=bf16,
                         device=s.device)  # fmt: skip


def work_ground_truth(ground_truth: GroundTruth) -> None:
    """Work on the ground truth until every stage is done, printing each stage and each finished slot."""

    def on_stage(stage: Stage, study: optuna.Study) -> None:
        label = f"ground truth {stage.index + 1}/{len(ground_truth.config.rungs) + 1}"
        total = len(stage.archs) * len(stage.seeds)
        print(
            f"[{label}] {len(stage.archs)} architectures x {stage.epochs} epochs x seeds {list(stage.seeds)}: "
            f"study {study.study_name}: {queue_status(study)}",
            flush=True,
        )
        progress.update(label=label, total=total)

    progress = {"label": "ground truth", "total": 0}

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        _progress(progress["label"], progress["total"])(study, trial)

    ground_truth.run(
        callbacks=(callback,),
        on_wait=lambda n: print(f"[ground truth] waiting for {n} running trial(s) of other workers", flush=True),
        on_stage=on_stage,
    )


def recorded_scores(
    settings: NASSettings, space: SearchSpace, info: DatasetInfo
) -> tuple[dict[str, ArchScore], list[ProxyRun]]:
    """The ground truth of ``settings.scores_from``'s first table, checked against the settings', and the proxy
    runs of all its tables at this budget and schedule (the first table's run of a proxy and seed wins).

    Raises ``ValueError`` when the table's ground truth is not the sample ``gt_archs``, ``arch_seed`` and
    ``arch_offset`` draw from ``space`` for ``info``'s images, or was resolved at other fidelities than
    ``gt_epochs``, ``gt_seeds`` and ``gt_rungs`` give, or when a run of another table did not score
    every architecture of that ground truth.
    """
    s = settings
    source = s.scores_from[0]
    truth, runs = read_scores_table(Path(source), s.dataset)
    for other in s.scores_from[1:]:
        for run in read_scores_table(Path(other), s.dataset)[1]:
            if not set(truth) <= set(run.scores):
                raise ValueError(
                    f"{other}: {run.name} seed {run.seed} scored {len(set(truth) & set(run.scores))} of the "
                    f"{len(truth)} architectures of the ground truth in {source}: it cannot be compared with it"
                )
            runs.append(run)
    config = s.ground_truth_config
    if set(truth) != set(config.sample(space, info)):
        raise ValueError(
            f"the ground truth in {source} covers {len(truth)} architectures, not the {s.gt_archs} "
            f"that --gt-archs {s.gt_archs} --arch-seed {s.arch_seed} --arch-offset {s.arch_offset} draw from this "
            "space: give the flags it was made with"
        )
    found = sorted(collections.Counter(score.fidelity for score in truth.values()).items(), reverse=True)
    stages = [((e, n), size) for size, e, n in config.fidelities()]
    expected = sorted(((f, a - b) for (f, a), (_, b) in zip(stages, [*stages[1:], ((0, 0), 0)], strict=True)),
                      reverse=True)  # fmt: skip
    if found != expected:
        raise ValueError(
            f"the ground truth in {source} holds {_fidelities(found)}, not the {_fidelities(expected)} "
            f"of --gt-epochs {s.gt_epochs}, --gt-seeds and --gt-rungs: give the flags it was made with"
        )
    # a proxy's table rows keep its ipc and the epochs it trained (earlystop: 1, zero-cost: 0)
    augment = resolve_strategy(s.augment, s.dataset)
    same_budget: dict[tuple[str, int], ProxyRun] = {}
    for r in runs:
        if (r.ipc, r.epochs, r.lr, r.augment) == (s.ipc, proxy_epochs(r.name, s.epochs), s.lr, augment):
            same_budget.setdefault((r.name, r.seed), r)
    return truth, list(same_budget.values())


def _fidelities(counts: Sequence[tuple[tuple[int, int], int]]) -> str:
    return ", ".join(f"{n} architectures at {e} epoch(s) x {k} seed(s)" for (e, k), n in counts)


def _report(out: Path, dataset: str, truth: dict[str, ArchScore], runs: list[ProxyRun]) -> list[ProxyResult]:
    shared = min(len(set(truth) & set(r.scores)) for r in runs)
    if shared < 2:
        print(
            f"\nonly {shared} architecture(s) have both proxy and ground-truth scores: no correlation report. "
            "Run with --ground-truth (and --sampler grid with as many --trials as --gt-archs)."
        )
        best = sorted(runs[0].scores.values(), key=lambda s: -s.value)[:5]
        print(f"best by {runs[0].name}: " + "; ".join(f"{s.arch} {s.value:.2f} %" for s in best))
        return []
    results = evaluate(truth, runs)
    write_tables(out, dataset, truth, results)
    text = f"# NAS proxy correlation: {dataset}\n\n{format_truth(truth)}\n" + format_report(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nas_report.md").write_text(text)
    scatter_plot(out / "nas_scatter.png", truth, results)
    print("\n" + text)
    print(f"wrote {out}/nas_correlation.csv, nas_scores.csv, nas_report.md and nas_scatter.png")
    return results
