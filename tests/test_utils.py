import math
import os
import platform
import stat
import warnings
from pathlib import Path

import pytest
import torch

from cl_nas.condense import DMCondenser
from cl_nas.registry import Registry
from cl_nas.results import ResultsTable
from cl_nas.utils import (
    atomic_write,
    check_positive_int,
    check_writable,
    check_writable_folder,
    machine_description,
    mean_std,
    native_bf16,
    resolve_bf16,
)


def test_bf16_defaults_to_what_the_cpu_does_natively():
    native = native_bf16("cpu")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and platform.machine() == "x86_64":  # the kernel's own view of the ISA agrees
        flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
        assert native == bool(flags & {"avx512_bf16", "amx_bf16"})
    assert resolve_bf16(None, "cpu") is native
    assert resolve_bf16(False, "cpu") is False
    condenser = DMCondenser(iterations=1, device="cpu")
    assert condenser.bf16 is native and condenser.get_config()["bf16"] is native  # the key records the resolved value


def test_explicit_bf16_is_honoured_and_warns_only_where_it_is_emulated():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_bf16(True, "cpu") is True
    emulated = [w for w in caught if "no native bf16" in str(w.message)]
    assert len(emulated) == (0 if native_bf16("cpu") else 1)
    if emulated:
        assert "10x slower than float32" in str(emulated[0].message)


def test_machine_description_names_the_vector_isa():
    text = machine_description()
    if not torch.cuda.is_available():
        assert text.endswith(torch.backends.cpu.get_cpu_capability() + ("+BF16" if native_bf16("cpu") else ""))
        assert f"{torch.get_num_threads()} threads" in text


def test_check_positive_int_rejects_bools_floats_and_non_positive_values():
    check_positive_int("n", 3)
    check_positive_int("n", None, optional=True)
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=f"n must be a positive integer, got {bad!r}"):
            check_positive_int("n", bad)
    with pytest.raises(ValueError, match="n must be a positive integer or None, got 0"):
        check_positive_int("n", 0, optional=True)


def test_mean_std_drops_non_finite_values_and_reports_the_sample_sd():
    assert mean_std([1.0, 3.0, math.nan, math.inf]) == (2.0, math.sqrt(2.0))  # ddof=1: sqrt(2), not 1
    assert mean_std(iter([5.0])) == (5.0, 0.0)
    assert all(math.isnan(v) for v in mean_std([math.nan])) and all(math.isnan(v) for v in mean_std([]))


def test_atomic_write_gives_the_umask_mode_and_leaves_no_temporary_file(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write(tmp_path / "sub" / "table.csv", lambda tmp: Path(tmp).write_text("a,b\n"))
    finally:
        os.umask(old)
    assert path.read_text() == "a,b\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600
    assert os.listdir(path.parent) == ["table.csv"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["state.json"]


def test_registry_refuses_duplicates_and_suggests_the_closest_name():
    shapes: Registry[type] = Registry("shape")

    @shapes.register("Square")
    class Square:
        def __init__(self, side: int):
            self.side = side

    assert shapes.get("square") is Square and "SQUARE" in shapes and shapes.names() == ["square"]
    assert shapes.build("square", 3).side == 3
    with pytest.raises(ValueError, match="shape 'square' is already registered"):
        shapes.register("square")(type("Other", (), {}))
    with pytest.raises(ValueError, match=r"^unknown shape 'sqare'; did you mean 'square'\? available: square$"):
        shapes.get("sqare")
    with pytest.raises(ValueError, match=r"^unknown shape 'circle'; available: square$"):
        shapes.get("circle")


def test_output_checks_create_nothing_and_accept_new_folders(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper" / "out.pt", "--out") == tmp_path / "new" / "deeper" / "out.pt"
    assert check_writable_folder(tmp_path / "new", "--runs") == tmp_path / "new"
    assert list(tmp_path.iterdir()) == []  # probed, not created
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_writable_folder(tmp_path / "file", "--runs")
    with pytest.raises(ValueError, match="is a folder, not a file"):
        check_writable(tmp_path, "--out")


class StoppedDM(DMCondenser):
    """DM stopped by Ctrl-C in its third iteration, after checkpointing the first two."""

    def step(self, run, iteration):
        if iteration == 2:
            raise KeyboardInterrupt
        return super().step(run, iteration)


def test_every_writer_gives_files_the_umask_mode(digits, tmp_path):
    old = os.umask(0o022)
    try:
        table = ResultsTable(tmp_path / "table.csv", ["name", "value"], ["name"])
        table.append({"name": "a", "value": 1.0})
        options = {"iterations": 5, "batch_real": 4, "model": "convnet:width=8,depth=1", "checkpoint_every": 1}
        with pytest.raises(KeyboardInterrupt):
            StoppedDM(**options, checkpoint_dir=tmp_path / "ckpt").condense(digits.train, 1, seed=0)
        syn = DMCondenser(**{**options, "iterations": 1}).condense(digits.train, 1, seed=0)
        written = [tmp_path / "table.csv", *(tmp_path / "ckpt").glob("*.ckpt"), syn.save(tmp_path / "set.pt")]
        written.append(syn.save_png(tmp_path / "set.png"))
    finally:
        os.umask(old)
    assert len(written) == 4
    assert {stat.S_IMODE(path.stat().st_mode) for path in written} == {0o644}
