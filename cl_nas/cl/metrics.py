"""Continual-learning metrics and loggers, all Avalanche's, with values in percent.

:class:`RunMetrics` is the evaluation of one run: Avalanche's accuracy (per experience, over the stream,
and the accuracy matrix), forgetting and BWT (per experience and over the stream), timing and max-RAM
metrics from :mod:`avalanche.evaluation.metrics`, sent to any Avalanche loggers. After experience ``k``
the runner evaluates on the test experiences ``0..k`` and :meth:`RunMetrics.read` takes the values from
the metric objects themselves (no metric names are parsed):

* stream accuracy: ``StreamAccuracy`` over all test samples of the classes seen so far;
* accuracy on each seen test experience: the latest row of ``AccuracyMatrixPluginMetric``;
* forgetting and BWT: the live ``StreamForgetting`` / ``StreamBWT``;
* RAM: ``StreamMaxRAM``, the process's peak resident memory while evaluating (MB).

:func:`summarize` turns a run's per-experience records into its final accuracy, average incremental
accuracy (the mean of the stream accuracies after every experience: no Avalanche metric computes it)
and forgetting and BWT, computed by Avalanche's standalone ``Forgetting`` and ``BWT`` metrics from the
saved accuracies, so a resumed run, whose live metric objects started empty, reports what an
uninterrupted one does.

Loggers are Avalanche's, chosen by name (:data:`LOGGERS`): ``interactive`` (progress bars),
``text`` (``log.txt``), ``csv`` (``csv/``) and ``tensorboard`` (``tensorboard/``, when the tensorboard
package imports), each writing under the folder it is given.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from avalanche.evaluation.metrics import (
    BWT,
    AccuracyMatrixPluginMetric,
    ExperienceAccuracy,
    ExperienceBWT,
    ExperienceForgetting,
    Forgetting,
    StreamAccuracy,
    StreamBWT,
    StreamForgetting,
    StreamMaxRAM,
    timing_metrics,
)
from avalanche.logging import BaseLogger, CSVLogger, InteractiveLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin

from cl_nas.registry import Registry


def quiet_evaluator(*metrics: Any, loggers: Sequence[BaseLogger] = ()) -> EvaluationPlugin:
    """Avalanche's ``EvaluationPlugin`` of ``metrics`` reporting to ``loggers``, without its warning when there are
    none (the runner keeps its own records; a strategy trained inside another evaluates nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(*metrics, loggers=list(loggers))


class RunMetrics:
    """The Avalanche metrics of one run, and what the runner reads from them after each evaluation."""

    def __init__(self) -> None:
        self.stream_accuracy = StreamAccuracy()
        self.accuracy_matrix = AccuracyMatrixPluginMetric()
        self.forgetting = StreamForgetting()
        self.bwt = StreamBWT()
        self.ram = StreamMaxRAM(every=0.2)  # polled by a thread; stopping it waits up to one period
        self.metrics = [
            ExperienceAccuracy(), self.stream_accuracy, self.accuracy_matrix, ExperienceForgetting(), self.forgetting,
            ExperienceBWT(), self.bwt, *timing_metrics(epoch=True, experience=True, stream=True), self.ram,
        ]  # fmt: skip

    def evaluator(self, loggers: Sequence[BaseLogger] = ()) -> EvaluationPlugin:
        """An ``EvaluationPlugin`` of these metrics, reporting to ``loggers``."""
        return quiet_evaluator(*self.metrics, loggers=loggers)

    def read(self, seen: int) -> dict[str, Any]:
        """After ``strategy.eval(test_stream[:seen])``: stream accuracy and accuracy on each of the ``seen``
        test experiences, live forgetting and BWT (percent), and the process's peak RAM during the evaluation (MB)."""
        steps = self.accuracy_matrix.num_training_steps
        if steps is None:
            raise ValueError("no accuracy to read: the strategy has not trained yet")
        row = self.accuracy_matrix.result()[steps]
        return {
            "stream_acc": 100.0 * self.stream_accuracy.result(),
            "exp_acc": [100.0 * float(row[j]) for j in range(seen)],
            "live_forgetting": 100.0 * self.forgetting.result(),
            "live_bwt": 100.0 * self.bwt.result(),
            "ram_mb": float(self.ram.result()),
        }


def _from_records(metric: Forgetting, records: Sequence[Mapping[str, Any]]) -> float:
    """Feed Avalanche's standalone ``metric`` (Forgetting or BWT) each experience's accuracy right after
    training on it and at the end; its mean over the experiences before the last (NaN with one record)."""
    for k, record in enumerate(records):
        metric.update_initial(k, record["exp_acc"][k])
    for j, acc in enumerate(records[-1]["exp_acc"][:-1]):
        metric.update_last(j, acc)
    values = list(metric.result().values())
    return statistics.fmean(values) if values else math.nan


def summarize(records: Sequence[Mapping[str, Any]], *, incremental: bool = True) -> dict[str, float]:
    """Final accuracy, average incremental accuracy, forgetting and BWT of one run (NaN where not
    ``incremental``, e.g. joint training's single step)."""
    if not records:
        raise ValueError("no experience records to summarize")
    return {
        "final_acc": records[-1]["stream_acc"],
        "avg_incremental_acc": statistics.fmean(r["stream_acc"] for r in records) if incremental else math.nan,
        "forgetting": _from_records(Forgetting(), records) if incremental else math.nan,
        "bwt": _from_records(BWT(), records) if incremental else math.nan,
    }


# --- loggers -----------------------------------------------------------------------------------------
LoggerBuilder = Callable[[Path], BaseLogger]
LOGGERS: Registry[LoggerBuilder] = Registry("logger")


@LOGGERS.register("interactive")
def _interactive(folder: Path) -> BaseLogger:
    return InteractiveLogger()


@LOGGERS.register("text")
def _text(folder: Path) -> BaseLogger:
    folder.mkdir(parents=True, exist_ok=True)
    return TextLogger(open(folder / "log.txt", "a"))  # closed by close_loggers


@LOGGERS.register("csv")
def _csv(folder: Path) -> BaseLogger:
    return CSVLogger(log_folder=str(folder / "csv"))


@LOGGERS.register("tensorboard")
def _tensorboard(folder: Path) -> BaseLogger:
    from avalanche.logging import TensorboardLogger

    return TensorboardLogger(tb_log_dir=folder / "tensorboard")


def check_loggers(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` lower-cased, each a registered logger whose packages import; else ``ValueError``."""
    names = tuple(name.strip().lower() for name in names)
    for name in names:
        LOGGERS.get(name)
    if "tensorboard" in names:
        try:
            import tensorboard  # noqa: F401
        except ImportError as err:
            raise ValueError(
                f"the tensorboard logger needs the tensorboard package, which does not import here ({err}); "
                "install it (pip install tensorboard) or choose interactive, text or csv"
            ) from err
    return names


def build_loggers(names: Sequence[str], folder: str | Path) -> list[BaseLogger]:
    """The loggers ``names`` (checked by :func:`check_loggers`), writing under ``folder``."""
    return [LOGGERS.get(name)(Path(folder)) for name in check_loggers(names)]


def close_loggers(loggers: Sequence[BaseLogger]) -> None:
    """Flush and close the files the loggers hold."""
    for logger in loggers:
        if isinstance(logger, TextLogger):
            logger.file.close()
        elif isinstance(logger, CSVLogger):
            logger.close()
        elif hasattr(logger, "writer"):  # TensorboardLogger's SummaryWriter
            logger.writer.close()
