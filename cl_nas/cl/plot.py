"""Accuracy on the classes seen so far, after each experience: one line per buffer.

One panel per (benchmark, strategy, memory per class), a buffer keeping its colour across panels; the
naive lower bound is drawn dashed and the joint upper bound as a dotted horizontal line (both black) in
every panel of their benchmark.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cl_nas.condense.plots import save_figure


def _curve(cell: str) -> list[float]:
    return [float(v) for v in str(cell).split()]


def accuracy_figure(df: pd.DataFrame):
    """A matplotlib figure of the accuracy curves in ``df`` (rows as in ``benchmarks/results/cl.csv``)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    memory = df[df["buffer"] != "none"]
    colors = {b: f"C{i % 10}" for i, b in enumerate(dict.fromkeys(memory["buffer"]))}  # one colour per buffer
    panels = sorted({(r.benchmark, r.strategy, r.mem_per_class) for r in memory.itertuples()})
    if not panels:  # bounds only
        panels = sorted({(b, "bounds", 0) for b in df["benchmark"]})
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, (benchmark, strategy, mem) in zip(axes.flat, panels, strict=False):
        lines = memory[(memory.benchmark == benchmark) & (memory.strategy == strategy) & (memory.mem_per_class == mem)]
        for row in lines.itertuples():
            curve = _curve(row.acc_per_experience)
            ax.plot(range(1, len(curve) + 1), curve, marker="o", color=colors[row.buffer], label=row.buffer)
        for row in df[(df.benchmark == benchmark) & (df.buffer == "none")].itertuples():
            curve = _curve(row.acc_per_experience)
            if row.strategy == "joint":
                ax.axhline(curve[-1], color="black", linestyle=":", label="joint")
            else:
                ax.plot(range(1, len(curve) + 1), curve, color="black", linestyle="--", label=row.strategy)
        ax.set_title(f"{benchmark} {strategy}" + (f", {mem} img/class" if mem else ""))
        ax.set_xlabel("experience")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy on seen classes (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_accuracy(table_path: str | os.PathLike) -> Path:
    """Draw the curves of the table at ``table_path`` into a PNG beside it and return its path."""
    return save_figure(accuracy_figure(pd.read_csv(table_path)), Path(table_path).with_suffix(".png"), dpi=110)
