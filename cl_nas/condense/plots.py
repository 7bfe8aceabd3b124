"""Figures of the condensation benchmarks, drawn from their tables (used by the scripts and the notebooks).

* :func:`quality_figure`: accuracy vs images per class, one panel per dataset (``condense_quality.csv``);
* :func:`cross_architecture_figure`: one IPC's sets evaluated on several models (same table);
* :func:`curve_figure`: accuracy vs condensation time, one panel per dataset (``condense_curve.csv``);
* :func:`synthetic_sets_figure`: several methods' sets side by side, one row per class each.

Each takes the table (or the sets) and returns a matplotlib figure; :func:`save_figure` writes one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cl_nas.synthetic import SyntheticSet


def quality_figure(df: pd.DataFrame, model: str, protocol: str):
    """Mean ± std test accuracy vs IPC (log scale) per method, for the rows evaluated on ``model`` under
    ``protocol``; a set trained on a teacher's logits is its own line (``<method> (teacher-logits)``)."""
    import matplotlib.pyplot as plt

    df = df[(df["model"] == model) & (df["protocol"] == protocol)]
    if df.empty:
        raise ValueError(f"no rows evaluated on {model!r} under the {protocol!r} protocol")
    datasets = sorted(df["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        sub = df[df["dataset"] == dataset]
        for (method, labels), rows in sub.groupby(["method", sub["labels"].fillna("hard")]):
            rows = rows.sort_values("ipc")
            name = method if labels == "hard" else f"{method} ({labels})"
            ax.errorbar(rows["ipc"], rows["acc_mean"], yerr=rows["acc_std"], marker="o", capsize=3, label=name)
        ipcs = sorted(sub["ipc"].unique())
        ax.set_xscale("log")
        ax.set_xticks(ipcs, labels=[str(i) for i in ipcs])
        ax.set(xlabel="images per class", ylabel="test accuracy (%)", title=f"{dataset}: {model}, {protocol} protocol")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def cross_architecture_figure(df: pd.DataFrame, ipc: int = 10):
    """Mean ± std test accuracy of each method's ``ipc`` set on every evaluation model, one panel per
    dataset: how well a set condensed with one network trains others."""
    import matplotlib.pyplot as plt

    df = df[df["ipc"] == ipc]
    if df["model"].nunique() < 2:
        raise ValueError(f"the table has no IPC {ipc} rows on more than one evaluation model")
    datasets = sorted(df["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        sub = df[df["dataset"] == dataset]
        means = sub.pivot_table(index="model", columns="method", values="acc_mean")
        stds = sub.pivot_table(index="model", columns="method", values="acc_std")
        means.plot.bar(ax=ax, yerr=stds, capsize=2, rot=30)
        ax.set(xlabel="evaluation model", ylabel="test accuracy (%)", title=f"{dataset}, IPC {ipc}")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def evaluation_name(row: pd.Series) -> str:
    """How a results row was evaluated: its protocol and its labels unless hard; a row from before the
    protocol column, ``fast`` (300 epochs with DSA) or its epochs and augmentation."""
    name = row.get("protocol")
    if not isinstance(name, str) or not name:
        epochs, augment = int(row["eval_epochs"]), row.get("eval_augment")
        name = "fast" if (epochs, augment) == (300, "dsa") else f"{epochs} epochs, augment {augment}"
    labels = row.get("labels")
    return f"{name}, {labels} labels" if isinstance(labels, str) and labels != "hard" else name


def _config_entry(key: str, value) -> str:
    # a run's configured iterations are where it was to stop, not where its points are (its snapshots)
    return f"run to {value} iterations" if key == "iterations" else f"{key}={value}"


def curve_figure(
    df: pd.DataFrame,
    targets: Mapping[str, float] | None = None,
    time_limit_minutes: float | None = None,
):
    """Mean ± std test accuracy vs condensation time (log scale), one line per run and evaluation (a
    run is a method, IPC, condensation network, condenser configuration and machine; an evaluation is
    the row's protocol and labels, else its length), one panel per dataset. Where a panel holds several
    runs of one method, each label adds the network, configuration entries and machine that tell them
    apart (a learning-rate sweep, say; ``iterations`` reads "run to N iterations", where the run was to
    stop). Optional reference lines: ``targets`` (a test accuracy per dataset) and
    ``time_limit_minutes`` (a condensation-time budget)."""
    import matplotlib.pyplot as plt

    df = df.assign(
        evaluation=[evaluation_name(row) for _, row in df.iterrows()],
        condense_model=df.get("condense_model", pd.Series("", index=df.index)).fillna(""),
    )
    datasets = sorted(df["dataset"].unique())
    run_columns = ["method", "ipc", "condense_model", "config", "machine", "evaluation"]
    # the legends sit below the panels, where they hide no point: the figure grows with the longest
    entries = df.groupby("dataset")[run_columns].apply(lambda rows: len(rows.drop_duplicates())).max() + 2
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4 + 0.13 * entries), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        sub = df[df["dataset"] == dataset]
        for (method, ipc, model, config, machine, evaluation), rows in sub.groupby(run_columns):
            runs = sub[sub["method"] == method]  # what tells this run apart from the method's others
            configs = {c: json.loads(c) for c in runs["config"].unique()}
            keys = {k for cfg in configs.values() for k in cfg}
            varying = sorted(k for k in keys if len({str(cfg.get(k)) for cfg in configs.values()}) > 1)
            rows = rows.sort_values("condense_seconds")
            label = f"{method} ipc {ipc}, protocol {evaluation}"
            if varying:
                label += ", " + " ".join(_config_entry(k, configs[config].get(k)) for k in varying)
            if runs["condense_model"].nunique() > 1:
                label += f", on {model}"
            if runs["machine"].nunique() > 1:
                label += f" [{machine}]"
            ax.errorbar(
                rows["condense_seconds"] / 60, rows["acc_mean"], yerr=rows["acc_std"], marker="o", capsize=3,
                label=label,
            )  # fmt: skip
        if targets and dataset in targets:
            ax.axhline(targets[dataset], color="black", linestyle=":", label=f"target {targets[dataset]} %")
        if time_limit_minutes is not None:
            ax.axvline(time_limit_minutes, color="grey", linestyle="--", label=f"{time_limit_minutes:g} min")
        # log time: DM's minutes and APM's hours in one panel
        ax.set(xlabel="condensation time (min)", ylabel="test accuracy (%)", title=dataset, xscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    fig.tight_layout()
    return fig


def synthetic_sets_figure(sets: Mapping[str, SyntheticSet], max_per_class: int | None = 10):
    """One panel per entry of ``sets`` (title: its key, e.g. the method), each the set's image grid:
    one row per class, at most ``max_per_class`` images per row."""
    import matplotlib.pyplot as plt

    if not sets:
        raise ValueError("no synthetic sets to draw")
    fig, axes = plt.subplots(1, len(sets), figsize=(2.4 * len(sets), 2.8), squeeze=False)
    for ax, (title, syn) in zip(axes[0], sets.items(), strict=True):
        ax.imshow(syn.grid(max_per_class).permute(1, 2, 0).numpy())
        ax.set_title(title)
        ax.axis("off")
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
