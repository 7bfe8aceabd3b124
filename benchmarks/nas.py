"""Proxy NAS benchmark: how well training on condensed data ranks ConvNets, against controls.

The same code as ``cl-nas nas`` (:mod:`cl_nas.nas.command`; the steps: :mod:`cl_nas.nas.study`, the
flags: ``--help``), and the study's targets checked at the end (:data:`TARGETS`: the main proxy's means
over seeds against the resolved ground truth, beside the random subset's; printed and appended to the
report). Results go to ``benchmarks/results/``: ``nas_correlation.csv``, ``nas_scores.csv``,
``nas_report.md`` and ``nas_scatter.png``. Rerunning a command resumes it. Two more modes:

* ``--tune``: choose the proxy schedule (epochs, learning rate, augmentation) on a *tuning sample* of
  ``--tune-archs`` architectures that follows the evaluation sample in the seeded order (so it shares
  none of them), against their own ground truth (the same fidelity, no screening); every combination of
  ``--tune-epochs``, ``--tune-lr`` and ``--tune-augment`` is scored by the main proxy's Spearman there,
  written to ``nas_tuning.csv`` under ``--out``, and the best printed as flags for the evaluation run;
* ``--estimate-cost``: time one epoch of the sample's cheapest and most expensive architecture (at most
  ``--time-budget`` seconds each, extrapolated from the batches done) and estimate from their FLOPs
  what the ground truth of these flags costs on this machine, stage by stage; trains nothing else.

The resolved ground truth on a GPU (8 epochs x 3 seeds on all 48 architectures, 4 workers on one
GPU): ``scripts/nas_ground_truth_device.sh``. On a CPU, the reduced-fidelity ground truth screens by
successive halving (``--gt-rungs``); what it costs here: ``--estimate-cost`` with its flags. The commands
and what "ground truth" means for each table: ``docs/nas.md``.

A smoke test on the embedded digits in about a minute::

    python benchmarks/nas.py --dataset digits --proxy random --ipc 5 --epochs 2 --trials 6 \\
        --gt-archs 6 --gt-seeds 0 1 --controls herding naswot --ground-truth \\
        --storage sqlite:////tmp/nas.db --out /tmp/nas --checkpoint-dir /tmp/nas/checkpoints
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from _common import RESULTS

import cl_nas  # noqa: F401  (first: makes torchvision importable)
from cl_nas.cli import run_reporting_errors
from cl_nas.nas.command import configure_parser, settings_from_args
from cl_nas.nas.report import ProxyResult, proxy_means
from cl_nas.nas.study import ground_truth_cost, run_study
from cl_nas.nas.tuning import Schedule, best_schedule, tune_schedule

TARGETS = {
    "spearman": 0.8,
    "spearman_over_random": 0.1,
    "spearman_top20_over_random": 0.1,
    "speedup": 20.0,
    "top1_regret": 0.5,
}


def target_checks(results: Sequence[ProxyResult]) -> str:
    """The main proxy's (the first result's) means over its seeds against :data:`TARGETS`, each beside the
    random-subset control's where that control ran: top-1 regret, Spearman over the ground truth's top 20,
    overall Spearman, speed-up over the ground truth."""
    means = proxy_means(results)
    main = results[0].run.name
    m = means[main]
    seeds = sum(r.run.name == main for r in results)
    random = means.get("random") if main != "random" else None

    def versus(stat: str) -> str:
        return f" (random subset: {random[stat]:.3g})" if random else ""

    checks = [("top-1 regret (points)", m["top1_regret"], "<=", TARGETS["top1_regret"], versus("top1_regret"))]
    if random:
        for stat, name in (("spearman_top20", "Spearman over the top 20"), ("spearman", "Spearman")):
            gain, target = m[stat] - random[stat], TARGETS[f"{stat}_over_random"]
            checks.append((f"{name}, gain over random subset", gain, ">=", target, f" ({m[stat]:.3g}{versus(stat)})"))
    checks += [
        ("Spearman", m["spearman"], ">=", TARGETS["spearman"], versus("spearman")),
        ("speed-up over the ground truth, one machine", m["speedup"], ">=", TARGETS["speedup"], ""),
    ]
    lines = [f"\nTargets for {main}, mean over {seeds} seed(s), against the resolved ground truth:"]
    for name, value, op, target, beside in checks:
        if math.isnan(value):
            lines.append(f"  {name}: n/a (target {op} {target}) not measured")
            continue
        ok = value >= target if op == ">=" else value <= target
        lines.append(f"  {name}: {value:.3g}{beside} (target {op} {target}) {'met' if ok else 'NOT met'}")
    return "\n".join(lines) + "\n"


def tune(args: argparse.Namespace) -> int:
    """Score every proxy schedule of the tuning grid on the tuning sample; print the best as flags."""
    settings = settings_from_args(args)
    grid = [Schedule(*point) for point in itertools.product(args.tune_epochs, args.tune_lr, args.tune_augment)]
    scores = tune_schedule(settings, args.tune_archs, grid)
    if scores is None:
        print("no ground truth on the tuning sample yet: rerun with --ground-truth")
        return 1
    best = best_schedule(scores)
    print(f"\ntuned on {args.tune_archs} architectures after the first {settings.arch_offset + settings.gt_archs} "
          f"(none of the evaluation sample): Spearman {best.spearman:.3f} with {best.schedule.flags()}")  # fmt: skip
    return 0


def estimate_cost(args: argparse.Namespace) -> int:
    """Print what the ground truth these flags describe would cost here, stage by stage."""
    settings = settings_from_args(args)
    cost = ground_truth_cost(settings, args.time_budget)
    for timed in cost.timed:
        print(f"{timed.arch}: {timed.flops / 1e6:.1f} MFLOP forward, {timed.seconds:.1f} s per epoch "
              f"({timed.batches} batches timed)")  # fmt: skip
    print(f"\nground truth: {settings.ground_truth_config.describe()}\non {cost.machine}, bf16 {cost.bf16}:")
    for stage in cost.stages:
        print(f"  {stage.archs} architectures x {stage.epochs} epochs x {stage.seeds} seeds: "
              f"{stage.typical / 3600:.2f} h if the survivors cost the mean, {stage.worst / 3600:.2f} h if they are "
              "the most expensive")  # fmt: skip
    print(f"  total: {cost.typical / 3600:.2f} to {cost.worst / 3600:.2f} hours of one worker")
    return 0


def run(args: argparse.Namespace) -> int:
    """The study of ``args``, then its targets: printed and appended to ``nas_report.md`` (or a mode)."""
    if args.tune:
        return tune(args)
    if args.estimate_cost:
        return estimate_cost(args)
    settings = settings_from_args(args)
    results = run_study(settings)
    if results:
        checks = target_checks(results)
        print(checks)
        with (Path(settings.out) / "nas_report.md").open("a") as report:
            report.write(checks)
    return 0


def parser() -> argparse.ArgumentParser:
    p = configure_parser(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    p.set_defaults(out=str(RESULTS))  # the committed tables
    modes = p.add_argument_group("tuning and cost modes")
    modes.add_argument("--tune", action="store_true", help="choose the proxy schedule on a disjoint tuning sample")
    modes.add_argument("--tune-archs", type=int, default=16, help="architectures in the tuning sample")
    modes.add_argument("--tune-epochs", type=int, nargs="+", default=[20, 50, 100], help="proxy epochs to try")
    modes.add_argument("--tune-lr", type=float, nargs="+", default=[0.01, 0.03], help="proxy learning rates to try")
    modes.add_argument("--tune-augment", nargs="+", default=["none", "dsa"], help="proxy augmentations to try")
    modes.add_argument("--estimate-cost", action="store_true", help="estimate the ground truth's training time here")
    modes.add_argument("--time-budget", type=float, default=60.0, help="seconds of timing per architecture")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, parser().parse_args(argv), "nas")


if __name__ == "__main__":
    sys.exit(main())
