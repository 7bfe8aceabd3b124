"""Whether bf16 autocast pays off on this machine: a ConvNet-3 forward in float32 and under bf16.

The number behind :func:`cl_nas.utils.native_bf16`, which turns bf16 on by default only where
the CPU multiplies bf16 in hardware. It times the inference forward of ``--batch`` 28x28 images
through ConvNet-3 (width 128, instance norm), median of ``--repeats`` after one warm-up, on one
torch thread. One row per machine goes to ``benchmarks/results/bf16_forward.csv`` (a rerun replaces
its own machine's row)::

    python benchmarks/bf16.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from _common import RESULTS

from cl_nas.cli import run_reporting_errors
from cl_nas.models import build_model
from cl_nas.results import ResultsTable
from cl_nas.train import autocast
from cl_nas.utils import machine_description, native_bf16

COLUMNS = ["batch", "fp32_seconds", "bf16_seconds", "bf16_slowdown", "native_bf16", "machine"]


def forward_seconds(net: torch.nn.Module, images: torch.Tensor, bf16: bool, repeats: int) -> float:
    """Median wall time of one forward of ``images`` (after a warm-up), with or without bf16 autocast."""
    device = torch.device("cpu")
    times = []
    with torch.inference_mode(), autocast(device, bf16):
        net(images)
        for _ in range(repeats):
            start = time.perf_counter()
            net(images)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(args: argparse.Namespace) -> int:
    if args.batch < 1 or args.repeats < 1:
        raise ValueError("--batch and --repeats must be positive")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = build_model("convnet", 1, 10, (28, 28)).eval()
    images = torch.randn(args.batch, 1, 28, 28)
    fp32, bf16 = (forward_seconds(net, images, on, args.repeats) for on in (False, True))
    row = {
        "batch": args.batch, "fp32_seconds": fp32, "bf16_seconds": bf16,
        "bf16_slowdown": round(bf16 / fp32, 2), "native_bf16": native_bf16("cpu"), "machine": machine_description(),
    }  # fmt: skip
    ResultsTable(args.out, COLUMNS, ["machine", "batch"]).append(row)
    print(f"ConvNet-3 forward of {args.batch} images, 1 thread: float32 {fp32:.3f} s, bf16 autocast {bf16:.3f} s "
          f"({row['bf16_slowdown']}x) on {row['machine']}; table: {args.out}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "bf16_forward.csv"))
    return run_reporting_errors(run, p.parse_args(argv), "benchmarks/bf16.py")


if __name__ == "__main__":
    sys.exit(main())
