"""Every bad input is one line and an exit status (or one exception) before any computation starts.

Two tables: command lines (`cl-nas condense|evaluate|cl|nas` through `cl_nas.cli.main` in this process,
and `benchmarks/nas.py`), and library entry points. Each row checks the exit status or exception type,
that the error is one line naming the problem, with no traceback, within seconds, that no optimizer
stepped (no training or condensation started; a hook makes a step fail the row at once), and that no
file that existed before was changed or removed. The files the rows read are made once per module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import cl_nas.utils
from cl_nas.cl.condensed_buffer import CondensedBuffer
from cl_nas.cl.config import CLCase, CLSettings, plan_case
from cl_nas.cli import main
from cl_nas.condense import build_condenser
from cl_nas.data import dataset_info, load_dataset
from cl_nas.results import ResultsTable
from cl_nas.synthetic import SyntheticMeta, SyntheticSet, SyntheticSetError
from cl_nas.utils import UnreadableFileError

SECONDS = 5.0  # every rejection comes at least this fast on a 2-core CPU
DM_FAST = ("--param", "iterations=5", "--param", "batch_real=8", "--param", "model=convnet:width=8,depth=1")
CONDENSE = ("condense", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--out", "{t}/out.pt")
RANDOM = ("condense", "--dataset", "digits", "--method", "random", "--ipc", "1", "--out", "{t}/out.pt")
CL = ("cl", "--benchmarks", "split-digits", "--strategies", "replay", "--buffers", "herding", "--out", "{t}/cl.csv")
NAS = ("nas", "--dataset", "digits", "--proxy", "random", "--controls", "--trials", "2", "--out", "{t}/nas")


def _mnist_like_set(dataset: str, source: str, **meta: Any) -> SyntheticSet:
    """One 28x28 image per class whose metadata claims ``dataset`` but whose source hash is ``source``'s split."""
    info = dataset_info("mnist")
    hashes = {name: key for key, name in cl_nas.data.TRAIN_SPLIT_HASHES.items()}
    fields = SyntheticMeta.from_info(
        info, method="random", ipc=1, seed=0, config={}, source_hash=hashes[source], wall_seconds=0.1
    )
    meta = {**asdict(fields), "dataset": dataset, **meta}
    return SyntheticSet(torch.zeros(10, 1, 28, 28), torch.arange(10), SyntheticMeta(**meta))


def _edited(syn: SyntheticSet, path: Path, images=None, labels=None, **meta: Any) -> None:
    """``syn`` saved at ``path`` with its tensors or metadata changed behind the class's back (as an editor might)."""
    payload = {
        "format": "cl_nas.SyntheticSet",
        "format_version": 2,
        "images": syn.images if images is None else images,
        "labels": syn.labels if labels is None else labels,
        "meta_json": json.dumps({**asdict(syn.meta), **meta}),
    }
    torch.save(payload, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits) -> Path:
    """The inputs the rows read: damaged, foreign and edited files."""
    d = tmp_path_factory.mktemp("inputs")
    syn = build_condenser("random").condense(digits.train, ipc=1, seed=0)
    syn.save(d / "digits.pt")
    (d / "random-bytes.pt").write_bytes(os.urandom(4096))
    whole = (d / "digits.pt").read_bytes()
    (d / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    _edited(syn, d / "empty.pt", images=torch.zeros(0, 1, 8, 8), labels=torch.zeros(0, dtype=torch.long))
    _edited(syn, d / "ipc1000.pt", ipc=1000)
    _edited(syn, d / "digits-says-mnist.pt", dataset="mnist")  # known digits source hash
    _edited(syn, d / "digits-says-mnist-unknown-hash.pt", dataset="mnist", source_hash="0" * 16)
    _edited(syn, d / "unknown-source.pt", source_hash="0" * 16)
    fashion = dataset_info("fashionmnist")
    _mnist_like_set("fashionmnist", "mnist", mean=fashion.mean, std=fashion.std).save(d / "mnist-says-fmnist.pt")
    _mnist_like_set("fashionmnist", "mnist").save(d / "mnist-says-fmnist-by-name.pt")
    (d / "a-file").write_text("not a folder\n")
    (d / "foreign.csv").write_text("x,y\n1,2\n")
    (d / "garbage.csv").write_bytes(b"\xff\xfe\x00" + os.urandom(2048))
    return d


@pytest.fixture(scope="module")
def damaged_mnist(files, data_root) -> Path:
    """Data roots whose MNIST training labels are truncated, or hold a label of 200 (images linked, not copied)."""
    labels = (data_root / "MNIST" / "raw" / "train-labels-idx1-ubyte").read_bytes()
    for name, content in (("truncated", labels[:30000]), ("label200", labels[:100] + bytes([200]) + labels[101:])):
        raw = files / f"mnist-{name}" / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for source in (data_root / "MNIST" / "raw").iterdir():
            (raw / source.name).symlink_to(source)
        (raw / "train-labels-idx1-ubyte").unlink()
        (raw / "train-labels-idx1-ubyte").write_bytes(content)
    return files


@pytest.fixture(autouse=True)
def _quiet_start(monkeypatch, tmp_path):
    """Every row runs in its own folder with its own cache; heavy imports happen before the clock starts."""
    import cl_nas.cl.plot  # noqa: F401  (Avalanche, imported by `cl-nas cl` on its first call)
    import cl_nas.cl.runner  # noqa: F401

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CL_NAS_CACHE", str(tmp_path / "cache"))


class TrainingStarted(AssertionError):
    """An optimizer stepped during a row that must be rejected before any computation."""


@pytest.fixture
def no_training():
    """Fails the row at the first optimizer step (any model or image update), instead of letting it run."""
    allowed = {"on": False}

    def hook(optimizer, args, kwargs):
        if not allowed["on"]:
            raise TrainingStarted(f"{type(optimizer).__name__} stepped: computation started before the rejection")

    handle = register_optimizer_step_pre_hook(hook)
    yield allowed
    handle.remove()


def _tree(*folders: Path) -> dict[Path, str]:
    """Every file under ``folders`` and a digest of its bytes (links as their target)."""
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass(frozen=True)
class Row:
    """A command line (``{d}``: the inputs folder, ``{t}``: the row's own folder), its exit status, and a phrase
    of its one-line error. ``computes``: the failure comes from the computation itself (a diverged run)."""

    argv: tuple[str, ...]
    status: int
    message: str
    computes: bool = False
    setup: Callable[[pytest.MonkeyPatch, Path], None] | None = None  # (monkeypatch, the row's folder)
    mnist: bool = False  # needs the real MNIST files (damaged copies)


def _full_disk(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    # a full disk cannot be made without privileges: the free-space probe reports one
    monkeypatch.setattr(cl_nas.utils.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0))


def _truncated_run_state(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """The folder of the naive split-digits run with a finished experience 0 whose state file was cut short."""
    plan = plan_case(CLCase("split-digits", "naive"), CLSettings(order_seeds=(0,), run_root=str(folder / "runs")))
    run = folder / "runs" / plan.run_dir / plan.orders[0][0]
    run.mkdir(parents=True)
    torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, run / "exp_000.pt")
    whole = (run / "exp_000.pt").read_bytes()
    (run / "exp_000.pt").write_bytes(whole[: len(whole) // 2])
    (run / "exp_000.json").write_text('{"experience": 0}')


ROWS: dict[str, Row] = {
    # --- condense: options (the condenser's declarations), seeds, devices ---------------------------------
    "condense unknown option": Row((*CONDENSE, "--param", "iteratons=5"), 2, "did you mean 'iterations'?"),
    "condense lr inf": Row((*CONDENSE, "--param", "lr_img=inf"), 2, "lr_img must be a finite number > 0, got inf"),
    "condense lr nan": Row((*CONDENSE, "--param", "lr_img=nan"), 2, "lr_img must be a finite number > 0"),
    "condense lr 0": Row((*CONDENSE, "--param", "lr_img=0"), 2, "lr_img must be a finite number > 0, got 0"),
    "condense iterations text": Row((*CONDENSE, "--param", "iterations=abc"), 2, "iterations must be a positive"),
    "condense bool text": Row((*CONDENSE, "--param", "compile=maybe"), 2, "compile must be a boolean"),
    "condense bool number": Row((*CONDENSE, "--param", "compile=2"), 2, "compile must be a boolean"),
    "condense param without =": Row((*CONDENSE, "--param", "iterations"), 2, "--param expects key=value"),
    "condense device as param": Row((*CONDENSE, "--param", "device=cpu"), 2, "give the device with --device"),
    "condense diverged": Row(
        (*CONDENSE, *DM_FAST, "--param", "lr_img=1e30"), 1, "diverged in iteration", computes=True
    ),
    "condense device tpu": Row((*RANDOM, "--device", "tpu"), 2, "unknown device 'tpu'; use cpu, cuda, cuda:N"),
    "condense device cuda:7": Row((*RANDOM, "--device", "cuda:7"), 2, "'cuda:7'"),
    "condense seed 2**70": Row((*RANDOM, "--seed", str(2**70)), 2, "--seed must be an integer from 0 to 2**63 - 1"),
    "condense seed -1": Row((*RANDOM, "--seed", "-1"), 2, "--seed must be an integer from 0"),
    "condense ipc 0": Row((*RANDOM[:-4], "--ipc", "0"), 2, "--ipc must be a positive integer"),
    "condense ipc above a class": Row((*CONDENSE[:-4], "--ipc", "1000", *DM_FAST), 2, "ipc=1000 exceeds the"),
    "condense unknown method": Row(
        ("condense", "--dataset", "digits", "--method", "dmm", "--ipc", "1"), 2, "did you mean 'dm'?"
    ),
    "condense unknown dataset": Row(("condense", "--dataset", "nope", "--method", "dm", "--ipc", "1"), 2, "'nope'"),
    "condense no-checkpoint coreset": Row((*RANDOM, "--no-checkpoint"), 2, "--no-checkpoint applies to learned"),
    # --- condense: output paths, checked before the work ----------------------------------------------------
    "condense out is a folder": Row((*CONDENSE[:-1], "{d}", *DM_FAST), 2, "is a folder, not a file"),
    "condense out under a file": Row((*CONDENSE[:-1], "{d}/a-file/out.pt", *DM_FAST), 2, "'{d}/a-file' is a file"),
    "condense out unwritable": Row((*CONDENSE[:-1], "/proc/out.pt", *DM_FAST), 2, "'/proc' takes no new files"),
    "condense out full disk": Row((*CONDENSE, *DM_FAST), 2, "is full (0 bytes free)", setup=_full_disk),
    "condense png is a folder": Row((*CONDENSE, *DM_FAST, "--png", "{d}"), 2, "--png '{d}' is a folder"),
    "condense png is out": Row((*CONDENSE, *DM_FAST, "--png", "{t}/out.pt"), 2, "--png and --out name the same"),
    "condense checkpoints under a file": Row(
        (*CONDENSE, *DM_FAST, "--param", "checkpoint_dir={d}/a-file"), 2, "checkpoint folder '{d}/a-file' is a file"
    ),
    # --- data roots and damaged datasets --------------------------------------------------------------------
    "data root is a file": Row(
        ("condense", "--dataset", "mnist", "--method", "random", "--ipc", "1", "--data-root", "{d}/a-file"),
        2,
        "data root '{d}/a-file' (from --data-root) is a file, not a folder",
    ),
    "data root missing": Row(
        ("condense", "--dataset", "mnist", "--method", "random", "--ipc", "1", "--data-root", "{t}/none"),
        2,
        "does not exist",
    ),
    "truncated idx file": Row(
        ("condense", "--dataset", "mnist", "--method", "herding", "--ipc", "1", "--data-root", "{d}/mnist-truncated"),
        2,
        "train-labels-idx1-ubyte' holds 30000 bytes where its header announces 60008",
        mnist=True,
    ),
    "idx labels of 200": Row(
        ("condense", "--dataset", "mnist", "--method", "herding", "--ipc", "1", "--data-root", "{d}/mnist-label200"),
        2,
        "train-labels-idx1-ubyte' gives train labels outside 0..9 (e.g. 200)",
        mnist=True,
    ),
    # --- evaluate: files, provenance, meaningless settings ----------------------------------------------------
    "evaluate random bytes": Row(("evaluate", "{d}/random-bytes.pt"), 2, "is not a readable synthetic-set file"),
    "evaluate truncated": Row(("evaluate", "{d}/truncated.pt"), 2, "truncated or damaged"),
    "evaluate missing file": Row(("evaluate", "{t}/none.pt"), 2, "no synthetic set at"),
    "evaluate a folder": Row(("evaluate", "{d}"), 2, "is a folder, not a synthetic-set file"),
    "evaluate empty set": Row(("evaluate", "{d}/empty.pt"), 2, "holds no images"),
    "evaluate ipc claim": Row(("evaluate", "{d}/ipc1000.pt"), 2, "says ipc=1000 images per class but class 0 has 1"),
    "evaluate epochs 0": Row(("evaluate", "{d}/digits.pt", "--epochs", "0"), 2, "epochs must be a positive integer"),
    "evaluate eval-seeds 0": Row(("evaluate", "{d}/digits.pt", "--eval-seeds", "0"), 2, "--eval-seeds must be"),
    "evaluate model too deep": Row(("evaluate", "{d}/digits.pt", "--model", "convnet:depth=4"), 2, "shrinks 8x8"),
    "evaluate device tpu": Row(("evaluate", "{d}/digits.pt", "--device", "tpu"), 2, "unknown device 'tpu'"),
    "evaluate needs logits": Row(("evaluate", "{d}/digits.pt", "--protocol", "apm"), 2, "teacher's logits"),
    "evaluate mnist set says fmnist": Row(
        ("evaluate", "{d}/mnist-says-fmnist.pt", "--data-root", "{t}/none"), 2, "is mnist's training split"
    ),
    "evaluate mnist set says fmnist by name": Row(
        ("evaluate", "{d}/mnist-says-fmnist-by-name.pt", "--data-root", "{t}/none"), 2, "--dataset mnist"
    ),
    "evaluate digits set says mnist": Row(
        ("evaluate", "{d}/digits-says-mnist.pt", "--data-root", "{t}/none"), 2, "is digits's training split"
    ),
    "evaluate digits shape says mnist": Row(
        ("evaluate", "{d}/digits-says-mnist-unknown-hash.pt", "--data-root", "{t}/none"),
        2,
        "it looks like a set of digits: re-create it with `cl-nas condense --dataset digits`",
    ),
    "evaluate unknown source": Row(("evaluate", "{d}/unknown-source.pt"), 2, "not condensed from digits's training"),
    # --- cl ------------------------------------------------------------------------------------------------------
    "cl lr nan": Row((*CL, "--lr", "nan"), 2, "--lr must be a finite number > 0, got nan"),
    "cl lr 0": Row((*CL, "--lr", "0"), 2, "--lr must be a finite number > 0"),
    "cl epochs 0": Row((*CL, "--epochs", "0"), 2, "epochs must be a positive integer"),
    "cl orders 0": Row((*CL, "--orders", "0"), 2, "--orders must be a positive integer"),
    "cl bad condenser value": Row((*CL, "--param", "dm.iterations=abc"), 2, "iterations must be a positive"),
    "cl bad value of an unused method": Row((*CL, "--param", "dc.iterations=abc"), 2, "iterations must be a"),
    "cl option of an unused method": Row((*CL, "--param", "dc.iterations=5"), 2, "given but no dc buffer runs"),
    "cl memory above the data": Row((*CL, "--mem-per-class", "100000"), 2, "exceeds the training data"),
    "cl device tpu": Row((*CL, "--device", "tpu"), 2, "unknown device 'tpu'"),
    "cl out is a folder": Row((*CL[:-1], "{d}"), 2, "results table '{d}' is a folder"),
    "cl out foreign csv": Row((*CL[:-1], "{d}/foreign.csv"), 2, "is not a results table of this study"),
    "cl out garbage csv": Row((*CL[:-1], "{d}/garbage.csv"), 2, "is not a CSV results table"),
    "cl truncated run state": Row(
        ("cl", "--benchmarks", "split-digits", "--strategies", "naive", "--out", "{t}/cl.csv", "--runs", "{t}/runs"),
        2,
        "/order0/exp_000.pt' is not a readable CL run-state file: it is truncated or damaged",
        setup=_truncated_run_state,
    ),
    "cl runs under a file": Row((*CL, "--runs", "{d}/a-file/runs"), 2, "'{d}/a-file' is a file"),
    # --- nas (cl-nas nas and benchmarks/nas.py) -----------------------------------------------------------------
    "nas trials 0": Row((*NAS, "--trials", "0"), 2, "--trials must be a positive integer"),
    "nas unknown proxy option": Row(
        (*NAS[:4], "dm", *NAS[5:], "--param", "iteratons=5"), 2, "did you mean 'iterations'"
    ),
    "nas device tpu": Row((*NAS, "--device", "tpu"), 2, "unknown device 'tpu'"),
    "nas out is a file": Row((*NAS[:-1], "{d}/a-file"), 2, "--out '{d}/a-file' is a file"),
    "benchmarks/nas.py out under a file": Row(
        ("benchmarks/nas.py", *NAS[1:-1], "{d}/a-file/nas"), 2, "'{d}/a-file' is a file"
    ),
}


def _fill(text: str, d: Path, t: Path) -> str:
    return text.replace("{d}", str(d)).replace("{t}", str(t))


@pytest.mark.parametrize("name", list(ROWS))
def test_a_bad_command_line_is_one_line_before_any_work(
    name, request, files, tmp_path, capsys, monkeypatch, no_training, load_benchmark
):
    row = ROWS[name]
    if row.mnist:
        request.getfixturevalue("damaged_mnist")
    if row.setup is not None:
        row.setup(monkeypatch, tmp_path)
    argv = [_fill(a, files, tmp_path) for a in row.argv]
    no_training["on"] = row.computes
    before = _tree(files, tmp_path)
    start = time.perf_counter()
    if argv[0] == "benchmarks/nas.py":
        prog, status = "nas", load_benchmark("nas.py").main(argv[1:])
    else:
        prog, status = f"cl-nas {argv[0]}", main(argv)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert status == row.status, err[-3000:]
    assert "Traceback" not in err
    assert len(errors) == 1 and _fill(row.message, files, tmp_path) in errors[0], err[-3000:]
    if not row.computes:
        assert lines[0] == errors[0], err[-3000:]  # the first thing printed, nothing computed
    assert elapsed < SECONDS
    after = _tree(files, tmp_path)
    assert {p: h for p, h in after.items() if p in before} == before  # nothing there before changed or vanished


LIBRARY: dict[str, tuple[Callable[[Path, Any], object], type[Exception], str]] = {
    "build_condenser unknown option": (
        lambda d, digits: build_condenser("dm", iteratons=5),
        ValueError,
        "condenser 'dm' does not accept option 'iteratons'; did you mean 'iterations'?",
    ),
    "build_condenser nan": (lambda d, digits: build_condenser("dm", lr_img=float("nan")), ValueError, "lr_img must be"),
    "build_condenser bool": (lambda d, digits: build_condenser("dm", compile="maybe"), ValueError, "a boolean"),
    "build_condenser int as bool": (lambda d, digits: build_condenser("dm", iterations=True), ValueError, "iterations"),
    "build_condenser device": (lambda d, digits: build_condenser("dm", device="tpu"), ValueError, "unknown device"),
    "condense seed": (
        lambda d, digits: build_condenser("random").condense(digits.train, 1, seed=2**70),
        ValueError,
        "seed must be an integer from 0 to 2**63 - 1",
    ),
    "SyntheticSet.load random bytes": (
        lambda d, digits: SyntheticSet.load(d / "random-bytes.pt"),
        SyntheticSetError,
        "random-bytes.pt' is not a readable synthetic-set file",
    ),
    "SyntheticSet.load truncated": (
        lambda d, digits: SyntheticSet.load(d / "truncated.pt"),
        SyntheticSetError,
        "truncated or damaged",
    ),
    "SyntheticSet.load empty": (lambda d, digits: SyntheticSet.load(d / "empty.pt"), SyntheticSetError, "no images"),
    "SyntheticSet.load ipc": (lambda d, digits: SyntheticSet.load(d / "ipc1000.pt"), SyntheticSetError, "ipc=1000"),
    "load_torch_file foreign": (
        lambda d, digits: cl_nas.utils.load_torch_file(d / "foreign.csv", "checkpoint"),
        UnreadableFileError,
        "foreign.csv' is not a readable checkpoint",
    ),
    "load_dataset root is a file": (
        lambda d, digits: load_dataset("mnist", d / "a-file"),
        FileNotFoundError,
        "is a file, not a folder",
    ),
    "load_dataset val_fraction nan": (
        lambda d, digits: load_dataset("digits", val_fraction=float("nan")),
        ValueError,
        "val_fraction must be in [0, 1)",
    ),
    "load_dataset unknown": (lambda d, digits: load_dataset("mnist2"), ValueError, "unknown dataset 'mnist2'"),
    "CondensedBuffer size 0": (
        lambda d, digits: CondensedBuffer(0, build_condenser("random"), digits.train.info),
        ValueError,
        "max_size (images) must be a positive integer",
    ),
    "CondensedBuffer precision": (
        lambda d, digits: CondensedBuffer(10, build_condenser("random"), digits.train.info, precision="fp8"),
        ValueError,
        "fp8",
    ),
    "CondensedBuffer teacher": (
        lambda d, digits: CondensedBuffer(10, build_condenser("dm"), digits.train.info, teacher_from_model=True),
        ValueError,
        "teacher_from_model needs the APM condenser",
    ),
    "ResultsTable foreign": (
        lambda d, digits: ResultsTable(d / "foreign.csv", ["name", "value"], ["name"]),
        ValueError,
        "has no column name",
    ),
    "ResultsTable garbage": (
        lambda d, digits: ResultsTable(d / "garbage.csv", ["name", "value"], ["name"]),
        ValueError,
        "is not a CSV results table",
    ),
    "ResultsTable folder": (
        lambda d, digits: ResultsTable(d, ["name", "value"], ["name"]),
        ValueError,
        "is a folder, not a file",
    ),
}


@pytest.mark.parametrize("name", list(LIBRARY))
def test_a_bad_library_call_raises_one_line(name, files, digits, tmp_path, no_training):
    call, error, message = LIBRARY[name]
    before = _tree(files)
    start = time.perf_counter()
    with pytest.raises(error) as caught:
        call(files, digits)
    assert time.perf_counter() - start < SECONDS
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert "weights_only=False" not in text  # never torch's advice to load a file that can run code
    assert _tree(files) == before


def test_the_tables_cover_at_least_forty_bad_inputs():
    assert len(ROWS) + len(LIBRARY) >= 40
