"""Continual-learning metrics from Avalanche's evaluation results, in percent.

After experience ``k`` the runner evaluates on the test experiences ``0..k`` (the classes seen so far)
and keeps Avalanche's per-experience accuracies and its stream accuracy (over all test samples of the
seen classes). From those records, one per experience:

* final average accuracy: the stream accuracy after the last experience (all classes seen);
* average incremental accuracy: the mean of the stream accuracies after every experience;
* forgetting: Avalanche's stream forgetting, the mean over experiences ``j`` before the last of
  (accuracy on ``j`` right after training on it) - (accuracy on ``j`` at the end), computed with
  Avalanche's ``Forgetting`` metric from the saved records, so a resumed run, whose live metric
  objects started empty, reports the same value as an uninterrupted one.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from avalanche.evaluation.metrics.forgetting_bwt import Forgetting

_EXP = re.compile(r"^Top1_Acc_Exp/eval_phase/[^/]+/(?:Task\d+/)?Exp(\d+)$")
_STREAM = re.compile(r"^Top1_Acc_Stream/eval_phase/[^/]+(?:/Task\d+)?$")
LIVE_FORGETTING = "StreamForgetting/eval_phase/test_stream"


def parse_eval(metrics: Mapping[str, Any], n_experiences: int) -> tuple[float, list[float]]:
    """``(stream accuracy, [accuracy on test experience j for j < n_experiences])`` in percent, from
    ``strategy.eval(test_stream[:n_experiences])``'s result."""
    stream = [100.0 * float(v) for k, v in metrics.items() if _STREAM.match(k)]
    per_exp = {int(m.group(1)): 100.0 * float(v) for k, v in metrics.items() if (m := _EXP.match(k))}
    if len(stream) != 1 or any(j not in per_exp for j in range(n_experiences)):
        raise ValueError(f"no accuracy for {n_experiences} experiences in the evaluation results ({sorted(metrics)})")
    return stream[0], [per_exp[j] for j in range(n_experiences)]


def forgetting(records: Sequence[Mapping[str, Any]]) -> float:
    """Avalanche's stream forgetting (percentage points) over per-experience records; NaN with one record."""
    metric = Forgetting()
    for k, record in enumerate(records):
        metric.update_initial(k, record["exp_acc"][k])
    for j, acc in enumerate(records[-1]["exp_acc"][:-1]):
        metric.update_last(j, acc)
    values = list(metric.result().values())
    return statistics.fmean(values) if values else math.nan


def summarize(records: Sequence[Mapping[str, Any]], *, incremental: bool = True) -> dict[str, float]:
    """Final accuracy, average incremental accuracy and forgetting of one run (NaN where not ``incremental``)."""
    if not records:
        raise ValueError("no experience records to summarize")
    return {
        "final_acc": records[-1]["stream_acc"],
        "avg_incremental_acc": statistics.fmean(r["stream_acc"] for r in records) if incremental else math.nan,
        "forgetting": forgetting(records) if incremental else math.nan,
    }
