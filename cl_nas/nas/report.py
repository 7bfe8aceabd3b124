"""The correlation report: proxy runs against the ground truth, as tables, a text summary and a plot.

Files (under the output folder, rows keyed so that a rerun replaces its own rows):

* ``nas_correlation.csv``: one row per proxy and seed: ``dataset, proxy, ipc, n_arch, spearman,
  kendall, spearman_top10, spearman_top20, top1_regret, pick_resolved, speedup, seed, machine, epochs, lr,
  augment, ground_truth`` (the last says what the ground truth was: :func:`describe_scores`);
* ``nas_scores.csv``: one row per proxy, seed and architecture, proxy and full-data accuracy side
  by side with their training times; ``full_epochs``, ``full_seeds`` and ``full_seed_accs`` (each
  training seed's accuracy, ``;``-separated) say at which fidelity the ground truth resolved it;
* ``nas_report.md``: what the ground truth is and whether it resolves its top 10
  (:func:`~cl_nas.nas.ground_truth.resolution`), then every statistic as mean ± std over seeds (also printed);
* ``nas_scatter.png``: proxy vs full-data validation accuracy, one panel per proxy.

``speedup`` is the ground truth's total training time (every seed and stage) over the proxy's, summed
over the shared architectures (validation passes excluded on both sides; they are in ``nas_scores.csv``). It is a
ratio of two wall times, so it is left empty (n/a) unless every one of those trials, proxy and
ground truth, was timed on one machine. Each trial records its own (see
:mod:`cl_nas.nas.objective`), so a study resumed or shared across machines is told apart:
``machine`` and ``full_machine`` in ``nas_scores.csv`` say where each side of a row was timed, and
``machine`` in ``nas_correlation.csv`` every machine that timed the run.

:func:`read_scores_table` reads ``nas_scores.csv`` back: the ground truth is the expensive part of
a study (hours on a CPU), and a committed table lets a later run add proxy seeds against it without
retraining it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from cl_nas.condense.plots import save_figure
from cl_nas.nas.correlation import Correlation, correlate
from cl_nas.nas.ground_truth import describe_scores, resolution
from cl_nas.nas.objective import ArchScore
from cl_nas.results import ResultsTable
from cl_nas.train import TrainConfig
from cl_nas.utils import mean_std

CORRELATION_COLUMNS = [
    "dataset", "proxy", "ipc", "n_arch", "spearman", "kendall", "spearman_top10", "spearman_top20", "top1_regret",
    "pick_resolved", "speedup", "seed", "machine", "epochs", "lr", "augment", "ground_truth",
]  # fmt: skip
SCORE_COLUMNS = [
    "dataset", "proxy", "ipc", "seed", "arch", "proxy_acc", "full_acc", "pruned", "proxy_epochs", "full_epochs",
    "proxy_train_seconds", "proxy_eval_seconds", "full_train_seconds", "machine", "full_machine", "full_seeds",
    "full_seed_accs", "proxy_lr", "proxy_augment",
]  # fmt: skip
# tables written before multi-seed ground truths and proxy schedules lack them (read as one seed, the default schedule)
OPTIONAL_SCORE_COLUMNS = ("full_seeds", "full_seed_accs", "proxy_lr", "proxy_augment")


@dataclass(frozen=True)
class ProxyRun:
    """The scores of one proxy (``name``, e.g. ``dm`` or ``earlystop``) with one seed."""

    name: str
    ipc: int | None
    seed: int
    epochs: int
    scores: dict[str, ArchScore]
    lr: float = TrainConfig.lr
    augment: str | None = None

    @property
    def machine(self) -> str:
        """Every machine that timed its trials, joined by `` + `` (``unknown`` for a trial that recorded none)."""
        return " + ".join(sorted({s.machine or "unknown" for s in self.scores.values()}))


@dataclass(frozen=True)
class ProxyResult:
    run: ProxyRun
    correlation: Correlation
    speedup: float


def speedup(truth: dict[str, ArchScore], proxy: dict[str, ArchScore]) -> float:
    """Ground-truth training seconds over proxy training seconds, summed over the shared architectures;
    NaN unless all those trials were timed on one known machine (a ratio of wall times across machines
    measures the machines)."""
    common = set(truth) & set(proxy)
    machines = {truth[a].machine for a in common} | {proxy[a].machine for a in common}
    if len(machines) != 1 or "" in machines:
        return math.nan
    spent = sum(proxy[a].train_seconds for a in common)
    return sum(truth[a].train_seconds for a in common) / spent if spent > 0 else math.nan


def evaluate(truth: dict[str, ArchScore], runs: Sequence[ProxyRun]) -> list[ProxyResult]:
    """Correlate every run with the ground truth (ranked by fidelity, then value), and its :func:`speedup`."""
    values = {a: s.value for a, s in truth.items()}
    tiers = {a: s.fidelity for a, s in truth.items()}
    return [
        ProxyResult(
            run, correlate({a: s.value for a, s in run.scores.items()}, values, tiers), speedup(truth, run.scores)
        )
        for run in runs
    ]


def write_tables(out: Path, dataset: str, truth: dict[str, ArchScore], results: Sequence[ProxyResult]) -> None:
    """Append (or replace) this run's rows in ``nas_correlation.csv`` and ``nas_scores.csv``."""
    correlations = ResultsTable(out / "nas_correlation.csv", CORRELATION_COLUMNS, ["dataset", "proxy", "ipc", "seed"])
    scores = ResultsTable(out / "nas_scores.csv", SCORE_COLUMNS, ["dataset", "proxy", "ipc", "seed", "arch"])
    described = describe_scores(truth)
    for result in results:
        run, c = result.run, result.correlation
        key = {"dataset": dataset, "proxy": run.name, "ipc": run.ipc, "seed": run.seed}
        correlations.append(
            {
                **key,
                "n_arch": c.n_arch,
                "spearman": round(c.spearman, 4),
                "kendall": round(c.kendall, 4),
                "spearman_top10": round(c.spearman_top10, 4),
                "spearman_top20": round(c.spearman_top20, 4),
                "top1_regret": round(c.top1_regret, 2),
                "pick_resolved": c.pick_resolved,
                "speedup": round(result.speedup, 1),
                "machine": run.machine,
                "epochs": run.epochs,
                "lr": run.lr,
                "augment": run.augment or "none",
                "ground_truth": described,
            }
        )
        for arch in sorted(set(run.scores) & set(truth)):
            p, t = run.scores[arch], truth[arch]
            scores.append(
                {
                    **key,
                    "arch": arch,
                    "proxy_acc": round(p.value, 2),
                    "full_acc": round(t.value, 2),
                    "pruned": p.pruned,
                    "proxy_epochs": p.epochs,
                    "full_epochs": t.epochs,
                    "proxy_train_seconds": round(p.train_seconds, 2),
                    "proxy_eval_seconds": round(p.eval_seconds, 2),
                    "full_train_seconds": round(t.train_seconds, 1),
                    "machine": p.machine,
                    "full_machine": t.machine,
                    "full_seeds": t.fidelity[1],
                    "full_seed_accs": ";".join(f"{v:.2f}" for v in t.seed_values),
                    "proxy_lr": run.lr,
                    "proxy_augment": run.augment or "none",
                }
            )


def read_scores_table(path: Path, dataset: str) -> tuple[dict[str, ArchScore], list[ProxyRun]]:
    """The ground truth and the proxy runs recorded for ``dataset`` in a ``nas_scores.csv`` (inverse of
    :func:`write_tables`), each score with the machine that timed it.

    Raises ``ValueError`` for a table without the score columns, without rows for ``dataset``, or
    whose rows give one architecture two different ground-truth results (accuracy, epochs or
    machine). The scores read back carry no trial parameters, nor the ground truth's validation
    times (the table keeps neither).
    """
    import pandas as pd

    table = pd.read_csv(path)
    missing = [c for c in SCORE_COLUMNS if c not in table.columns and c not in OPTIONAL_SCORE_COLUMNS]
    if missing:
        raise ValueError(f"{path} is not a nas_scores.csv table: it lacks the columns {', '.join(missing)}")
    table = table[table["dataset"] == dataset]
    if table.empty:
        raise ValueError(f"{path} has no scores for dataset {dataset!r}; run the ground truth for it first")
    table = table.fillna({"machine": "", "full_machine": ""})
    defaults = {"full_seed_accs": "", "proxy_lr": TrainConfig.lr, "proxy_augment": "none"}
    table = table.assign(**{c: table[c].fillna(v) if c in table else v for c, v in defaults.items()})
    table = table.assign(full_seed_accs=table.full_seed_accs.astype(str))
    truth: dict[str, ArchScore] = {}
    runs: dict[tuple[str, int | None, int, float, str], dict[str, ArchScore]] = defaultdict(dict)
    for row in table.itertuples(index=False):
        seed_values = tuple(float(v) for v in row.full_seed_accs.split(";") if v)
        score = ArchScore(row.arch, {}, float(row.full_acc), False, int(row.full_epochs), float(row.full_train_seconds),
                          math.nan, -1, str(row.full_machine), seed_values)  # fmt: skip
        known = truth.setdefault(row.arch, score)
        if (known.value, known.fidelity, known.machine) != (score.value, score.fidelity, score.machine):
            raise ValueError(
                f"{path} gives {row.arch} two ground-truth results ({known.value} % after {known.epochs} epochs "
                f"on {known.machine!r}, {score.value} % after {score.epochs} on {score.machine!r}): it mixes "
                "ground truths; keep one"
            )
        key = (row.proxy, None if pd.isna(row.ipc) else int(row.ipc), int(row.seed), float(row.proxy_lr),
               str(row.proxy_augment))  # fmt: skip
        runs[key][row.arch] = ArchScore(
            row.arch, {}, float(row.proxy_acc), bool(row.pruned), int(row.proxy_epochs),
            float(row.proxy_train_seconds), float(row.proxy_eval_seconds), -1, str(row.machine),
        )  # fmt: skip
    return truth, [
        ProxyRun(name, ipc, seed, max(s.epochs for s in scores.values()), scores, lr, None if aug == "none" else aug)
        for (name, ipc, seed, lr, aug), scores in runs.items()
    ]


def _label(run: ProxyRun) -> str:
    budget = f"ipc {run.ipc}, " if run.ipc else ""
    schedule = (f", lr {run.lr:g}" if run.lr != TrainConfig.lr else "") + (f", {run.augment}" if run.augment else "")
    return f"{run.name} ({budget}{run.epochs} ep{schedule})"


STATS = [f.name for f in fields(Correlation) if f.name not in ("n_arch", "pick_resolved")] + ["speedup"]


def _by_label(results: Sequence[ProxyResult]) -> dict[str, list[ProxyResult]]:
    """The results grouped by proxy and budget (the seeds of one proxy run), in order of appearance."""
    grouped: dict[str, list[ProxyResult]] = {}
    for r in results:
        grouped.setdefault(_label(r.run), []).append(r)
    return grouped


def _values(group: Sequence[ProxyResult], stat: str) -> list[float]:
    return [r.speedup if stat == "speedup" else getattr(r.correlation, stat) for r in group]


def proxy_means(results: Sequence[ProxyResult]) -> dict[str, dict[str, float]]:
    """``{proxy name: {statistic: mean over its seeds}}`` for every statistic of :data:`STATS`."""
    return {
        group[0].run.name: {stat: mean_std(_values(group, stat))[0] for stat in STATS}
        for group in _by_label(results).values()
    }


def format_truth(truth: dict[str, ArchScore]) -> str:
    """What the ground truth is, and whether its seed noise lets it order its top 10."""
    return f"Ground truth: {describe_scores(truth)}.\nResolution: {resolution(truth).describe()}.\n"


def format_report(results: Sequence[ProxyResult]) -> str:
    """A markdown table, one line per proxy, every statistic as mean ± std over its seeds; a top-1 regret
    that is a lower bound for some seeds (their pick was screened out of the top tier) says so."""
    lines = [
        "| proxy | seeds | n_arch | " + " | ".join(STATS) + " |",
        "|" + " --- |" * (len(STATS) + 3),
    ]
    for label, group in _by_label(results).items():
        cells = []
        for stat in STATS:
            values = _values(group, stat)
            mean, std = mean_std(values)
            counted = sum(math.isfinite(v) for v in values)
            of = f" ({counted} of {len(values)} seeds)" if 0 < counted < len(values) else ""
            bounds = sum(not r.correlation.pick_resolved for r in group) if stat == "top1_regret" else 0
            of += f" (a lower bound in {bounds} of {len(group)} seeds)" if bounds else ""
            cells.append("n/a" if math.isnan(mean) else f"{mean:.3g} ± {std:.2g}{of}")
        n_arch = "/".join(sorted({str(r.correlation.n_arch) for r in group}))
        lines.append(f"| {label} | {len(group)} | {n_arch} | " + " | ".join(cells) + " |")
    note = (
        "\nThe speed-up counts only the seeds whose proxy and ground-truth trials were all timed on one machine "
        "(a ratio of wall times); n/a: none was.\n"
    )
    return "\n".join(lines) + "\n" + note


def scatter_plot(path: Path, truth: dict[str, ArchScore], results: Sequence[ProxyResult]) -> Path:
    """Proxy vs full-data validation accuracy, one panel per proxy; x is the mean (± std) over seeds."""
    import matplotlib.pyplot as plt

    grouped = _by_label(results)
    fig, axes = plt.subplots(1, len(grouped), figsize=(4.2 * len(grouped), 4), squeeze=False)
    for ax, (label, group) in zip(axes[0], grouped.items(), strict=True):
        archs = sorted(set(truth).intersection(*(r.run.scores for r in group)))
        xs = [mean_std(r.run.scores[a].value for r in group) for a in archs]
        ax.errorbar(
            [x[0] for x in xs], [truth[a].value for a in archs], xerr=[x[1] for x in xs], fmt="o", ms=4, alpha=0.7
        )
        rho = mean_std(r.correlation.spearman for r in group)
        ax.set_title(f"{label}\nSpearman {rho[0]:.2f} ± {rho[1]:.2f}", fontsize=9)
        ax.set_xlabel("proxy validation accuracy (%)")
        ax.set_ylabel("full-data validation accuracy (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
