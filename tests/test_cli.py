import subprocess
import sys

import pytest
from PIL import Image

from cl_nas.cli import main
from cl_nas.synthetic import SyntheticSet


def test_condense_then_evaluate(tmp_path, capsys):
    out = tmp_path / "herding.pt"
    rc = main(
        [
            "condense",
            "--dataset",
            "digits",
            "--method",
            "herding",
            "--ipc",
            "2",
            "--param",
            "train_epochs=1",
            "--out",
            str(out),
            "--png",
            str(tmp_path / "g.png"),
        ]
    )
    assert rc == 0
    with Image.open(tmp_path / "g.png") as png:
        assert png.size == (2 * 9 + 1, 10 * 9 + 1)  # one row of 8x8 tiles (+1 px padding) per class
    syn = SyntheticSet.load(out)
    assert syn.meta.config["train_epochs"] == 1 and len(syn) == 20
    rc = main(["evaluate", str(out), "--epochs", "5", "--eval-seeds", "2", "--model", "convnet:width=32"])
    assert rc == 0
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["condense", "--dataset", "digits", "--method", "random", "--ipc", "0"], "--ipc must be a positive integer"),
        (["condense", "--dataset", "digits", "--method", "alchemy", "--ipc", "1"], "unknown condensation method"),
        (["condense", "--dataset", "nope", "--method", "random", "--ipc", "1"], "unknown dataset 'nope'"),
        (
            ["condense", "--dataset", "mnist", "--method", "random", "--ipc", "1", "--data-root", "/no/such/dir"],
            "does not exist",
        ),
        (["condense", "--dataset", "digits", "--method", "random", "--ipc", "1", "--param", "x"], "key=value"),
    ],
)
def test_bad_input_exits_with_a_clear_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_evaluate_rejects_foreign_file_and_bad_model(tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a torch file")
    assert main(["evaluate", str(bogus)]) == 2
    assert "not a readable synthetic-set file" in capsys.readouterr().err
    good = tmp_path / "r.pt"
    assert main(["condense", "--dataset", "digits", "--method", "random", "--ipc", "1", "--out", str(good)]) == 0
    assert main(["evaluate", str(good), "--model", "convnet:depth=4"]) == 2
    assert "shrinks 8x8" in capsys.readouterr().err


@pytest.mark.slow  # starts other processes
def test_module_entry_point_help():
    proc = subprocess.run(
        [sys.executable, "-m", "cl_nas", "condense", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "--ipc" in proc.stdout and "--data-root" in proc.stdout
