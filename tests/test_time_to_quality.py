"""benchmarks/time_to_quality.py: one condensation, its snapshots evaluated, resumable and checked up front."""

import json
import statistics

import pandas as pd
import pytest
from PIL import Image


@pytest.mark.slow  # starts other processes
def test_snapshots_become_rows_and_a_rerun_skips_them(tmp_path, run_benchmark):
    args = [
        "--dataset", "digits", "--method", "dm", "--ipc", "3", "--param", "iterations=12", "--param", "batch_real=16",
        "--param", "model=convnet:depth=2,width=16", "--snapshots", "4", "12", "--eval-seeds", "2",
        "--eval-epochs", "3", "--out", str(tmp_path / "curve.csv"), "--work", str(tmp_path / "work"),
        "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    first = run_benchmark("time_to_quality.py", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    table = pd.read_csv(tmp_path / "curve.csv")
    assert table["iteration"].tolist() == [12, 4] and (table["n_eval"] == 2).all()  # the final set's row first
    table = table.sort_values("iteration")
    assert table["condense_seconds"].is_monotonic_increasing
    seeds = table["accuracies"].map(lambda cell: [float(a) for a in cell.split()])
    assert (table["acc_mean"] - seeds.map(statistics.fmean)).abs().max() <= 0.01
    with Image.open(tmp_path / "curve.png") as png:
        assert png.size[0] == 660 and png.size[1] > 480  # one 5.5-inch panel (digits) at 120 dpi, legend below
    assert len(list((tmp_path / "work").glob("*/iteration*.pt"))) == 2  # the snapshot sets, kept for reuse
    # the final set waits in the shared cache for condense.py; the finished run leaves no checkpoint
    assert [p.name.split("-")[:2] for p in (tmp_path / "cache").glob("*.pt")] == [["dm", "ipc3"]]
    assert not list((tmp_path / "cache" / "checkpoints").glob("*.ckpt"))

    again = run_benchmark("time_to_quality.py", *args, cwd=tmp_path)
    assert again.returncode == 0 and "already in" in again.stdout
    assert len(pd.read_csv(tmp_path / "curve.csv")) == 2


@pytest.mark.slow  # starts other processes
def test_bad_input_fails_before_any_work(tmp_path, run_benchmark):
    coreset = run_benchmark("time_to_quality.py", "--method", "herding", "--snapshots", "5", cwd=tmp_path)
    assert coreset.returncode == 2 and "coreset" in coreset.stderr
    beyond = run_benchmark(
        "time_to_quality.py", "--method", "dm", "--param", "iterations=5", "--snapshots", "10", cwd=tmp_path
    )
    assert beyond.returncode == 2 and "snapshot_at 10 is beyond" in beyond.stderr
    assert not (tmp_path / "runs").exists()


def test_curve_figure_draws_one_labelled_line_per_run_of_a_sweep():
    from cl_nas.condense.plots import curve_figure

    def rows(lr_img, machine):
        config = json.dumps({"batch_real": 64, "iterations": 500, "lr_img": lr_img}, sort_keys=True)
        return [
            dict(method="dm", dataset="fashionmnist", ipc=10, iteration=it, condense_seconds=it / 2, acc_mean=80 + lr,
                 acc_std=0.1, eval_epochs=300, protocol="fast", config=config, machine=machine)
            for it, lr in ((250, lr_img / 100), (500, lr_img / 50))
        ]  # fmt: skip

    sweep = pd.DataFrame(rows(1.0, "cpu A") + rows(10.0, "cpu A") + rows(10.0, "cpu B"))
    fig = curve_figure(sweep)
    ax = fig.axes[0]
    labels = sorted(t.get_text() for t in ax.get_legend().get_texts() if "lr_img" in t.get_text())
    assert labels == [
        "dm ipc 10, protocol fast, lr_img=1.0 [cpu A]",
        "dm ipc 10, protocol fast, lr_img=10.0 [cpu A]",
        "dm ipc 10, protocol fast, lr_img=10.0 [cpu B]",
    ]  # only what tells the runs apart: the learning rate and the machine
    assert len(ax.containers) == 3 and all(len(c.lines[0].get_xdata()) == 2 for c in ax.containers)

    def legend(*parts):
        return [t.get_text() for t in curve_figure(pd.concat(parts)).axes[0].get_legend().get_texts()]

    longer = pd.DataFrame(rows(1.0, "cpu A")).assign(config=lambda d: d.config.str.replace("500", "800"))
    assert "dm ipc 10, protocol fast, run to 800 iterations" in legend(sweep.iloc[:2], longer)  # not beside its 500th
    other_net = sweep.iloc[:2].assign(condense_model="convnet:stem_padding=1")  # same config, another network
    assert "dm ipc 10, protocol fast, on convnet:stem_padding=1" in legend(sweep.iloc[:2], other_net)

    one_run = curve_figure(sweep.iloc[:2])
    assert "dm ipc 10, protocol fast" in [t.get_text() for t in one_run.axes[0].get_legend().get_texts()]
