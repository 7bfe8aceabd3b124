"""The tables of README.md and docs/*.md, generated from the committed result tables (benchmarks/results/*.csv).

    python benchmarks/report.py            # rewrite every generated block in place
    python benchmarks/report.py --check    # exit 1, naming the stale blocks, if a committed doc differs

A generated block is the text between ``<!-- begin: NAME -->`` and ``<!-- end: NAME -->``, where ``NAME`` is a
key of :data:`BLOCKS`; everything outside the markers is hand-written and left alone. Condensation rows are
grouped by evaluation model and protocol. A table without a ``protocol`` column gets ``fast`` for rows
evaluated 300 epochs with DSA (which is what ``fast`` is), else their epochs and augmentation; a ``labels``
column other than ``hard`` is named beside the protocol.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
from _common import RESULTS

from cl_nas.cl.analysis import (
    OFFLINE_NAME,
    Margin,
    final_per_order,
    herding_rows,
    margin_over_herding,
    margins,
    one_row_per_case,
)
from cl_nas.cl.buffers import parse_buffer
from cl_nas.cl.runner import KEY as CL_KEY
from cl_nas.cl.scenarios import benchmark_spec
from cl_nas.condense import CONDENSERS
from cl_nas.condense.plots import evaluation_name
from cl_nas.nas.report import ProxyResult, evaluate, read_scores_table
from cl_nas.utils import mean_std

REPO = Path(__file__).resolve().parents[1]

BLOCK = re.compile(r"(<!-- begin: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.DOTALL)
ORDER = {  # rows follow these orders; values not listed come after, in the order they first appear
    "method": ["random", "herding", "kcenter", "dc", "dsa", "dm", "apm"],
    "strategy": ["replay", "gdumb", "naive", "joint"],
    "benchmark": ["split-fmnist", "split-mnist"],
    "buffer": ["class-balanced", "herding", "dc", "dsa", "dm", "apm", "apm-teacher"],
}
COLUMN_NAME = {"gdumb": "GDumb-style", "er-ace": "ER-ACE"}
BASELINE_BUFFERS = {"none", "class-balanced", "reservoir", "herding"}
NAS_DATASET = "fashionmnist"
NAS_STATS = {  # column: (Correlation field, decimals)
    "Spearman ρ": ("spearman", 3), "Kendall τ": ("kendall", 3), "ρ top 10": ("spearman_top10", 3),
    "ρ top 20": ("spearman_top20", 3), "top-10 overlap": ("overlap_top10", 2), "top-1 regret": ("top1_regret", 2),
}  # fmt: skip


# ---- formatting


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table of ``frame``'s cells as text (the index is not shown)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)])


def signed(value: float) -> str:
    """``+d.dd`` / ``-d.dd``, ``–`` without a value."""
    return "–" if value is None or math.isnan(value) else f"{value:+.2f}"


def pm(mean: float, std: float | None = None, digits: int = 2) -> str:
    """``mean ± std``, just the mean without a spread, ``–`` without a value."""
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def cells(mean: pd.Series, std: pd.Series) -> list[str]:
    return [pm(m, s) for m, s in zip(mean, std, strict=True)]


def seconds(column: pd.Series) -> pd.Series:
    return column.round().astype(int)


def ordered(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """``frame`` stably sorted by ``columns``, each in :data:`ORDER`'s order, else by first appearance."""
    ranks = {}
    for column in columns:
        values = list(dict.fromkeys(ORDER.get(column, []) + list(frame[column])))
        ranks[f"_{column}_rank"] = frame[column].map({v: i for i, v in enumerate(values)})
    return frame.assign(**ranks).sort_values(list(ranks), kind="stable").drop(columns=list(ranks))


def machine(text: str) -> str:
    """A CPU ``machine`` cell as vendor, vector ISA and torch threads (GPU cells unchanged). The AMD rows
    recorded before the column named the ISA ran on the AVX-512-BF16 machine."""
    parts = [p.strip() for p in str(text).split(",")]
    vendor = next((v for v in ("AMD", "Intel") if parts[0].startswith(v)), None)
    if vendor is None:
        return str(text)
    threads = next((p.split()[0] for p in parts if p.endswith("threads")), "?")
    isa = parts[-1] if parts[-1].startswith("AVX") else "AVX512+BF16"
    return f"{isa}, {threads} thr." if vendor == "AMD" else f"{vendor} {isa}, {threads} thr."


def given_params(command: str, method: str) -> dict[str, str]:
    """The ``--param`` options ``command`` gave ``method`` (``method.key=value``, or a bare ``key=value``)."""
    tokens = shlex.split(command)
    given = [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "--param"]
    mine = [p.removeprefix(f"{method}.") for p in given if p.startswith(f"{method}.") or "." not in p.split("=")[0]]
    # runtime options (checkpointing, progress, chunking) do not change the set, so they are not its options
    options = CONDENSERS.get(method).options if method in CONDENSERS else {}
    runtime = {name for name, option in options.items() if option.runtime}
    return {k: v for k, v in (p.split("=", 1) for p in mine) if k not in runtime}


def listed(chosen: dict[str, object]) -> str:
    """Options as ``key=value, ...`` text; "defaults" when there are none."""
    return ", ".join(f"{k}={v}" for k, v in chosen.items()) or "defaults"


def options(command: str, method: str) -> str:
    """The ``--param`` options ``command`` gave ``method``, as text."""
    return listed(given_params(command, method))


def cl_options(command: str, benchmark: str, method: str) -> str:
    """The condenser options a ``cl.py`` row ran with: its benchmark's CPU budget, overridden by ``--param``."""
    return listed({**benchmark_spec(benchmark).condense.get(method, {}), **given_params(command, method)})


def settings(config: object) -> dict:
    """A ``config`` cell as a dict; empty for a selection (random subsets) or a row that was not run."""
    return json.loads(config) if isinstance(config, str) and config else {}


def condensation(config: object) -> str:
    """A learned set's budget and step size from its ``config`` cell (iterations, real images per class per
    step, image learning rate); "–" for a selection (random subsets) or a row that was not run."""
    chosen = settings(config)
    return ", ".join(f"{k}={chosen[k]:g}" for k in ("iterations", "batch_real", "lr_img") if k in chosen) or "–"


# ---- condensation


def quality_rows(results: Path) -> pd.DataFrame:
    """``condense_quality.csv`` with ``protocol`` resolved, the model ``family`` and the accuracy ``cell``."""
    frame = pd.read_csv(results / "condense_quality.csv")
    frame["protocol"] = frame.apply(evaluation_name, axis=1)
    frame["family"] = frame.model.str.split(":").str[0]
    frame["cell"] = cells(frame.acc_mean, frame.acc_std)
    return frame


def quality_groups(results: Path) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """The ConvNet rows per (model, protocol), the largest group first."""
    frame = quality_rows(results)
    groups = list(frame[frame.family == "convnet"].groupby(["model", "protocol"], sort=False))
    return sorted(groups, key=lambda group: -len(group[1]))


def caption(model: str, name: str) -> str:
    return f"Evaluated on `{model}`, protocol `{name}`:\n\n"


def quality(results: Path) -> str:
    """Accuracy per dataset and method at condensation seed 0, one column per IPC, one table per model and
    protocol."""
    tables = []
    for (model, name), group in quality_groups(results):
        group = group[group.seed == 0]  # one condensation seed per cell; the parity table pools the seeds
        wide = group.pivot_table(index=["dataset", "method"], columns="ipc", values="cell", aggfunc="last", sort=False)
        wide = ordered(wide.reset_index(), ["dataset", "method"]).fillna("–")
        wide.columns = ["dataset", "method", *(f"IPC {ipc}" for ipc in wide.columns[2:])]
        tables.append(caption(model, name) + markdown(wide))
    return "\n\n".join(tables)


def parity(results: Path) -> str:
    """Our rows under a paper's own protocol and the reference ConvNet (``condense_quality.csv`` and the
    time-to-quality snapshots), beside that paper's figure (``paper_reference.csv``): the difference is
    ours minus the paper's."""
    quality = pd.read_csv(results / "condense_quality.csv")
    curve = pd.read_csv(results / "condense_curve.csv")
    curve = curve[curve.condense_model == "convnet"].assign(model="convnet")
    # a snapshot's budget is its own iteration, not the last one of its run
    curve["config"] = [
        json.dumps({**json.loads(c), "iterations": int(it)}, sort_keys=True)
        for c, it in zip(curve.config, curve.iteration, strict=True)
    ]
    ours = pd.concat([quality, curve], ignore_index=True)
    ours = ours[(ours.model == "convnet") & ours.labels.fillna("hard").eq("hard")]
    # every evaluation of every condensation seed (random: every subset) pooled, as the papers pool theirs
    ours["runs"] = ours.accuracies.map(lambda cell: [float(a) for a in str(cell).split()])
    ours["config"] = ours.config.fillna("{}")  # one row per condensation setting: never pool two settings
    ours = ours.groupby(["method", "dataset", "ipc", "protocol", "config"], as_index=False).agg(
        runs=("runs", "sum"), seeds=("seed", "nunique")
    )
    ours["acc_mean"], ours["acc_std"] = zip(*ours.runs.map(mean_std), strict=True)
    papers = pd.read_csv(results / "paper_reference.csv")
    rows = papers.merge(ours, on=["method", "dataset", "ipc", "protocol"], how="left", suffixes=("_paper", ""))
    rows["iterations"] = rows.config.map(lambda c: settings(c).get("iterations", 0))
    rows = ordered(rows.sort_values(["dataset", "ipc", "iterations"], kind="stable"), ["method", "dataset"])
    return markdown(pd.DataFrame({
        "method": rows.method, "dataset": rows.dataset, "ipc": rows.ipc, "protocol": rows.protocol,
        "condensation": rows.config.map(condensation), "ours": cells(rows.acc_mean, rows.acc_std), "seeds × models": [
            "" if pd.isna(k) else f"{int(k)} × {len(r) // int(k)}" for k, r in zip(rows.seeds, rows.runs, strict=True)
        ],
        "paper": cells(rows.acc_mean_paper, rows.acc_std_paper),
        "ours − paper": [pm(d) if pd.notna(d) else "not run" for d in rows.acc_mean - rows.acc_mean_paper],
        "paper's source": rows.paper + ", " + rows.source,
    }))  # fmt: skip


def quality_learned(results: Path) -> str:
    """The learned methods' ConvNet rows with their options, condensation seconds and machine."""
    frame = quality_rows(results)
    frame = frame[(frame.family == "convnet") & ~frame.method.isin(["random", "herding", "kcenter"])]
    frame = ordered(frame.sort_values("ipc", kind="stable"), ["dataset", "method"])
    return markdown(pd.DataFrame({
        "dataset": frame.dataset, "method": frame.method, "IPC": frame.ipc, "protocol": frame.protocol,
        "accuracy": frame.cell, "options": [options(c, m) for c, m in zip(frame.command, frame.method, strict=True)],
        "condense s": seconds(frame.condense_seconds), "machine": frame.machine.map(machine),
    }))  # fmt: skip


def cross_architecture(results: Path) -> str:
    """Every set evaluated on models outside the ConvNet family, beside its ConvNet rows."""
    frame = quality_rows(results)
    key = ["dataset", "method", "ipc", "protocol"]
    frame = frame.merge(frame[frame.family != "convnet"][key].drop_duplicates(), on=key)
    frame["set"] = frame.dataset + ", " + frame.method + ", IPC " + frame.ipc.astype(str) + ", " + frame.protocol
    wide = frame.pivot_table(index="set", columns="model", values="cell", aggfunc="last", sort=False).fillna("–")
    convnets = [m for m in wide.columns if m.split(":")[0] == "convnet"]
    wide = wide[convnets + [m for m in wide.columns if m not in convnets]].reset_index()
    return markdown(wide.rename(columns={"set": "set (dataset, method, IPC, protocol)"}))


def headline(results: Path) -> str:
    """Offline accuracy at IPC 1 and 10 (the largest ConvNet group) beside GDumb-style CL at 10 per class."""
    (model, name), group = quality_groups(results)[0]
    offline = group[group.ipc.isin([1, 10])].pivot_table(
        index="method", columns=["dataset", "ipc"], values="cell", aggfunc="last", sort=False
    )
    offline.columns = [f"{dataset} IPC {ipc}" for dataset, ipc in offline.columns]
    cl = ordered(margins(results), ["benchmark"])
    cl["method"] = cl.buffer.map(lambda b: OFFLINE_NAME.get(b, b))
    cl["cell"] = [f"{pm(acc)} ({orders})" for acc, orders in zip(cl.cl_acc, cl.cl_orders, strict=True)]
    cl = cl.pivot_table(index="method", columns="benchmark", values="cell", aggfunc="last", sort=False)
    cl.columns = [f"{benchmark} GDumb-style (orders)" for benchmark in cl.columns]
    table = offline.join(cl, how="outer").reset_index().fillna("–")
    return caption(model, name) + markdown(ordered(table, ["method"]))


def speed(results: Path) -> str:
    frame = ordered(pd.read_csv(results / "condense_speed.csv"), ["method"])
    return markdown(pd.DataFrame({
        "workload": frame.method, "machine": frame.machine.map(machine),
        "engine s/step": frame.seconds_per_step.map("{:.3g}".format),
        "baseline s/step": frame.baseline_seconds_per_step.map("{:.3g}".format),
        "speed-up": frame.speedup.map("{:.2f}×".format), "GFLOP/s": seconds(frame.gflops),
        "of fp32 peak": frame.peak_fraction.map("{:.2f}".format),
    }))  # fmt: skip


def bf16(results: Path) -> str:
    frame = pd.read_csv(results / "bf16_forward.csv")
    return markdown(pd.DataFrame({
        "machine": frame.machine, "batch": frame.batch, "float32 s": frame.fp32_seconds.map("{:.2f}".format),
        "bf16 autocast s": frame.bf16_seconds.map("{:.2f}".format), "bf16 slowdown": frame.bf16_slowdown,
        "native bf16": frame.native_bf16,
    }))  # fmt: skip


def curve_rows(results: Path, name: str) -> pd.DataFrame:
    """A time-to-quality table with its protocol, ``lr_img``, ``batch_real``, accuracy ``cell`` and minutes."""
    frame = pd.read_csv(results / name)
    frame["protocol"] = frame.apply(evaluation_name, axis=1)
    config = frame.config.map(json.loads)
    frame["lr_img"] = config.map(lambda c: c["lr_img"])
    frame["batch_real"] = config.map(lambda c: c.get("batch_real", "–"))  # APM samples no real batch
    frame["cell"] = cells(frame.acc_mean, frame.acc_std)
    frame["minutes"] = (frame.condense_seconds / 60).map("{:.1f}".format)
    return frame


def curve_table(frame: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """One row per ``index`` value and snapshot iteration of :func:`curve_rows`, one accuracy column per
    evaluation protocol."""
    wide = frame.pivot_table(
        index=[*index, "iteration", "minutes"], columns="protocol", values="cell", aggfunc="last", sort=False
    ).reset_index()
    protocols = [f"accuracy ({p})" for p in wide.columns[len(index) + 2 :]]
    wide.columns = [*index, "iterations", "condensation min", *protocols]
    return wide.fillna("").sort_values("iterations", kind="stable")


def curve(results: Path) -> str:
    index = ["dataset", "method", "ipc", "condense_model", "lr_img", "batch_real"]
    table = curve_table(curve_rows(results, "condense_curve.csv"), index).rename(columns={"condense_model": "network"})
    return markdown(ordered(table, ["dataset", "method", "network"]))


def sweep(results: Path) -> str:
    """The sweep's rows with their validation accuracy: a setting is selected on that column only (rows
    without one were measured before it was recorded, and select nothing)."""
    frame = curve_rows(results, "condense_sweep.csv")
    if "val_acc_mean" not in frame.columns:
        frame["val_acc_mean"] = float("nan")
    index = ["dataset", "condense_model", "lr_img", "batch_real"]
    table = curve_table(frame, index)
    keys = frame[[*index, "iteration"]].itertuples(index=False, name=None)
    val = dict(zip(keys, frame.val_acc_mean, strict=True))
    table["validation"] = [
        "" if pd.isna(v := val.get(key)) else f"{v:.2f}"
        for key in table[[*index, "iterations"]].itertuples(index=False, name=None)
    ]
    table = table.sort_values(["condense_model", "batch_real", "lr_img"], kind="stable")
    return markdown(table.rename(columns={"condense_model": "network"}))


# ---- continual learning


def cl_rows(results: Path, name: str = "cl.csv") -> pd.DataFrame:
    """A CL table in display order, one row per case: where a case ran over 3 class orders and then over 5,
    the row over the most orders. ``cell`` is its final accuracy (no spread for a single class order)."""
    frame = ordered(one_row_per_case(pd.read_csv(results / name)), ["benchmark", "strategy"])
    frame["cell"] = cells(frame.final_acc_mean, frame.final_acc_std.where(frame.n_orders > 1))
    return frame


def cl(results: Path) -> str:
    frame = cl_rows(results)
    several = frame.n_orders > 1
    return markdown(pd.DataFrame({
        "benchmark": frame.benchmark, "strategy": frame.strategy, "buffer": frame.buffer,
        "mem/class": frame.mem_per_class, "images held": frame.memory_images, "orders": frame.n_orders,
        "final acc": frame.cell, "avg incremental": cells(frame.avg_incremental_acc,
                                                          frame.avg_incremental_acc_std.where(several)),
        "forgetting": cells(frame.forgetting, frame.forgetting_std.where(several)),
        "condense s": seconds(frame.condense_seconds), "train s": seconds(frame.train_seconds),
        "machine": frame.machine.map(machine),
    }))  # fmt: skip


def cl_margins(results: Path) -> str:
    """Each fp32 condensed buffer's final accuracy minus herding's, per benchmark, strategy and memory where
    herding ran, on the class orders both ran (:func:`cl_nas.cl.analysis.margin_over_herding`)."""
    every = pd.read_csv(results / "cl.csv")
    every = every[every.augment.isna()]
    frame = cl_rows(results)
    fp32 = frame.buffer.map(lambda b: parse_buffer(b).precision == "fp32")
    frame = frame[fp32 & frame.augment.isna() & frame.strategy.isin(["replay", "gdumb", "er-ace"])]
    case = ["benchmark", "strategy", "mem_per_class"]
    present = set(frame.buffer) - BASELINE_BUFFERS
    condensed = [b for b in dict.fromkeys([*ORDER["buffer"], *frame.buffer]) if b in present]  # buffers' order
    rows = []
    for (benchmark, strategy, mem), group in frame.groupby(case, sort=False):
        own = group[group.buffer == "herding"]
        if own.empty:
            continue
        herding = herding_rows(every, {"benchmark": benchmark, "strategy": strategy, "mem_per_class": mem})
        shown = f"{own.final_acc_mean.iloc[0]:.2f} ({own.n_orders.iloc[0]})"
        row = {"benchmark": benchmark, "strategy": COLUMN_NAME.get(strategy, strategy), "mem/class": mem,
               "herding": shown}  # fmt: skip
        for buffer in condensed:
            mine = group[group.buffer == buffer]
            margin = margin_over_herding(mine.iloc[0].to_dict(), herding) if len(mine) else None
            row[f"{buffer} − herding"] = margin_cell(margin)
        rows.append(row)
    return markdown(pd.DataFrame(rows))


def margin_cell(margin: Margin | None) -> str:
    """``+d (buffer vs herding, k orders)``; where the orders cannot be matched, each side's count."""
    if margin is None:
        return "–"
    if margin.orders is not None:
        return f"{margin.difference:+.2f} ({margin.buffer_acc:.2f} vs {margin.herding_acc:.2f}, {margin.orders})"
    return (f"{margin.difference:+.2f} ({margin.buffer_acc:.2f} over {margin.buffer_orders} vs "
            f"{margin.herding_acc:.2f} over {margin.herding_orders})")  # fmt: skip


def cl_ablation(results: Path) -> str:
    """The ablation's rows beside the same cases trained without augmentation in ``cl.csv``."""
    ablation = cl_rows(results, "cl_ablation.csv")
    base = cl_rows(results)
    key = ["benchmark", "strategy", "mem_per_class", "buffer"]
    base = base[base.augment.isna()].merge(ablation[key].drop_duplicates(), on=key)
    frame = pd.concat([base.assign(training="no augmentation (cl.csv)"),
                       ablation.assign(training="augmented: " + ablation.augment + " (cl_ablation.csv)")])  # fmt: skip
    index = ["benchmark", "strategy", "training"]
    wide = frame.pivot_table(index=index, columns="buffer", values="cell", aggfunc="last", sort=False).reset_index()
    means = frame.pivot_table(index=index, columns="buffer", values="final_acc_mean", aggfunc="last", sort=False)
    if "herding" in means:
        for buffer in [b for b in means.columns if b not in BASELINE_BUFFERS]:
            wide[f"{buffer} − herding"] = (means[buffer] - means.herding).map(signed).to_numpy()
    wide["strategy"] = wide.strategy.map(lambda s: COLUMN_NAME.get(s, s))
    return markdown(wide.fillna("–"))


def cl_offline(results: Path) -> str:
    frame = ordered(margins(results), ["benchmark", "buffer"])
    return markdown(pd.DataFrame({
        "benchmark": frame.benchmark, "buffer": frame.buffer, "GDumb-style final": frame.cl_acc.map(pm),
        "offline, IPC 10": frame.offline_acc.map(pm),
        "GDumb-style − herding": frame.cl_margin.map(margin_cell),
        "offline − herding": frame.offline_minus_herding.map(signed),
    }))  # fmt: skip


def cl_task_local(results: Path) -> str:
    """Sets condensed one class group at a time and all at once, with the matching offline and CL rows."""
    local = pd.read_csv(results / "cl_task_local.csv").assign(eval_augment="dsa")  # the script evaluates with DSA
    offline, in_cl = quality_rows(results), cl_rows(results)
    rows = []
    for r in local.itertuples(index=False):
        condensed = "all classes at once" if r.tasks == 1 else f"one of {r.tasks} class groups at a time"
        rows.append([f"{r.method}, {condensed}", options(r.command, r.method), evaluation_name(pd.Series(r._asdict())),
                     pm(r.acc_mean, r.acc_std), round(r.condense_seconds), machine(r.machine)])  # fmt: skip
    for method, dataset, ipc in local[["method", "dataset", "ipc"]].drop_duplicates().itertuples(index=False):
        same = (offline.method == method) & (offline.dataset == dataset) & (offline.ipc == ipc)
        for r in offline[same & (offline.family == "convnet")].itertuples(index=False):
            rows.append([f"{method}, all classes at once (condense_quality.csv)", options(r.command, method),
                         r.protocol, r.cell, round(r.condense_seconds), machine(r.machine)])  # fmt: skip
        on_dataset = in_cl.benchmark.map(lambda b: benchmark_spec(b).dataset) == dataset
        same = on_dataset & (in_cl.buffer == method) & (in_cl.strategy == "gdumb") & (in_cl.mem_per_class == ipc)
        for r in in_cl[same].itertuples(index=False):
            rows.append([f"{method}, one experience at a time ({r.benchmark}, cl.csv)",
                         cl_options(r.command, r.benchmark, method),
                         f"GDumb-style, {r.epochs} epochs", r.cell, round(r.condense_seconds),
                         machine(r.machine)])  # fmt: skip
    return markdown(pd.DataFrame(rows, columns=["set", "options", "evaluation", "accuracy", "condense s", "machine"]))


def cl_bytes(results: Path) -> str:
    """Reduced-precision buffers beside the fp32 buffers of their method and herding, at equal bytes."""
    frame = cl_rows(results)
    reduced = frame[frame.buffer.map(lambda b: parse_buffer(b).precision != "fp32")]
    tables = []
    for benchmark, group in reduced.groupby("benchmark", sort=False):
        fp32 = {"herding"} | {parse_buffer(b).method for b in group.buffer}
        same = (frame.benchmark == benchmark) & frame.buffer.isin(fp32) & frame.augment.isna()
        rows = pd.concat([frame[same], group])
        rows = rows.assign(cell=rows.cell + " (" + rows.n_orders.astype(str) + ")")  # (class orders)
        # the budget is mem/class fp32 exemplars: rows recorded before labels counted hold 100 bytes fewer
        wide = rows[rows.mem_per_class.isin(group.mem_per_class)].pivot_table(
            index=["buffer", "mem_per_class", "memory_images"], columns="strategy", values="cell",
            aggfunc="last", sort=False,
        ).reset_index()  # fmt: skip
        strategies = [COLUMN_NAME.get(s, s) for s in wide.columns[3:]]
        wide.columns = ["buffer", "mem/class", "images held", *strategies]
        tables.append(f"{benchmark}:\n\n" + markdown(wide.fillna("not run")))
    return "\n\n".join(tables)


def cl_machines(results: Path) -> str:
    """Cases run again on another machine (``cl_machines.csv``) beside their ``cl.csv`` row: same settings
    (``config_id``), same class orders; the gap is the largest difference in one order's final accuracy."""
    study = pd.read_csv(results / "cl.csv").set_index(CL_KEY)
    rows = []
    for rerun in pd.read_csv(results / "cl_machines.csv").to_dict("records"):
        first = study.loc[tuple(rerun[k] for k in CL_KEY)]
        gap = max(abs(a - b) for a, b in zip(final_per_order(first), final_per_order(rerun), strict=True))
        rows.append([rerun["benchmark"], COLUMN_NAME.get(rerun["strategy"], rerun["strategy"]), rerun["buffer"],
                     rerun["mem_per_class"], machine(first.machine), pm(first.final_acc_mean, first.final_acc_std),
                     machine(rerun["machine"]), pm(rerun["final_acc_mean"], rerun["final_acc_std"]),
                     f"{gap:.2f}"])  # fmt: skip
    columns = ["benchmark", "strategy", "buffer", "mem/class", "machine", "final acc", "rerun on", "rerun final acc",
               "largest gap in one order"]  # fmt: skip
    return markdown(pd.DataFrame(rows, columns=columns))


# ---- proxy NAS


def nas_results(results: Path) -> list[ProxyResult]:
    truth, runs = read_scores_table(results / "nas_scores.csv", NAS_DATASET)
    return sorted(evaluate(truth, runs), key=lambda r: (r.run.name == "gt-reseed", r.run.name, r.run.seed))


def nas_label(result: ProxyResult, epochs: bool = True) -> str:
    run = result.run
    if run.name == "gt-reseed":
        return f"full data retrained, seed {run.seed} ({result.correlation.n_arch} architectures)"
    return f"{run.name}, IPC {run.ipc}" + (f", {run.epochs} epoch{'s' * (run.epochs != 1)}" if epochs else "")


def nas_runs(results: Path) -> str:
    rows = []
    for r in nas_results(results):
        stats = [pm(getattr(r.correlation, field), digits=digits) for field, digits in NAS_STATS.values()]
        speedup = "–" if math.isnan(r.speedup) else f"{r.speedup:.1f}×"
        rows.append([nas_label(r), r.run.seed, *stats, speedup, machine(r.run.machine)])
    return markdown(pd.DataFrame(rows, columns=["proxy", "seed", *NAS_STATS, "speed-up", "machine"]))


def nas_summary(results: Path) -> str:
    """Each proxy's statistics as mean ± std over its seeds (:func:`cl_nas.utils.mean_std`), Spearman's per seed."""
    grouped: dict[str, list[ProxyResult]] = {}
    for r in nas_results(results):
        grouped.setdefault(nas_label(r, epochs=False), []).append(r)
    rows = []
    for label, group in grouped.items():
        stats = []
        for field, digits in NAS_STATS.values():
            mean, std = mean_std(getattr(r.correlation, field) for r in group)
            stats.append(pm(mean, std if len(group) > 1 else None, digits))
        if len(group) > 1:
            stats[0] += " (" + ", ".join(f"{r.correlation.spearman:.3f}" for r in group) + ")"
        rows.append([label, len(group), *stats])
    return markdown(pd.DataFrame(rows, columns=["proxy", "seeds", *NAS_STATS]))


BLOCKS: dict[str, Callable[[Path], str]] = {
    "headline": headline, "parity": parity, "quality": quality, "quality-learned": quality_learned,
    "cross-architecture": cross_architecture, "speed": speed, "bf16": bf16, "curve": curve, "sweep": sweep,
    "cl": cl, "cl-margins": cl_margins, "cl-ablation": cl_ablation, "cl-offline": cl_offline,
    "cl-task-local": cl_task_local, "cl-bytes": cl_bytes, "cl-machines": cl_machines, "nas-runs": nas_runs,
    "nas-summary": nas_summary,
}  # fmt: skip


# ---- the documents


def documents(root: Path = REPO) -> list[Path]:
    """The files whose generated blocks this script writes (those that exist)."""
    paths = [root / "README.md", root / "benchmarks" / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [p for p in paths if p.is_file()]


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every generated block rewritten; ``ValueError`` for an unknown or unclosed block."""
    opened = re.findall(r"<!-- begin: ([\w-]+) -->", text)
    matched = [m.group("name") for m in BLOCK.finditer(text)]
    if opened != matched:
        raise ValueError(f"generated blocks without their end marker: {sorted(set(opened) - set(matched))}")
    unknown = sorted(set(matched) - set(BLOCKS))
    if unknown:
        raise ValueError(f"unknown generated blocks {unknown}; known: {', '.join(BLOCKS)}")
    return BLOCK.sub(lambda m: m.group(1) + BLOCKS[m.group("name")](results) + "\n" + m.group(4), text)


def stale(root: Path = REPO, results: Path = RESULTS) -> list[str]:
    """``file: block`` for every generated block whose committed text differs from what :func:`render` writes."""
    found = []
    for path in documents(root):
        text = path.read_text()
        fresh = {m.group("name"): m.group("body") for m in BLOCK.finditer(render(text, results))}
        found += [f"{path.relative_to(root)}: {m.group('name')}" for m in BLOCK.finditer(text)
                  if m.group("body") != fresh[m.group("name")]]  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the generated tables of README.md and docs/*.md.")
    parser.add_argument("--check", action="store_true", help="only name the stale blocks; exit 1 if there are any")
    args = parser.parse_args(argv)
    if args.check:
        blocks = stale()
        for block in blocks:
            print(f"stale: {block} (rewrite with: python benchmarks/report.py)")
        return 1 if blocks else 0
    for path in documents():
        path.write_text(render(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
