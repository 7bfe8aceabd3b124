"""Killed commands resume: `cl-nas condense` after kill -9, SIGTERM and Ctrl-C, `cl-nas evaluate` after SIGTERM.

Each test runs the real command in a fresh one-thread interpreter, stops it in the middle, reruns the same
command line and compares with an uninterrupted run (bit-identical images on the same machine). The
kill tests of `cl-nas cl` and of a NAS worker are in test_cl_runner.py and test_nas_postgres.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cl_nas.synthetic import SyntheticSet

REPO = Path(__file__).resolve().parents[1]
# DM with a tiny network on digits, a checkpoint every 100 iterations: the signal comes once iteration 300 is
# saved, so 1700 iterations (several seconds even on a fast machine) are left to reach the process in time
ITERATIONS = 2000
SIGNAL_AFTER = 300
CONDENSE = [
    "condense", "--dataset", "digits", "--method", "dm", "--ipc", "2",
    "--param", f"iterations={ITERATIONS}", "--param", "batch_real=16", "--param", "model=convnet:width=8,depth=1",
]  # fmt: skip

pytestmark = pytest.mark.slow  # starts other processes


def _env(cache: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "CL_NAS_CACHE": str(cache)}


def _start(argv: list[str], cache: Path) -> subprocess.Popen:
    # SIGINT as in a terminal: a test runner started in the background may pass it on ignored
    return subprocess.Popen(
        [sys.executable, "-m", "cl_nas", *argv], env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _run(argv: list[str], cache: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cl_nas", *argv], env=_env(cache), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _wait_for_checkpoint(proc: subprocess.Popen, folder: Path, iteration: int) -> Path:
    """Wait until the condensation's checkpoint keeps ``iteration`` or later (written atomically: read it whole)."""
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, f"the run ended first: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no checkpoint of iteration {iteration} within 300 s"
        for path in folder.glob("*.ckpt"):
            try:
                if torch.load(path, weights_only=True)["iteration"] >= iteration:
                    return path
            except FileNotFoundError:  # replaced by the next checkpoint in between
                pass
        time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> SyntheticSet:
    folder = tmp_path_factory.mktemp("uninterrupted")
    _run([*CONDENSE, "--out", str(folder / "dm.pt")], folder / "cache")
    return SyntheticSet.load(folder / "dm.pt")


@pytest.mark.parametrize(
    "signum,status",
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 143), (signal.SIGINT, 130)],
    ids=["kill-9", "SIGTERM", "ctrl-c"],
)
def test_an_interrupted_condensation_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted, signum, status):
    cache, out = tmp_path / "cache", tmp_path / "dm.pt"
    argv = [*CONDENSE, "--out", str(out)]  # no resume option: checkpoints are on by default
    proc = _start(argv, cache)
    checkpoint = _wait_for_checkpoint(proc, cache / "checkpoints", SIGNAL_AFTER)
    started = time.monotonic()
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert time.monotonic() - started < 10 and not out.exists()
    saved = torch.load(checkpoint, weights_only=True)
    assert SIGNAL_AFTER <= saved["iteration"] < ITERATIONS
    if signum != signal.SIGKILL:
        name = signal.Signals(signum).name
        last = stderr.replace("\r", "\n").strip().splitlines()[-1]
        assert last.startswith(f"cl-nas condense: interrupted by {name}; {checkpoint} keeps iteration ")
        assert last.endswith(f"rerun the same command to resume: cl-nas {' '.join(argv)}")
        assert "Traceback" not in stderr

    start = time.monotonic()
    _run(argv, cache)  # the same command line
    second = time.monotonic() - start
    resumed = SyntheticSet.load(out)
    assert torch.equal(resumed.images, uninterrupted.images)
    assert not list((cache / "checkpoints").glob("*.ckpt"))  # removed once the result is written
    # the recorded time adds the interrupted process's condensation time to the second's
    assert saved["seconds"] < resumed.meta.wall_seconds < saved["seconds"] + second


def test_a_signal_saves_a_checkpoint_at_the_iteration_it_arrives(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "stderr.txt"
    argv = [*CONDENSE, "--param", "checkpoint_every=100000", "--out", str(tmp_path / "dm.pt")]  # none on schedule
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cl_nas", *argv], env=_env(cache), stdout=subprocess.DEVNULL, stderr=stderr
        )
        deadline = time.monotonic() + 300
        while not re.search(rf"\b([2-9]\d|\d{{3,}})/{ITERATIONS}\b", log.read_text()):  # 20 iterations done
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    (checkpoint,) = (cache / "checkpoints").glob("*.ckpt")
    assert 20 <= torch.load(checkpoint, weights_only=True)["iteration"] < ITERATIONS


def test_an_interrupted_evaluation_keeps_its_finished_seeds(tmp_path):
    cache, syn = tmp_path / "cache", tmp_path / "random.pt"
    _run(["condense", "--dataset", "digits", "--method", "random", "--ipc", "2", "--out", str(syn)], cache)
    argv = ["evaluate", str(syn), "--eval-seeds", "3", "--epochs", "300", "--model", "convnet:width=32"]
    reference = _run([*argv, "--no-checkpoint"], tmp_path / "other-cache").stdout.strip().splitlines()[-1]
    proc = _start(argv, cache)
    deadline = time.monotonic() + 300
    while not list((cache / "evaluations").glob("*.json")):  # the first seed is finished
        assert proc.poll() is None, f"the evaluation ended first: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the evaluation finished before the signal arrived")
    assert proc.returncode == 143
    last = stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("cl-nas evaluate: interrupted by SIGTERM; ") and " of 3 seeds finished, kept in " in last
    assert "Traceback" not in stderr
    resumed = _run(argv, cache).stdout.strip().splitlines()[-1]
    assert resumed == reference
    assert not list((cache / "evaluations").glob("*.json"))
