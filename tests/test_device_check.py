"""scripts/device_check.sh: its CPU half, the same commands at toy budgets on digits."""

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # starts the script, which starts the benchmarks

REPO = Path(__file__).resolve().parents[1]


def test_device_check_runs_its_commands_on_the_cpu(tmp_path):
    env = {**os.environ, "QUICK": "1", "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(REPO / "scripts" / "device_check.sh"), "cpu"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    curve = pd.read_csv(tmp_path / "condense_curve.csv")
    assert sorted(curve["iteration"]) == [2, 4] and curve["protocol"].eq("dm@2ep").all()
    quality = pd.read_csv(tmp_path / "condense_quality.csv")
    assert sorted(quality["method"]) == ["apm", "dm", "random"]
    assert quality["labels"].eq("teacher-logits").all() and quality["teacher"].nunique() == 1
    assert "passed" in (tmp_path / "device_check_pytest.log").read_text()
