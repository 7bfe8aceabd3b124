"""scripts/nas_ground_truth_device.sh, its CPU half: the same steps on digits with tiny settings."""

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from cl_nas.utils import machine_description

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_device_script_runs_the_ground_truth_and_both_reports_on_a_cpu(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        "NAS_DEVICE": "cpu",
        "NAS_DATASET": "digits",
        "NAS_GT_ARCHS": "4",
        "NAS_GT_EPOCHS": "2",
        "NAS_GT_SEEDS": "0 1",
        "NAS_SEEDS": "0",
        "NAS_WORKERS": "2",
        "NAS_PROXY_FLAGS": "--proxy dm --ipc 2 --param iterations=5 --param batch_real=8 --epochs 2",
        "NAS_CONTROLS": "naswot",
        "NAS_EXTRA": "--space width=32 --space depth=1,2",
        "NAS_RUN": str(tmp_path / "run"),
        "NAS_RESULTS": str(tmp_path / "results"),
        "OUT": str(tmp_path / "out"),
    }
    done = subprocess.run([str(REPO / "scripts" / "nas_ground_truth_device.sh")], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "nas_ground_truth_device: ground truth done after" in done.stdout
    for report in ("dm", "dm-space"):
        copied = tmp_path / "out" / "digits" / report
        assert sorted(p.name for p in copied.iterdir()) == ["nas_correlation.csv", "nas_report.md", "nas_scores.csv"]
        assert (tmp_path / "results" / "digits" / report / "nas_scatter.png").is_file()
        text = (copied / "nas_report.md").read_text()
        assert "Ground truth: 4 architectures on the full training split: 4 at 2 epochs x 2 seeds" in text
        assert "Resolution: measured over the 4 architectures at the full fidelity (2 seeds)" in text
        scores = pd.read_csv(copied / "nas_scores.csv")
        assert set(scores.proxy) == {"dm", "naswot"} and set(scores.full_seeds) == {2}
        assert set(scores.full_machine) == {machine_description()}  # the machine that timed it, as on a GPU
    # the workers shared the ground-truth study: each of its 4 x 2 slots was trained by exactly one of them
    logs = [(tmp_path / "run" / f"ground-truth.worker{i}.log").read_text() for i in (1, 2)]
    assert sum(log.count("] complete ") for log in logs) == 4 * 2
