"""benchmarks/condense.py: rows land as they finish, sets come from the shared cache, reruns skip rows."""

import pandas as pd


def test_rows_resume_and_cross_architecture_rows_reuse_the_cached_set(tmp_path, run_benchmark):
    common = [
        "--datasets", "digits", "--methods", "dm", "--ipcs", "10", "--param", "dm.iterations=5",
        "--param", "dm.batch_real=16", "--param", "dm.model=convnet:depth=2,width=16", "--eval-seeds", "2",
        "--eval-epochs", "2", "--out", str(tmp_path / "quality.csv"), "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    first = run_benchmark("condense.py", *common, "--models", "convnet:depth=2,width=16", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    cached = list((tmp_path / "cache").rglob("*.pt"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns

    second = run_benchmark("condense.py", *common, "--models", "convnet:depth=2,width=16", "mlp", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    table = pd.read_csv(tmp_path / "quality.csv")
    assert sorted(table["model"]) == ["convnet:depth=2,width=16", "mlp"]  # the ConvNet row was not redone
    assert (table["n_eval"] == 2).all() and table["acc_mean"].between(0, 100).all()
    assert table["condense_seconds"].nunique() == 1  # both rows describe the one cached condensation
    assert list((tmp_path / "cache").rglob("*.pt")) == cached and cached[0].stat().st_mtime_ns == stamp
    assert (tmp_path / "quality.png").is_file()
    assert (tmp_path / "quality_cross_arch.png").is_file()  # two evaluation models at IPC 10


def test_images_draws_recorded_sets_from_the_cache_without_evaluating_again(tmp_path, run_benchmark):
    common = [
        "--datasets", "digits", "--ipcs", "2", "--param", "dm.iterations=3", "--param", "dm.batch_real=16",
        "--param", "dm.model=convnet:depth=2,width=16", "--models", "convnet:depth=2,width=16", "--eval-seeds", "1",
        "--eval-epochs", "2", "--out", str(tmp_path / "quality.csv"), "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    first = run_benchmark("condense.py", "--methods", "random", "dm", *common, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "quality.csv").read_text()
    second = run_benchmark("condense.py", "--methods", "random", "dm", *common, "--images", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "quality.csv").read_text() == before  # nothing evaluated again
    figure = tmp_path / "quality_images_digits_ipc2.png"
    assert figure.is_file() and figure.stat().st_size > 1000
