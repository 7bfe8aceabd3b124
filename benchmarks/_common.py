"""What the benchmark scripts share: their flags, how a condensed set is evaluated, a results row, errors.

The scripts that condense and evaluate (``condense.py``, ``cl_task_local.py``, ``time_to_quality.py``)
all take :func:`add_evaluation_flags` (how a set is evaluated) and :func:`add_condensation_flags` (what
is condensed where), build an :class:`Evaluation` from the parsed flags, and write rows made by
:meth:`Evaluation.record`. A flag added here reaches every one of them; an evaluation setting that a
script's table has no column for is refused there unless left at its default (:data:`RECORDED_AS`), so
that no row is recorded under a key that does not say how it was made.

:func:`run_script` parses, runs and reports bad input as one line and exit status 2, like ``cl-nas``
(:func:`cl_nas.cli.run_reporting_errors`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cl_nas  # noqa: F401  (first: makes torchvision importable next to the CPU torch)
from cl_nas.cli import run_reporting_errors
from cl_nas.data import DATA_ENV_VAR, DatasetSplits
from cl_nas.models import model_spec_string
from cl_nas.protocols import EvalSettings, evaluate_synthetic, protocol_names, resolve_protocol
from cl_nas.results import ResultsTable
from cl_nas.synthetic import SyntheticSet
from cl_nas.train import EvalResult
from cl_nas.utils import check_positive_int, machine_description, mean_std, parse_method_params, resolve_bf16

RESULTS = Path(__file__).resolve().parent / "results"
# evaluation flag (argparse dest) -> the results column that records it
RECORDED_AS = {"models": "model", "protocol": "protocol", "eval_epochs": "eval_epochs"}


def add_evaluation_flags(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """How a set is evaluated: fresh models trained on it over seeds, each tested once on the real test set."""
    p.add_argument("--models", nargs="+", default=["convnet"], help="evaluation model specs (one row each)")
    p.add_argument("--eval-seeds", type=int, default=3, help="models trained from scratch, one per seed")
    p.add_argument(
        "--protocol", default="fast", choices=protocol_names(),
        help="evaluation protocol: the epochs, augmentation and labels of a paper (cl_nas.protocols; default: fast)",
    )  # fmt: skip
    p.add_argument("--eval-epochs", type=int, default=None, help="override the protocol's training epochs")
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None,
        help="bf16 autocast (default: where the device has native bf16)",
    )  # fmt: skip
    return p


def add_condensation_flags(p: argparse.ArgumentParser, *, cache: bool = True) -> argparse.ArgumentParser:
    """What is condensed where: seed, condenser options, data, device and (with ``cache``) the set cache."""
    p.add_argument("--seed", type=int, default=0, help="condensation seed")
    p.add_argument(
        "--param", action="append", default=[], metavar="METHOD.KEY=VALUE", help="condenser option: dm.iterations=500"
    )
    p.add_argument("--data-root", default=None, help=f"dataset folder (default: ${DATA_ENV_VAR})")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    if cache:
        p.add_argument("--cache", default=None, help="synthetic-set cache folder (default: $CL_NAS_CACHE)")
    return p


def condenser_params(items: Sequence[str], method: str | None = None) -> dict[str, dict[str, Any]]:
    """``--param`` values per method; with ``method``, a bare ``KEY=VALUE`` is that method's option."""
    if method is not None:
        items = [item if "." in item.partition("=")[0] else f"{method}.{item}" for item in items]
    return parse_method_params(items)


@dataclass(frozen=True)
class Measured:
    """One evaluation: the accuracies over seeds and the wall time it took."""

    result: EvalResult
    seconds: float


@dataclass(frozen=True)
class Evaluation:
    """The evaluation flags, checked, for a table with ``columns``."""

    models: tuple[str, ...]
    seeds: int
    protocol: str
    epochs: int | None  # None: the protocol's own
    bf16: bool
    device: str
    columns: tuple[str, ...]

    @classmethod
    def from_args(cls, args: argparse.Namespace, columns: Collection[str]) -> Evaluation:
        """Raises ``ValueError`` for a bad value, or a non-default one that the table cannot record."""
        check_positive_int("--eval-seeds", args.eval_seeds)
        check_positive_int("--eval-epochs", args.eval_epochs, optional=True)
        defaults = add_evaluation_flags(argparse.ArgumentParser()).parse_args([])
        for dest, column in RECORDED_AS.items():
            if column not in columns and getattr(args, dest) != getattr(defaults, dest):
                raise ValueError(
                    f"--{dest.replace('_', '-')} cannot be recorded: the table has no {column!r} column; "
                    f"leave it at {getattr(defaults, dest)}"
                )
        models = tuple(model_spec_string(m) for m in args.models)
        bf16 = resolve_bf16(args.bf16, args.device)
        return cls(models, args.eval_seeds, args.protocol, args.eval_epochs, bf16, args.device, tuple(columns))

    def settings(self, dataset: str, model: str) -> EvalSettings:
        """What the protocol prescribes for ``dataset`` and ``model``."""
        return resolve_protocol(self.protocol, dataset, model, epochs=self.epochs)

    def key(self, dataset: str, model: str) -> dict[str, Any]:
        """The key columns of a row of ``dataset`` evaluated with ``model``, those the table has."""
        settings = self.settings(dataset, model)
        key = {
            "model": model, "protocol": settings.protocol, "labels": settings.labels,
            "eval_epochs": settings.epochs, "eval_augment": settings.augment,
        }  # fmt: skip
        return {column: value for column, value in key.items() if column in self.columns}

    def evaluate(self, syn: SyntheticSet, splits: DatasetSplits, model: str) -> Measured:
        """Train ``model`` on ``syn`` once per seed as the protocol says, test each on the test split (and
        measure it on the validation split when the table records ``val_acc_mean``)."""
        start = time.perf_counter()
        result = evaluate_synthetic(
            syn, splits.test, self.settings(splits.info.name, model), model=model, n_seeds=self.seeds,
            bf16=self.bf16, device=self.device, validation=splits.val if "val_acc_mean" in self.columns else None,
        )  # fmt: skip
        return Measured(result, time.perf_counter() - start)

    def record(
        self,
        table: ResultsTable,
        key: Mapping[str, Any],
        syn: SyntheticSet,
        splits: DatasetSplits,
        model: str,
        *,
        command: str,
        label: str,
    ) -> None:
        """:meth:`evaluate` ``syn``, append the row (``key``, then :meth:`row`) to ``table``, print a line
        starting with ``label``."""
        measured = self.evaluate(syn, splits, model)
        row = {**key, **self.row(measured, condense_seconds=syn.meta.wall_seconds, command=command)}
        table.append(row)
        seconds = f"condense {row['condense_seconds']} s, eval {row['eval_seconds']} s"
        print(f"{label}: {measured.result} ({seconds})", flush=True)

    def row(self, measured: Measured, *, condense_seconds: float, command: str) -> dict[str, Any]:
        """A results row's accuracy (mean, std, per seed), ``n_eval``, timings, ``machine`` and ``command``."""
        result = measured.result
        row = {
            "acc_mean": round(result.mean, 2), "acc_std": round(result.std, 2), "n_eval": self.seeds,
            "condense_seconds": round(condense_seconds, 1), "machine": machine_description(),
            "eval_seconds": round(measured.seconds, 1), "accuracies": " ".join(f"{a:.2f}" for a in result.accuracies),
            "command": command,
        }  # fmt: skip
        if "val_acc_mean" in self.columns:
            row["val_acc_mean"] = round(mean_std(result.val_accuracies)[0], 2)
        return row


def run_script(
    script: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, str], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` and call ``run(args, command)``, where ``command`` is the command line to record;
    return the exit status: 0, or 2 for bad input (reported as one line on stderr)."""
    name = Path(script).name
    command = f"python benchmarks/{name} " + " ".join(sys.argv[1:] if argv is None else argv)

    def handler(args: argparse.Namespace) -> int:
        run(args, command)
        return 0

    return run_reporting_errors(handler, parser.parse_args(argv), f"benchmarks/{name}")
