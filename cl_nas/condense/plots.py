"""Figures of the condensation benchmarks, drawn from their tables (used by the scripts and the notebooks).

* :func:`quality_figure`: accuracy vs images per class, one panel per dataset (``condense_quality.csv``);
* :func:`curve_figure`: accuracy vs condensation time, one panel per dataset (``condense_curve.csv``).

Each takes the table as a DataFrame and returns a matplotlib figure; :func:`save_figure` writes one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

# the engine issue's targets: IPC 10 test accuracy (%) within 15 minutes of condensation on this CPU
IPC10_TARGETS = {"mnist": 97.4, "fashionmnist": 84.0}
TIME_LIMIT_MINUTES = 15.0


def quality_figure(df: pd.DataFrame, model: str = "convnet"):
    """Mean ± std test accuracy vs IPC (log scale) per method, for the rows evaluated on ``model``."""
    import matplotlib.pyplot as plt

    df = df[df["model"] == model]
    datasets = sorted(df["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        sub = df[df["dataset"] == dataset]
        for method, rows in sub.groupby("method"):
            rows = rows.sort_values("ipc")
            ax.errorbar(rows["ipc"], rows["acc_mean"], yerr=rows["acc_std"], marker="o", capsize=3, label=method)
        ipcs = sorted(sub["ipc"].unique())
        ax.set_xscale("log")
        ax.set_xticks(ipcs, labels=[str(i) for i in ipcs])
        ax.set(xlabel="images per class", ylabel="test accuracy (%)", title=f"{dataset} ({model})")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def curve_figure(
    df: pd.DataFrame,
    targets: Mapping[str, float] = IPC10_TARGETS,
    time_limit_minutes: float | None = TIME_LIMIT_MINUTES,
):
    """Mean ± std test accuracy vs condensation time, one line per (method, ipc, evaluation epochs);
    ``targets`` (per dataset) and ``time_limit_minutes`` are drawn as reference lines."""
    import matplotlib.pyplot as plt

    datasets = sorted(df["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for (method, ipc, epochs), rows in df[df["dataset"] == dataset].groupby(["method", "ipc", "eval_epochs"]):
            rows = rows.sort_values("condense_seconds")
            ax.errorbar(
                rows["condense_seconds"] / 60, rows["acc_mean"], yerr=rows["acc_std"], marker="o", capsize=3,
                label=f"{method} ipc {ipc}, {epochs}-epoch evaluation",
            )  # fmt: skip
        if dataset in targets:
            ax.axhline(targets[dataset], color="black", linestyle=":", label=f"target {targets[dataset]} %")
        if time_limit_minutes is not None:
            ax.axvline(time_limit_minutes, color="grey", linestyle="--", label=f"{time_limit_minutes:g} min")
        ax.set(xlabel="condensation time (min)", ylabel="test accuracy (%)", title=dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (PNG), close it and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
