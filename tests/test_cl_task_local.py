import pandas as pd
import pytest
import torch

from cl_nas.cl.scenarios import class_order


@pytest.fixture(scope="module")
def study(load_benchmark):
    return load_benchmark("cl_task_local.py")


def test_tasks_are_the_cl_benchmarks_class_groups(study, digits):
    parts = study.task_subsets(digits.train, 5)
    order = class_order(0, 10)
    assert [p.classes for p in parts] == [sorted(order[i : i + 2]) for i in range(0, 10, 2)]
    assert sum(len(p) for p in parts) == len(digits.train)
    assert torch.equal(torch.cat([p.labels for p in parts]).sort().values, digits.train.labels.sort().values)
    with pytest.raises(ValueError, match="--tasks 3 does not divide the 10 classes"):
        study.task_subsets(digits.train, 3)


def test_whole_and_per_task_rows_then_a_rerun_skips_them(study, tmp_path, capsys):
    argv = ["--dataset", "digits", "--methods", "dm", "--param", "dm.iterations=20", "--eval-epochs", "20",
            "--eval-seeds", "2", "--out", str(tmp_path / "t.csv"), "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert study.main(argv) == 0
    rows = pd.read_csv(tmp_path / "t.csv").set_index("tasks")
    assert sorted(rows.index) == [1, 5] and (rows.n_eval == 2).all() and (rows.acc_mean > 30).all()
    capsys.readouterr()
    assert study.main(argv) == 0
    assert capsys.readouterr().out == "" and len(pd.read_csv(tmp_path / "t.csv")) == 2


def test_an_evaluation_setting_the_table_cannot_record_is_refused(study, tmp_path, capsys):
    assert study.main(["--dataset", "digits", "--models", "mlp", "--out", str(tmp_path / "t.csv")]) == 2
    assert "--models cannot be recorded: the table has no 'model' column" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()
