"""The two modes of ``benchmarks/nas.py`` besides the study: tuning the proxy schedule on a disjoint sample,
and estimating what a ground truth costs (real digits runs)."""

import re

import pandas as pd
import pytest

from cl_nas.nas import NASSettings
from cl_nas.nas.study import ground_truth_cost
from cl_nas.nas.tuning import Schedule, ScheduleScore, best_schedule, tune_schedule


def _argv(tmp_path, *argv) -> list[str]:
    base = ["--dataset", "digits", "--storage", f"sqlite:///{tmp_path / 'nas.db'}", "--cache", str(tmp_path / "c")]
    return [*base, "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"), *argv]


def test_the_proxy_schedule_is_tuned_on_architectures_the_evaluation_never_sees(digits, tmp_path, capsys,
                                                                                 load_benchmark):  # fmt: skip
    nas = load_benchmark("nas.py")
    argv = _argv(tmp_path, "--proxy", "random", "--ipc", "5", "--trials", "4", "--gt-archs", "4", "--gt-epochs", "1",
                 "--space", "width=32", "--tune", "--tune-archs", "4", "--tune-epochs", "1", "3", "--tune-lr", "0.01",
                 "--tune-augment", "none")  # fmt: skip
    assert nas.main(argv) == 1
    assert "no ground truth on the tuning sample yet: rerun with --ground-truth" in capsys.readouterr().out

    assert nas.main([*argv, "--ground-truth"]) == 0
    out = capsys.readouterr().out
    tuning = pd.read_csv(tmp_path / "out" / "nas_tuning.csv")
    assert sorted(tuning.epochs) == [1, 3] and set(tuning.n_arch) == {4} and set(tuning.proxy) == {"random"}
    best = tuning.sort_values(["spearman", "epochs"], ascending=[False, True]).iloc[0]
    printed = re.search(r"tuned on 4 architectures after the first 4 \(none of the evaluation sample\): "
                        r"Spearman (-?[\d.]+) with --epochs (\d+) --lr 0.01 --augment none", out)  # fmt: skip
    assert printed and int(printed[2]) == best.epochs and float(printed[1]) == pytest.approx(best.spearman, abs=1e-3)

    evaluation = NASSettings(dataset="digits", gt_archs=4, space={"width": [32]})
    evaluated = set(evaluation.ground_truth_config.sample(evaluation.search_space(), digits.info))
    for schedule in ("e1-lr0.01-none", "e3-lr0.01-none"):
        scores = pd.read_csv(tmp_path / "out" / "tuning" / schedule / "nas_scores.csv")
        assert scores.arch.nunique() == 4 and evaluated.isdisjoint(scores.arch)
        assert set(scores.proxy) == {"random"}  # the main proxy alone, no controls


def test_tuning_needs_a_schedule_and_ties_go_to_fewer_epochs(tmp_path):
    with pytest.raises(ValueError, match="no schedule to tune"):
        tune_schedule(NASSettings(dataset="digits", out=str(tmp_path)), 4, [])
    cheap, long = Schedule(20, 0.01, "none"), Schedule(100, 0.01, "none")
    tied = [ScheduleScore(long, 0.8, 0.6, 1.0), ScheduleScore(cheap, 0.8, 0.6, 2.0)]
    assert best_schedule(tied).schedule == cheap
    assert best_schedule([*tied, ScheduleScore(long, 0.81, 0.6, 3.0)]).spearman == 0.81


def test_the_ground_truth_cost_is_estimated_from_two_timed_architectures(tmp_path, capsys, load_benchmark):
    flags = ["--gt-archs", "6", "--gt-epochs", "2", "--gt-seeds", "0", "1", "--gt-rungs", "1x1:3"]
    settings = NASSettings(dataset="digits", gt_archs=6, gt_epochs=2, gt_seeds=(0, 1), gt_rungs=("1x1:3",))
    cost = ground_truth_cost(settings, budget_seconds=0.2)
    small, large = cost.timed
    assert small.flops < large.flops and small.batches >= 2 and small.seconds > 0
    screen, full = cost.stages
    assert (screen.archs, screen.epochs, screen.seeds, full.archs, full.epochs, full.seeds) == (6, 1, 1, 3, 2, 2)
    assert screen.typical == pytest.approx(screen.worst)  # every architecture runs the screen
    assert full.typical <= full.worst and cost.typical == pytest.approx(screen.typical + full.typical)

    assert load_benchmark("nas.py").main(_argv(tmp_path, *flags, "--estimate-cost", "--time-budget", "0.2")) == 0
    out = capsys.readouterr().out
    assert "6 architectures x 1 epochs x 1 seeds" in out and "3 architectures x 2 epochs x 2 seeds" in out
    typical, worst = map(float, re.search(r"total: ([\d.]+) to ([\d.]+) hours of one worker", out).groups())
    assert typical <= worst
    assert not (tmp_path / "nas.db").exists()  # nothing trained, no study opened
