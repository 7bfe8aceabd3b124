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
import dataclasses
import itertools
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import cl_nas  # noqa: F401  (first: makes torchvision importable)
from cl_nas.cli import run_reporting_errors
from cl_nas.data import load_dataset
from cl_nas.nas.command import configure_parser, settings_from_args
from cl_nas.nas.cost import estimate_seconds, forward_flops, plan_seconds, time_epoch
from cl_nas.nas.report import ProxyResult, proxy_means
from cl_nas.nas.study import NASSettings, run_study
from cl_nas.results import ResultsTable
from cl_nas.train import TrainConfig
from cl_nas.utils import machine_description, resolve_bf16

TARGETS = {
    "spearman": 0.8,
    "spearman_over_random": 0.1,
    "spearman_top20_over_random": 0.1,
    "speedup": 20.0,
    "top1_regret": 0.5,
}
TUNING_COLUMNS = ["dataset", "proxy", "ipc", "epochs", "lr", "augment", "n_arch", "seeds", "spearman", "kendall",
                  "top1_regret", "ground_truth", "machine"]  # fmt: skip


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


def tuning_settings(settings: NASSettings, archs: int) -> NASSettings:
    """The study on the tuning sample: the ``archs`` architectures after the evaluation sample, their own
    ground truth at the evaluation fidelity without screening, the main proxy alone, reported under
    ``<out>/tuning/<schedule>``."""
    return dataclasses.replace(
        settings, arch_offset=settings.arch_offset + settings.gt_archs, gt_archs=archs, trials=archs, gt_rungs=(),
        controls=(), scores_from=(), out=str(Path(settings.out) / "tuning"),
    )  # fmt: skip


def tune(args: argparse.Namespace) -> int:
    """Score every proxy schedule of the tuning grid on the tuning sample; print the best as flags."""
    base = tuning_settings(settings_from_args(args), args.tune_archs)
    table = ResultsTable(Path(args.out) / "nas_tuning.csv", TUNING_COLUMNS, TUNING_COLUMNS[:6])
    scored = []
    for epochs, lr, augment in itertools.product(args.tune_epochs, args.tune_lr, args.tune_augment):
        out = Path(base.out) / f"e{epochs}-lr{lr:g}-{augment}"
        settings = dataclasses.replace(base, epochs=epochs, lr=lr, augment=augment, out=str(out))
        results = run_study(settings)
        if not results:
            print("no ground truth on the tuning sample yet: rerun with --ground-truth")
            return 1
        main = [r for r in results if r.run.name == settings.proxy]
        rho = proxy_means(main)[settings.proxy]
        scored.append((rho["spearman"], epochs, lr, augment))
        table.append({
            "dataset": settings.dataset, "proxy": settings.proxy, "ipc": settings.ipc, "epochs": epochs, "lr": lr,
            "augment": augment, "n_arch": main[0].correlation.n_arch, "seeds": len(main),
            "spearman": round(rho["spearman"], 4), "kendall": round(rho["kendall"], 4),
            "top1_regret": round(rho["top1_regret"], 2), "ground_truth": settings.ground_truth_config.describe(),
            "machine": main[0].run.machine,
        })  # fmt: skip
    rho, epochs, lr, augment = max(scored, key=lambda s: (s[0], -s[1]))  # ties: the cheaper schedule
    print(f"\ntuned on {base.gt_archs} architectures after the first {base.arch_offset} (none of the evaluation "
          f"sample): Spearman {rho:.3f} with --epochs {epochs} --lr {lr:g} --augment {augment}")  # fmt: skip
    return 0


def estimate_cost(args: argparse.Namespace) -> int:
    """Time the cheapest and the costliest architecture of the ground-truth sample for one epoch each and
    print the estimated training time of every stage of the ground truth these flags describe."""
    s = settings_from_args(args)
    splits = load_dataset(s.dataset, s.data_root)
    info, space, config = splits.info, s.search_space(), s.ground_truth_config
    sample = space.sample(config.arch_offset + config.n_arch, config.arch_seed, info.channels, info.image_size)
    specs = [space.spec(p) for p in sample[config.arch_offset :]]
    flops = [forward_flops(spec, info) for spec in specs]
    cheapest, costliest = min(range(len(specs)), key=flops.__getitem__), max(range(len(specs)), key=flops.__getitem__)
    bf16 = resolve_bf16(s.bf16, s.device)
    protocol = TrainConfig(epochs=1, bf16=bf16)
    timed = []
    for index in (cheapest, costliest):
        measured = time_epoch(
            specs[index], splits.train, budget_seconds=args.time_budget, device=s.device, config=protocol
        )
        timed.append(measured)
        print(f"{space.spec_string(sample[config.arch_offset + index])}: {measured.flops / 1e6:.1f} MFLOP forward, "
              f"{measured.seconds:.1f} s per epoch ({measured.batches} batches timed)", flush=True)  # fmt: skip
    seconds = estimate_seconds(flops, *timed)
    print(f"\nground truth: {config.describe()}\non {machine_description()}, bf16 {bf16}:")
    total_worst = total_typical = 0.0
    for stage in plan_seconds(config.fidelities(), seconds):
        total_worst, total_typical = total_worst + stage.worst, total_typical + stage.typical
        print(f"  {stage.archs} architectures x {stage.epochs} epochs x {stage.seeds} seeds: "
              f"{stage.typical / 3600:.2f} h if the survivors cost the mean, {stage.worst / 3600:.2f} h if they are "
              "the most expensive")  # fmt: skip
    print(f"  total: {total_typical / 3600:.2f} to {total_worst / 3600:.2f} hours of one worker")
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
