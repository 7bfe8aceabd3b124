"""ResultsTable: the resumable CSV that every benchmark writes, shared safely between processes."""

import multiprocessing

import pandas as pd
import pytest

from cl_nas.results import ResultsTable

COLUMNS = ["name", "seed", "value"]
KEY = ["name", "seed"]


def test_rows_persist_and_are_skipped_on_resume(tmp_path):
    path = tmp_path / "table.csv"
    ResultsTable(path, COLUMNS, KEY).append({"name": "a", "seed": 0, "value": 1.5})
    reopened = ResultsTable(path, COLUMNS, KEY)
    assert reopened.has(name="a", seed=0)
    assert not reopened.has(name="a", seed=1)


def test_append_replaces_the_row_with_the_same_key(tmp_path):
    table = ResultsTable(tmp_path / "table.csv", COLUMNS, KEY)
    table.append({"name": "a", "seed": 0, "value": 1.0})
    table.append({"name": "a", "seed": 0, "value": 2.0})
    frame = pd.read_csv(tmp_path / "table.csv")
    assert frame["value"].tolist() == [2.0]


def test_keys_read_back_from_csv_match_the_values_written(tmp_path):
    # a key column with a gap is read back as floats (10 -> 10.0, None -> NaN): still the same keys
    path = tmp_path / "table.csv"
    ResultsTable(path, COLUMNS, KEY).append({"name": "a", "seed": 10, "value": 1.0})
    ResultsTable(path, COLUMNS, KEY).append({"name": "b", "seed": None, "value": 1.0})
    reopened = ResultsTable(path, COLUMNS, KEY)
    assert reopened.has(name="a", seed=10) and reopened.has(name="b", seed=None)
    reopened.append({"name": "a", "seed": 10, "value": 2.0})
    reopened.append({"name": "b", "seed": None, "value": 3.0})
    assert sorted(pd.read_csv(path)["value"].tolist()) == [2.0, 3.0]


def _append_many(path, name, n):
    table = ResultsTable(path, COLUMNS, KEY)  # opened before the other process writes
    for seed in range(n):
        table.append({"name": name, "seed": seed, "value": float(seed)})


@pytest.mark.slow  # starts other processes
def test_processes_appending_to_one_table_lose_no_row(tmp_path):
    path = tmp_path / "table.csv"
    workers = [multiprocessing.Process(target=_append_many, args=(path, name, 25)) for name in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    frame = pd.read_csv(path)
    assert len(frame) == 75
    assert sorted(frame.groupby("name").size().tolist()) == [25, 25, 25]
