"""The CL study's margins over herding, and condensed memory beside offline condensation.

Reads the tables of ``benchmarks/`` (``cl.csv``, ``condense_quality.csv``, ``condense_curve.csv``): sets each
GDumb-style row of ``cl.csv`` (a fresh network trained on the memory alone, so the last experience's accuracy
is that of a network trained from scratch on 10-class memory) beside the same method's offline result (the
whole training set condensed at once, same images per class, the CL learner's network under the ``fast``
protocol), with both margins over herding, and DM's offline ceiling. Class-balanced random is the offline
``random``. Where a case ran more than once (3 class orders, then 5), the row over the most orders is used.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cl_nas.cl.buffers import parse_buffer
from cl_nas.cl.scenarios import benchmark_spec

OFFLINE_NAME = {"class-balanced": "random"}


CASE = ["benchmark", "strategy", "buffer", "mem_per_class", "model", "epochs", "augment"]


def one_row_per_case(cl: pd.DataFrame) -> pd.DataFrame:
    """``cl.csv``'s rows, one per case in table order: where a case ran over 3 class orders and then over 5,
    the row over the most orders."""
    most_orders = cl.sort_values("n_orders", kind="stable").drop_duplicates(CASE, keep="last").index
    return cl.loc[sorted(most_orders)]


def final_per_order(row: Mapping[str, Any]) -> list[float] | None:
    """A row's final accuracy per class order (order ``k`` first drawn from seed ``k``); None for rows recorded
    before the table kept them."""
    cell = row.get("final_acc_per_order")
    return [float(a) for a in cell.split()] if isinstance(cell, str) and cell.strip() else None


@dataclass(frozen=True)
class Margin:
    """A buffer's final accuracy minus herding's: on the class orders both ran (``orders`` of them), or, where
    that cannot be told (rows recorded without per-order accuracies), on their means over ``buffer_orders``
    and ``herding_orders`` orders (``orders`` None)."""

    difference: float
    buffer_acc: float
    herding_acc: float
    orders: int | None
    buffer_orders: int
    herding_orders: int


def margin_over_herding(row: Mapping[str, Any], herding: pd.DataFrame) -> Margin | None:
    """``row``'s margin over the herding rows of its case (``herding``: every recorded row, any number of
    orders): herding's row over as many orders, else the orders the two share (0 to k - 1) where both rows
    record them, else the two rows over the most orders, their means compared as they are."""
    if herding.empty:
        return None
    n = int(row["n_orders"])
    same = herding[herding.n_orders == n]
    if not same.empty:
        h = same.iloc[-1]
        return Margin(row["final_acc_mean"] - h.final_acc_mean, row["final_acc_mean"], h.final_acc_mean, n, n, n)
    mine = final_per_order(row)
    for h in herding.sort_values("n_orders", ascending=False).to_dict("records"):
        theirs = final_per_order(h)
        if mine and theirs:
            k = min(len(mine), len(theirs))
            a, b = statistics.fmean(mine[:k]), statistics.fmean(theirs[:k])
            return Margin(a - b, a, b, k, n, int(h["n_orders"]))
    h = herding.sort_values("n_orders", kind="stable").iloc[-1]
    return Margin(row["final_acc_mean"] - h.final_acc_mean, row["final_acc_mean"], h.final_acc_mean, None, n,
                  int(h.n_orders))  # fmt: skip


def offline_accuracy(results: Path, mem_per_class: int, protocol: str) -> pd.Series:
    """Offline accuracy in ``condense_quality.csv`` by (dataset, method, evaluation network), at
    ``mem_per_class`` images per class under ``protocol``, averaged over condensation seeds."""
    offline = pd.read_csv(results / "condense_quality.csv")
    offline = offline[(offline.ipc == mem_per_class) & (offline.protocol == protocol)]
    return offline.groupby(["dataset", "method", "model"]).acc_mean.mean()


def herding_rows(cl: pd.DataFrame, row: Mapping[str, Any]) -> pd.DataFrame:
    """Every herding row of ``row``'s benchmark, strategy and memory in ``cl`` (any number of class orders)."""
    case = (cl.benchmark == row["benchmark"]) & (cl.strategy == row["strategy"])
    return cl[case & (cl.mem_per_class == row["mem_per_class"]) & (cl.buffer == "herding")]


def margins(results: Path, mem_per_class: int = 10, protocol: str = "fast") -> pd.DataFrame:
    """One row per benchmark and fp32 buffer: CL (GDumb-style) and offline accuracy, each minus herding's.
    The CL margin is :func:`margin_over_herding` (on the class orders both ran; ``cl_margin`` keeps it whole,
    ``cl_orders`` is the buffer row's order count); the offline figure is the same method's, evaluated on the
    CL learner's network under ``protocol``."""
    every = pd.read_csv(results / "cl.csv")
    every = every[every.augment.isna()]
    cl = one_row_per_case(every)
    # fp32 buffers only: a reduced-precision one holds more images than the offline set it would be compared with
    full_precision = cl.buffer.map(lambda name: parse_buffer(name).precision == "fp32")
    cl = cl[(cl.strategy == "gdumb") & (cl.mem_per_class == mem_per_class) & full_precision]
    offline = offline_accuracy(results, mem_per_class, protocol)
    rows = []
    for r in cl.to_dict("records"):
        key = (benchmark_spec(r["benchmark"]).dataset, OFFLINE_NAME.get(r["buffer"], r["buffer"]), r["model"])
        margin = margin_over_herding(r, herding_rows(every, r))
        rows.append({"benchmark": r["benchmark"], "buffer": r["buffer"], "cl_acc": r["final_acc_mean"],
                     "cl_orders": int(r["n_orders"]), "cl_margin": margin,
                     "cl_minus_herding": margin.difference if margin else float("nan"),
                     "offline_acc": offline.get(key)})  # fmt: skip
    table = pd.DataFrame(rows)
    herding = table[table.buffer == "herding"].set_index("benchmark").offline_acc
    table["offline_minus_herding"] = table.offline_acc - table.benchmark.map(herding)
    return table.round(2)


def ceiling(results: Path, mem_per_class: int = 10, protocol: str = "fast") -> pd.DataFrame:
    """DM's best offline point per dataset in ``condense_curve.csv``, against offline herding on the network
    the curve was condensed and evaluated with, under ``protocol``."""
    curve = pd.read_csv(results / "condense_curve.csv")
    curve = curve[(curve.method == "dm") & (curve.ipc == mem_per_class)]
    best = curve.loc[curve.groupby("dataset").acc_mean.idxmax()]
    offline = offline_accuracy(results, mem_per_class, protocol)
    nets = zip(best.dataset, best.condense_model, strict=True)
    best = best.assign(herding_acc=[offline.get((dataset, "herding", model)) for dataset, model in nets])
    best = best[["dataset", "iteration", "eval_epochs", "acc_mean", "herding_acc"]]
    best["dm_minus_herding"] = (best.acc_mean - best.herding_acc).round(2)
    return best.reset_index(drop=True)
