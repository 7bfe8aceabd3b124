"""Tuning the proxy's schedule on architectures the evaluation never sees.

A proxy's training schedule (epochs, learning rate, augmentation) is a choice, and choosing it on the
architectures it is then judged on would flatter it. :func:`tune_schedule` chooses it on a *tuning
sample*: the ``archs`` architectures that follow the evaluation sample in the seeded order
(:func:`tuning_settings`), against their own ground truth at the evaluation's fidelity (no screening).
Every schedule of the grid runs the main proxy there, over the study's seeds; the score is its mean
Spearman ρ, and the best schedule is the highest ρ, ties going to fewer epochs. Each schedule's study
resumes like any other (:func:`cl_nas.nas.study.run_study`), and its row lands in the tuning table as
soon as it is scored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cl_nas.nas.report import proxy_means
from cl_nas.nas.study import NASSettings, run_study
from cl_nas.results import ResultsTable

TUNING_COLUMNS = ["dataset", "proxy", "ipc", "epochs", "lr", "augment", "n_arch", "seeds", "spearman", "kendall",
                  "top1_regret", "ground_truth", "machine"]  # fmt: skip
TUNING_KEY = TUNING_COLUMNS[:6]


@dataclass(frozen=True)
class Schedule:
    """How the proxy's candidates train: ``epochs`` epochs at learning rate ``lr`` with ``augment``."""

    epochs: int
    lr: float
    augment: str

    def flags(self) -> str:
        """The schedule as the flags of an evaluation run."""
        return f"--epochs {self.epochs} --lr {self.lr:g} --augment {self.augment}"


@dataclass(frozen=True)
class ScheduleScore:
    """A schedule's statistics on the tuning sample: means over the study's seeds."""

    schedule: Schedule
    spearman: float
    kendall: float
    top1_regret: float


def tuning_settings(settings: NASSettings, archs: int) -> NASSettings:
    """The study on the tuning sample: the ``archs`` architectures after the evaluation sample, their own
    ground truth at the evaluation fidelity without screening, the main proxy alone, reported under
    ``<out>/tuning/``."""
    return dataclasses.replace(
        settings, arch_offset=settings.arch_offset + settings.gt_archs, gt_archs=archs, trials=archs, gt_rungs=(),
        controls=(), scores_from=(), out=str(Path(settings.out) / "tuning"),
    )  # fmt: skip


def tune_schedule(settings: NASSettings, archs: int, schedules: Sequence[Schedule]) -> list[ScheduleScore] | None:
    """Score every schedule on the tuning sample of ``archs`` architectures (their ground truth is trained
    when ``settings.ground_truth`` is set) and record each in ``<settings.out>/nas_tuning.csv``; None when the
    tuning sample has no ground truth yet. Pick with :func:`best_schedule`."""
    if not schedules:
        raise ValueError("no schedule to tune: give at least one value of --tune-epochs, --tune-lr and --tune-augment")
    base = tuning_settings(settings, archs)
    table = ResultsTable(Path(settings.out) / "nas_tuning.csv", TUNING_COLUMNS, TUNING_KEY)
    scored = []
    for schedule in schedules:
        out = Path(base.out) / f"e{schedule.epochs}-lr{schedule.lr:g}-{schedule.augment}"
        run = dataclasses.replace(base, epochs=schedule.epochs, lr=schedule.lr, augment=schedule.augment, out=str(out))
        results = [r for r in run_study(run) if r.run.name == run.proxy]
        if not results:
            return None
        means = proxy_means(results)[run.proxy]
        score = ScheduleScore(schedule, means["spearman"], means["kendall"], means["top1_regret"])
        scored.append(score)
        table.append({
            "dataset": run.dataset, "proxy": run.proxy, "ipc": run.ipc, "epochs": schedule.epochs, "lr": schedule.lr,
            "augment": schedule.augment, "n_arch": results[0].correlation.n_arch, "seeds": len(results),
            "spearman": round(score.spearman, 4), "kendall": round(score.kendall, 4),
            "top1_regret": round(score.top1_regret, 2), "ground_truth": run.ground_truth_config.describe(),
            "machine": results[0].run.machine,
        })  # fmt: skip
    return scored


def best_schedule(scores: Sequence[ScheduleScore]) -> ScheduleScore:
    """The highest mean Spearman ρ; ties go to the cheaper schedule (fewer epochs)."""
    return max(scores, key=lambda s: (s.spearman, -s.schedule.epochs))


__all__ = ["Schedule", "ScheduleScore", "best_schedule", "tune_schedule", "tuning_settings"]
