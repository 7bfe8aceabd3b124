"""Results tables: CSV files that grow one finished run at a time, so long studies resume.

Each row is written as soon as its run finishes (atomically: temporary file, then rename),
so a killed benchmark loses at most the run in progress, and rerunning the same command
skips every run whose key columns are already in the table. Several processes may append to
one table: each append takes a file lock and merges with the rows on disk, so none is lost.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cl_nas.utils import atomic_write, check_writable, exclusive_lock


class ResultsTable:
    """A CSV of result rows identified by ``key_columns``; ``columns`` fixes the column order."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], key_columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)
        self.key_columns = list(key_columns)
        missing = set(self.key_columns) - set(self.columns)
        if missing:
            raise ValueError(f"key columns {sorted(missing)} are not among the table's columns")
        self.frame = pd.DataFrame(columns=self.columns)
        check_writable(self.path, "results table")  # before any run, not after the first one
        self._read()

    def _read(self) -> None:
        """Load the rows on disk (those of other processes included); a file that is not a table of these key
        columns raises ``ValueError`` (one line) rather than being overwritten."""
        if not self.path.is_file():
            return
        try:
            frame = pd.read_csv(self.path)
        except pd.errors.EmptyDataError:
            return  # an empty file: no rows yet
        except ValueError as err:  # pandas' parser errors and undecodable bytes
            raise ValueError(
                f"{str(self.path)!r} is not a CSV results table ({type(err).__name__}); "
                "choose another path for the table, or move that file away"
            ) from None
        missing = [c for c in self.key_columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{str(self.path)!r} is not a results table of this study: it has no column {', '.join(missing)}; "
                "choose another path for the table, or move that file away"
            )
        self.frame = frame
        extra = [c for c in self.frame.columns if c not in self.columns]
        self.columns += extra  # keep columns written by other versions rather than drop data
        for column in self.columns:  # rows written before a column existed leave it empty
            if column not in self.frame.columns:
                self.frame[column] = float("nan")

    def _key(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(_key_text(row[c]) for c in self.key_columns)

    def _row_keys(self) -> list[tuple[str, ...]]:
        """The key of every row in :attr:`frame`, in order."""
        return [self._key(r) for r in self.frame[self.key_columns].to_dict("records")]

    def has(self, **key: Any) -> bool:
        """Whether a row with these key-column values is already recorded."""
        return self._key(key) in self._row_keys()

    def append(self, row: Mapping[str, Any]) -> None:
        """Add (or replace, by key) one row and rewrite the file atomically."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"row has columns {sorted(unknown)} that the table does not define")
        with exclusive_lock(self.path.with_name(self.path.name + ".lock")):
            self._read()  # another process may have appended since this table was read
            key = self._key(row)
            keep = [k != key for k in self._row_keys()]
            self.frame = pd.concat([self.frame[keep], pd.DataFrame([row])], ignore_index=True)[self.columns]
            atomic_write(self.path, lambda tmp: self.frame.to_csv(tmp, index=False))


def _key_text(value: Any) -> str:
    """A key value as text that survives a CSV round trip: a missing value (None or NaN) is empty, and a
    whole float (pandas reads an integer column with gaps as float) prints as the integer."""
    if pd.isna(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
