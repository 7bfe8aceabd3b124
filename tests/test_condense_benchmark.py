"""benchmarks/condense.py: rows land as they finish, sets come from the shared cache, reruns skip rows."""

import statistics

import pandas as pd
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # every test here starts other processes


def _pixels(png) -> tuple[int, int]:
    with Image.open(png) as image:
        return image.size


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
    assert (table["n_eval"] == 2).all()
    seeds = table["accuracies"].map(lambda cell: [float(a) for a in cell.split()])
    assert seeds.map(len).eq(2).all() and (table["acc_mean"] - seeds.map(statistics.fmean)).abs().max() <= 0.01
    assert table["condense_seconds"].nunique() == 1  # both rows describe the one cached condensation
    assert list((tmp_path / "cache").rglob("*.pt")) == cached and cached[0].stat().st_mtime_ns == stamp
    # one 5 x 4 inch panel (digits) at 120 dpi per evaluation model, under the fast protocol cut to 2 epochs
    assert _pixels(tmp_path / "quality_fast@2ep_convnet-depth-2-width-16.png") == (600, 480)
    assert set(table["protocol"]) == {"fast@2ep"} and set(table["labels"]) == {"hard"}
    assert _pixels(tmp_path / "quality_cross_arch_fast@2ep.png") == (720, 480)  # two evaluation models at IPC 10: drawn


def test_images_draws_recorded_sets_from_the_cache_without_evaluating_again(tmp_path, run_benchmark):
    common = [*small_run(tmp_path, ipc=2, iterations=3, eval_seeds=1), "--models", "convnet:depth=2,width=16"]
    first = run_benchmark("condense.py", "--methods", "random", "dm", *common, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "quality.csv").read_text()
    second = run_benchmark("condense.py", "--methods", "random", "dm", *common, "--images", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "quality.csv").read_text() == before  # nothing evaluated again
    figure = tmp_path / "quality_images_digits_ipc2.png"
    assert _pixels(figure) == (576, 336)  # two sets side by side, 2.4 x 2.8 inches each at 120 dpi


def test_apm_protocol_labels_every_set_with_the_same_teacher(tmp_path, run_benchmark):
    apm = ["--param", "apm.teacher_epochs=2", "--param", "apm.student_epochs=2", "--param", "apm.checkpoints=1"]
    apm += ["--param", "apm.iterations=2", "--param", "apm.model=convnet:depth=2,width=16"]
    argv = ["--methods", "random", "apm", *small_run(tmp_path, ipc=2, iterations=2, eval_seeds=1), *apm]
    argv += ["--protocol", "apm", "--models", "convnet:depth=2,width=16"]
    argv += ["--param", f"apm.teacher_dir={tmp_path / 'teachers'}"]  # kept there, not in the cache
    done = run_benchmark("condense.py", *argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "quality.csv")
    assert sorted(table["method"]) == ["apm", "random"] and set(table["labels"]) == {"teacher-logits"}
    assert table["protocol"].eq("apm@2ep").all() and table["teacher"].nunique() == 1
    assert table["teacher"].iloc[0].startswith("convnet:depth=2,width=16 2 ep")
    assert table["teacher_acc"].nunique() == 1 and table["teacher_acc"].iloc[0] > 10.0  # above chance
    assert len(list((tmp_path / "teachers").glob("teacher-*.pt"))) == 1  # one teacher, shared
    assert not (tmp_path / "cache" / "teachers").exists()
