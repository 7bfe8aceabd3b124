"""Shared fixtures: real data from ../shared/data (or $CL_NAS_DATA), loaded once per session.

Tests that need the real datasets take the ``data_root`` fixture (or one built on it, like ``mnist``):
without a data root they are skipped, with a message naming ``CL_NAS_DATA``, so a fresh clone runs the
rest of the suite. Tests that start other processes (``subprocess``, ``multiprocessing``) are marked
``slow``: ``pytest -m "not slow"`` leaves them out for a quick run; CI runs everything.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import cl_nas  # noqa: F401  (first: makes torchvision importable on the CPU torch)
from cl_nas.data import DATA_ENV_VAR, load_dataset

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
SHARED_DATA = REPO.parent / "shared" / "data"

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get(DATA_ENV_VAR) or SHARED_DATA)
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST not found under {root}: set {DATA_ENV_VAR} to a data folder to run this test")
    return root


@pytest.fixture(scope="session")
def device() -> str:
    """Where the tests that take a device run: ``$CL_NAS_TEST_DEVICE``, else ``cpu``
    (``scripts/device_check.sh`` sets ``cuda``)."""
    return os.environ.get("CL_NAS_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def mnist(data_root):
    return load_dataset("mnist", data_root)


BenchmarkRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], object]:
    """``load_benchmark("nas.py")``: a script of ``benchmarks/`` imported as a module, to call its functions."""

    if str(BENCHMARKS) not in sys.path:  # the scripts import their shared module, benchmarks/_common.py
        sys.path.insert(0, str(BENCHMARKS))

    def load(script: str):
        spec = importlib.util.spec_from_file_location(Path(script).stem, BENCHMARKS / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as an import does: dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def run_benchmark() -> BenchmarkRunner:
    """``run_benchmark("condense.py", *args, cwd=DIR)``: a script of ``benchmarks/`` in a fresh, one-thread
    interpreter (as users run them), its output captured as text."""

    def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
        argv = [sys.executable, str(BENCHMARKS / script), *args]
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)

    return run
