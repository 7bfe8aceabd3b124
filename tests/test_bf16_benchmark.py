"""benchmarks/bf16.py: the float32-vs-bf16 forward timing behind native_bf16, one row per machine."""

import pandas as pd
import pytest

from cl_nas.utils import machine_description, native_bf16

pytestmark = pytest.mark.slow  # every test here starts other processes


def test_one_row_per_machine_and_a_rerun_replaces_it(tmp_path, run_benchmark):
    args = ["--batch", "2", "--repeats", "1", "--out", str(tmp_path / "bf16.csv")]
    for _ in range(2):
        result = run_benchmark("bf16.py", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "bf16.csv")
    assert len(table) == 1 and table["batch"].tolist() == [2]
    row = table.iloc[0]
    assert row["fp32_seconds"] > 0 and row["bf16_seconds"] > 0
    assert abs(row["bf16_slowdown"] - row["bf16_seconds"] / row["fp32_seconds"]) < 0.05  # the ratio is rounded
    assert bool(row["native_bf16"]) == native_bf16("cpu")
    assert row["machine"].split(", ")[-1] == machine_description().split(", ")[-1]  # the ISA is recorded


def test_bad_input_is_rejected(tmp_path, run_benchmark):
    result = run_benchmark("bf16.py", "--batch", "0", "--out", str(tmp_path / "bf16.csv"), cwd=tmp_path)
    assert result.returncode != 0 and "--batch and --repeats must be positive" in result.stderr
    assert not (tmp_path / "bf16.csv").exists()
