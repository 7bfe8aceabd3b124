"""Why condensed memory beats herding by as much as it does: the figures behind the README's CL analysis.

    python benchmarks/cl_analysis.py [benchmarks/results]

Sets each GDumb-style row of ``cl.csv`` (a fresh ConvNet trained on the memory alone, so the last
experience's accuracy is that of a network trained from scratch on 10-class memory) beside the same
method's offline result in ``condense_quality.csv`` (the whole training set condensed at once, same
images per class, ConvNet-3 trained 300 epochs with DSA), and both margins over herding. It then
prints the offline ceiling that ``condense_curve.csv`` reaches with DM at its longest budget.
Class-balanced random in ``cl.csv`` is the offline ``random``. Where a case was run more than once (3 class
orders, then 5), the row over the most orders is used.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from cl_nas.cl.buffers import parse_buffer
from cl_nas.cl.scenarios import benchmark_spec

RESULTS = Path(__file__).resolve().parent / "results"
OFFLINE_NAME = {"class-balanced": "random"}


def margins(results: Path, mem_per_class: int = 10) -> pd.DataFrame:
    """One row per benchmark and fp32 buffer: CL (GDumb-style) and offline accuracy, each minus herding's."""
    cl = pd.read_csv(results / "cl.csv")
    # fp32 buffers only: a reduced-precision one holds more images than the offline set it would be compared with
    full_precision = cl.buffer.map(lambda name: parse_buffer(name).precision == "fp32")
    cl = cl[(cl.strategy == "gdumb") & (cl.mem_per_class == mem_per_class) & cl.augment.isna() & full_precision]
    cl = cl.sort_values("n_orders", kind="stable").drop_duplicates(["benchmark", "buffer"], keep="last").sort_index()
    offline = pd.read_csv(results / "condense_quality.csv")
    offline = offline[(offline.ipc == mem_per_class) & (offline.model == "convnet")]
    offline = offline.set_index(["dataset", "method"]).acc_mean
    rows = []
    for (benchmark, buffer), acc in cl.set_index(["benchmark", "buffer"]).final_acc_mean.items():
        dataset = benchmark_spec(benchmark).dataset
        method = OFFLINE_NAME.get(buffer, buffer)
        rows.append(
            {"benchmark": benchmark, "buffer": buffer, "cl_acc": acc, "offline_acc": offline.get((dataset, method))}
        )
    table = pd.DataFrame(rows)
    for side in ("cl", "offline"):
        herding = table[table.buffer == "herding"].set_index("benchmark")[f"{side}_acc"]
        table[f"{side}_minus_herding"] = table[f"{side}_acc"] - table.benchmark.map(herding)
    return table.round(2)


def ceiling(results: Path, mem_per_class: int = 10) -> pd.DataFrame:
    """DM's best offline point per dataset in ``condense_curve.csv``, against offline herding."""
    curve = pd.read_csv(results / "condense_curve.csv")
    curve = curve[(curve.method == "dm") & (curve.ipc == mem_per_class)]
    best = curve.loc[curve.groupby("dataset").acc_mean.idxmax(), ["dataset", "iteration", "eval_epochs", "acc_mean"]]
    offline = pd.read_csv(results / "condense_quality.csv")
    herding = offline[(offline.method == "herding") & (offline.ipc == mem_per_class) & (offline.model == "convnet")]
    best["herding_acc"] = best.dataset.map(herding.set_index("dataset").acc_mean)
    best["dm_minus_herding"] = (best.acc_mean - best.herding_acc).round(2)
    return best.reset_index(drop=True)


def main(results: Path) -> None:
    print("GDumb-style final accuracy (cl.csv) beside offline condensation (condense_quality.csv), IPC 10:")
    print(margins(results).to_string(index=False))
    print("\nDM's offline ceiling in condense_curve.csv (herding: condense_quality.csv, 300 epochs):")
    print(ceiling(results).to_string(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS)
