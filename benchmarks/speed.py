"""Speed of the learned-condensation engine against a straightforward implementation, side by side.

Setting (the papers' reference one): MNIST, 10 images per class, ConvNet-3 (width 128, instance
norm), 256 real images per class per step, DSA on. Two workloads are timed in one process, the
engine and the baseline alternating, so that load from other processes hits both alike:

* one DM iteration (``DMCondenser.step``);
* one DC iteration (an "outer loop": a fresh network, 10 matching steps and 9 network updates of
  50 epochs each at ipc 10). A full one takes minutes per side on a CPU, so its two parts are timed
  separately (one matching step, one 50-epoch network update) and the iteration time is computed
  as ``outer * match + (outer - 1) * update``; the parts are reported as rows of their own.

The baseline is written here the way the reference code (VICO-UoE/DatasetCondensation) computes:
a Python loop over classes, one forward (and backward) per class batch, float32, no inference
mode, the real embeddings of DM computed with autograd on (only detached afterwards), and DSA
drawn per class. Both sides share the data, the DSA kernels and the models, so the ratio measures
the engine's choices (batched classes, cache-sized chunks, inference mode, bf16 autocast).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the baseline (the work both
sides do); ``gflops`` is that work divided by the engine's time, and ``peak_fraction`` compares it
with a float32 peak of 32 FLOP/cycle per thread at the clock ``/proc/cpuinfo`` reports (2.6 GHz when
it reports none: 166 GFLOP/s for 2 threads). 32 holds for AVX-512 and for two 256-bit FMA pipes
(AMD Zen 3 and 4, recent Intel). bf16 runs can exceed 1.0: AVX-512-BF16 does twice the float32 rate.
The engine runs with its defaults, so bf16 autocast only where the CPU has native bf16
(:func:`cl_nas.utils.native_bf16`); the machine column says which.

Run: ``python benchmarks/speed.py [--threads N] [--repeats R] [--no-compile]``. Rows go to
``benchmarks/results/condense_speed.csv`` (``--out``); a rerun replaces the rows of its own machine and
setting only, so the table compares machines (e.g. with and without native bf16).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from _common import RESULTS
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from cl_nas.cli import run_reporting_errors
from cl_nas.condense import DMCondenser, DSACondenser
from cl_nas.condense.iterative import CondenseRun
from cl_nas.data import DATA_ENV_VAR, load_dataset
from cl_nas.results import ResultsTable
from cl_nas.utils import check_positive_int, cpuinfo_field, machine_description

PEAK_FLOP_PER_CYCLE = 32  # float32 FMA throughput per core: 2 x 256-bit FMA pipes, or AVX-512
DEFAULT_CLOCK_HZ = 2.6e9
IPC = 10
BATCH_REAL = 256
INNER_EPOCHS = 50
SETTING = f"mnist ipc{IPC} convnet-3 w128 batch_real{BATCH_REAL} dsa"


# --- the straightforward implementation -----------------------------------------------------------
class ClassImages:
    """The real images of each class, sampled like the reference's ``get_images(c, n)``."""

    def __init__(self, run: CondenseRun):
        self.by_class = [run.real.images[run.real.labels == label] for label in run.real.classes]

    def batches(self, run: CondenseRun, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Class ``c``'s random real batch and its synthetic images, under one DSA draw (siamese)."""
        pool = self.by_class[c]
        real = pool[torch.randperm(len(pool), generator=run.generator)[:BATCH_REAL]]
        syn = run.images[c * run.ipc : (c + 1) * run.ipc]
        params = run.dsa.sample(1, run.info.image_size, run.device, run.generator)
        same = torch.zeros(len(real), dtype=torch.long)
        return run.dsa.apply(real, params.expand(same)), run.dsa.apply(syn, params.expand(same[: len(syn)]))


def baseline_dm_step(condenser: DMCondenser, run: CondenseRun, real: ClassImages) -> float:
    net = condenser.fresh_model(run.info)
    for p in net.parameters():
        p.requires_grad = False
    loss = torch.tensor(0.0)
    for c in range(run.num_groups):
        real_c, syn = real.batches(run, c)
        out_real = net.embed(real_c).detach()
        out_syn = net.embed(syn)
        loss = loss + ((out_real.mean(0) - out_syn.mean(0)) ** 2).sum()
    run.optimizer.zero_grad()
    loss.backward()
    run.optimizer.step()
    return loss.item()


def _distance_wb(gws: torch.Tensor, gwr: torch.Tensor) -> torch.Tensor:
    if gwr.dim() == 1:
        return torch.tensor(0.0)
    gws, gwr = gws.reshape(gws.shape[0], -1), gwr.reshape(gwr.shape[0], -1)
    return torch.sum(1 - torch.sum(gwr * gws, dim=-1) / (torch.norm(gwr, dim=-1) * torch.norm(gws, dim=-1) + 1e-6))


def baseline_dc_match(net: nn.Module, run: CondenseRun, real_images: ClassImages) -> float:
    params = list(net.parameters())
    loss = torch.tensor(0.0)
    for c in range(run.num_groups):
        real, syn = real_images.batches(run, c)
        label = run.real.classes[c]
        out_real = net(real)
        gw_real = torch.autograd.grad(F.cross_entropy(out_real, torch.full((len(real),), label)), params)
        gw_real = [g.detach().clone() for g in gw_real]
        out_syn = net(syn)
        gw_syn = torch.autograd.grad(
            F.cross_entropy(out_syn, torch.full((len(syn),), label)), params, create_graph=True
        )
        for gs, gr in zip(gw_syn, gw_real, strict=True):
            loss = loss + _distance_wb(gs, gr)
    run.optimizer.zero_grad()
    loss.backward()
    run.optimizer.step()
    return loss.item()


def baseline_dc_train(net: nn.Module, run: CondenseRun, epochs: int) -> None:
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    images, labels = run.images.detach(), run.labels
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for start in range(0, len(images), 256):
            idx = order[start : start + 256]
            loss = F.cross_entropy(net(run.dsa(images[idx])), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


# --- timing ---------------------------------------------------------------------------------------
def _paired_times(ours: Callable[[], object], baseline: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of each, after one warm-up, the two alternating."""
    ours(), baseline()
    t_ours, t_base = [], []
    for _ in range(repeats):
        for fn, acc in ((ours, t_ours), (baseline, t_base)):
            start = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - start)
    return statistics.median(t_ours), statistics.median(t_base)


def clock_hz() -> float:
    """The CPU clock that /proc/cpuinfo reports (nominal in a VM), else :data:`DEFAULT_CLOCK_HZ`."""
    mhz = cpuinfo_field("cpu MHz")
    try:
        return 1e6 * float(mhz) if mhz else DEFAULT_CLOCK_HZ
    except ValueError:
        return DEFAULT_CLOCK_HZ


def _flops(fn: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def run_speed(
    threads: int | None = None,
    *,
    repeats: int = 3,
    compile: bool = True,
    data_root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Time the engine (``compile``: its torch.compile option) and the baseline; one row per workload."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        threads = torch.get_num_threads()
        root = data_root or os.environ.get(DATA_ENV_VAR) or Path(__file__).resolve().parents[2] / "shared" / "data"
        train = load_dataset("mnist", root).train
        generator = torch.Generator().manual_seed(0)
        torch.manual_seed(0)

        dm = DMCondenser(iterations=1, device="cpu", compile=compile)
        dm_run = dm.start_run(train, IPC, generator)
        dc = DSACondenser(iterations=1, device="cpu", compile=compile)
        dc_run = dc.start_run(train, IPC, generator)
        net = dc.fresh_model(dc_run.info)
        dm_real, dc_real = ClassImages(dm_run), ClassImages(dc_run)
        outer, _ = dc.loops(IPC)

        rows = []
        measured = {
            "dm step": (lambda: dm.step(dm_run, 0), lambda: baseline_dm_step(dm, dm_run, dm_real)),
            "dc matching step": (lambda: dc.match_step(net, dc_run), lambda: baseline_dc_match(net, dc_run, dc_real)),
            f"dc network update ({INNER_EPOCHS} epochs)": (
                lambda: dc.train_network(net, dc_run, INNER_EPOCHS),
                lambda: baseline_dc_train(net, dc_run, INNER_EPOCHS),
            ),
        }
        results = {}
        for name, (ours, baseline) in measured.items():
            t_ours, t_base = _paired_times(ours, baseline, repeats)
            results[name] = (t_ours, t_base, _flops(baseline))
        match, update = results["dc matching step"], results[f"dc network update ({INNER_EPOCHS} epochs)"]
        results[f"dc iteration ({outer} matching + {outer - 1} updates, from the parts)"] = tuple(
            outer * m + (outer - 1) * u for m, u in zip(match, update, strict=True)
        )
        peak = PEAK_FLOP_PER_CYCLE * clock_hz() * threads
        for name, (t_ours, t_base, flops) in results.items():
            rows.append(
                {
                    "method": name,
                    "setting": f"{SETTING}{' compile' if compile else ''}",
                    "seconds_per_step": t_ours,
                    "baseline_seconds_per_step": t_base,
                    "speedup": t_base / t_ours,
                    "gflops": flops / t_ours / 1e9,
                    "peak_fraction": flops / t_ours / peak,
                    "machine": machine_description(),
                }
            )
        return pd.DataFrame(rows)
    finally:
        torch.set_num_threads(previous)


COLUMNS = [
    "method", "setting", "seconds_per_step", "baseline_seconds_per_step", "speedup", "gflops", "peak_fraction",
    "machine",
]  # fmt: skip
KEY = ["method", "setting", "machine"]


def run(args: argparse.Namespace) -> int:
    check_positive_int("--threads", args.threads, optional=True)
    check_positive_int("--repeats", args.repeats)
    table = run_speed(args.threads, repeats=args.repeats, compile=not args.no_compile, data_root=args.data_root)
    results = ResultsTable(args.out, COLUMNS, KEY)
    for row in table.to_dict("records"):
        results.append(row)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.drop(columns=["setting", "machine"]).to_string(index=False, float_format="%.3f"))
    print(f"setting: {table['setting'].iloc[0]}; machine: {table['machine'].iloc[0]}; table: {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="time the engine without torch.compile")
    parser.add_argument(
        "--data-root", default=None, help=f"dataset folder (default: ${DATA_ENV_VAR}, else ../shared/data)"
    )
    parser.add_argument("--out", default=str(RESULTS / "condense_speed.csv"), help="results table (CSV)")
    return run_reporting_errors(run, parser.parse_args(argv), "benchmarks/speed.py")


if __name__ == "__main__":
    sys.exit(main())
