"""benchmarks/condense.py: rows land as they finish, sets come from the shared cache, reruns skip rows."""

import pandas as pd


def small_run(tmp_path, *, ipc: int, iterations: int, eval_seeds: int) -> list[str]:
    """Arguments of a small digits run, its table and cache in ``tmp_path``."""
    return [
        "--datasets", "digits", "--ipcs", str(ipc), "--param", f"dm.iterations={iterations}",
        "--param", "dm.batch_real=16", "--param", "dm.model=convnet:depth=2,width=16",
        "--eval-seeds", str(eval_seeds), "--eval-epochs", "2",
        "--out", str(tmp_path / "quality.csv"), "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip


def test_rows_resume_and_cross_architecture_rows_reuse_the_cached_set(tmp_path, run_benchmark):
    common = ["--methods", "dm", *small_run(tmp_path, ipc=10, iterations=5, eval_seeds=2)]
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
    common = [*small_run(tmp_path, ipc=2, iterations=3, eval_seeds=1), "--models", "convnet:depth=2,width=16"]
    first = run_benchmark("condense.py", "--methods", "random", "dm", *common, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "quality.csv").read_text()
    second = run_benchmark("condense.py", "--methods", "random", "dm", *common, "--images", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "quality.csv").read_text() == before  # nothing evaluated again
    figure = tmp_path / "quality_images_digits_ipc2.png"
    assert figure.is_file() and figure.stat().st_size > 1000
