"""The continual-learning runner: bad input, cache reuse, resume after SIGKILL, the command, the benchmarks."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from avalanche.benchmarks.scenarios.supervised import new_instances_benchmark
from PIL import Image

from cl_nas.cl import (
    STRATEGIES,
    CLCase,
    CLSettings,
    benchmark_spec,
    expand_cases,
    make_scenario,
    plan_case,
    register_benchmark,
    run_cases,
    run_order,
)
from cl_nas.cl.adapters import buffer_dataset
from cl_nas.cl.command import add_parser, run
from cl_nas.cl.runner import COLUMNS

REPO = Path(__file__).resolve().parents[1]
MODEL = "convnet:depth=2,width=16"
REQUIRED = (
    "benchmark,strategy,buffer,mem_per_class,n_orders,final_acc_mean,final_acc_std,avg_incremental_acc,"
    "forgetting,condense_seconds,train_seconds,machine"
).split(",")


@pytest.fixture
def settings(tmp_path) -> CLSettings:
    return CLSettings(
        order_seeds=(0,), model=MODEL, epochs=2, memory_epochs=5, batch_size=64, bf16=False,
        condense_params={"dm": {"iterations": 3}}, run_root=str(tmp_path / "runs"), cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip


@pytest.mark.parametrize(
    "case,change,message",
    [
        (CLCase("split-digits", "replay", "dm", 0), {}, "mem_per_class must be a positive integer"),
        (CLCase("split-digits", "replay", "dm", 1), {"mem_bytes": 9 * 64 * 4}, "fewer than one per class"),
        (CLCase("split-digits", "replay", "alchemy", 10), {}, "unknown buffer 'alchemy'; available: none, reservoir"),
        (CLCase("split-digits", "ewc", "dm", 10), {}, "unknown strategy 'ewc'; available: avalanche-gdumb, er-ace"),
        (CLCase("split-digits", "naive", "dm", 10), {}, "strategy 'naive' takes no buffer"),
        (CLCase("split-digits", "replay", "dm@int4", 10), {}, "unknown storage precision 'int4'"),
        (CLCase("split-digits", "avalanche-gdumb", "herding", 10), {}, "selects with the learner"),
        (CLCase("split-digits-xy", "er-ace", "dm", 10), {}, "replays (x, y, t) items"),
        (CLCase("split-digits", "replay", "dm", 10), {"loggers": ("csv", "wandb")}, "unknown logger 'wandb'"),
        (
            CLCase("split-digits", "ewc-replay", "dm", 10),
            {"strategy_params": {"ewc-replay": {"lambda": 1}}},
            "has no option 'lambda'",
        ),
        (
            CLCase("split-digits", "replay", "dm", 10),
            {"strategy_params": {"ewc": {"ewc_lambda": 1}}},
            "unknown strategy 'ewc'",
        ),
        (CLCase("split-digits-xy", "replay", "herding", 10), {}, "cannot batch the (x, y) items"),
        (CLCase("split-digits", "replay", "dm", 10), {"class_order": (0, 1, 2)}, "class order has 3 entries"),
        (CLCase("split-digits", "replay", "dm", 10), {"class_order": (0,) * 10}, "not a permutation"),
        (CLCase("split-digits", "replay", "dm", 10), {"condense_params": {"dm": {"speed": 1}}}, "does not accept"),
        (CLCase("split-mnist", "replay", "dm", 10), {"model": "convnet:depth=9"}, "ConvNet depth 9 with pool"),
        (CLCase("split-omniglot", "replay", "dm", 10), {}, "unknown benchmark 'split-omniglot'"),
        (CLCase("split-digits", "gdumb", "dm", 10), {"augment": "crop_warp"}, "unknown DSA operation"),
    ],
)
def test_bad_input_is_a_clear_error_before_anything_runs(case, change, message, settings, tmp_path):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_cases([CLCase("split-digits", "naive"), case], replace(settings, **change), tmp_path / "cl.csv")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cl.csv").exists()  # not even the valid case ran


def test_a_grid_of_options_expands_to_its_cases(settings):
    cases = expand_cases(["split-digits"], ["naive", "replay", "gdumb"], ["dm", "apm-teacher"], [1, 10], settings)
    assert cases[0] == CLCase("split-digits", "naive") and len(cases) == 1 + 2 * (2 * 2)
    assert [c.buffer for c in cases if c.strategy == "gdumb"] == ["dm", "dm", "apm-teacher", "apm-teacher"]
    in_bytes = expand_cases(["split-digits"], ["replay"], ["dm"], [1, 10], replace(settings, mem_bytes=4096))
    assert in_bytes == [CLCase("split-digits", "replay", "dm", 0)]  # one budget, in bytes


def test_strategies_and_benchmarks_are_registered_once():
    with pytest.raises(ValueError, match="strategy 'replay' is already registered"):
        STRATEGIES.register("replay")(lambda model, memory: None)
    with pytest.raises(ValueError, match="benchmark 'split-digits' is already registered"):
        register_benchmark("split-digits", "digits", 5)(lambda spec, order, root: None)


def test_a_stream_whose_experiences_share_classes_is_rejected_before_training(settings, digits):
    plan = plan_case(CLCase("split-digits", "replay", "dm", 10), settings)
    shared = new_instances_benchmark(
        buffer_dataset(digits.train.images, digits.train.labels, None),
        buffer_dataset(digits.test.images, digits.test.labels, None),
        num_experiences=5,
        seed=0,
    )
    with pytest.raises(ValueError, match="share classes"):
        run_order(plan, 0, settings, scenario=shared)
    assert not Path(settings.run_root).exists()


def test_condensed_sets_are_reused_across_strategies_and_finished_rows_are_skipped(settings, tmp_path):
    table = tmp_path / "cl.csv"
    cache = Path(settings.cache_dir)
    run_cases([CLCase("split-digits", "replay", "dm", 4)], settings, table)
    cached = {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")}
    assert len(cached) == 5  # one set per experience
    logs: list[str] = []
    rows = run_cases(
        [CLCase("split-digits", "gdumb", "dm", 4), CLCase("split-digits", "replay", "dm", 4)], settings, table,
        log=logs.append,
    )  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")} == cached  # nothing condensed or rewritten
    gdumb_run = next(Path(settings.run_root).glob("split-digits/gdumb-dm-*/order0"))
    records = [json.loads((gdumb_run / f"exp_{k:03d}.json").read_text()) for k in range(5)]
    assert [r["sets_condensed"] for r in records] == [0] * 5 and records[-1]["cache_hits"] == 5
    assert rows[0]["condense_seconds"] > 0  # the sets' compute time is still reported
    assert any("already in" in line and "'replay'" in line for line in logs)
    frame = pd.read_csv(table)
    assert list(frame.columns[: len(REQUIRED)]) == REQUIRED and list(frame.columns) == COLUMNS and len(frame) == 2
    replay_run = next(Path(settings.run_root).glob("split-digits/replay-dm-*/order0"))
    final = json.loads((replay_run / "exp_004.json").read_text())
    result = json.loads((replay_run / "result.json").read_text())
    # equal to Avalanche's own live metrics (float32 accuracies there, float64 here)
    assert result["forgetting"] == pytest.approx(final["live_forgetting"]) and result["bwt"] == -result["forgetting"]
    assert result["bwt"] == pytest.approx(final["live_bwt"]) and result["ram_mb"] > 0
    assert not list(replay_run.glob("*.pt"))  # resume state is dropped once the run is done


def test_augmented_training_is_a_configuration_of_its_own(settings, tmp_path):
    table, case = tmp_path / "cl.csv", CLCase("split-digits", "gdumb", "class-balanced", 4)
    plain = run_cases([case], settings, table)[0]
    augmented = run_cases([case], replace(settings, augment="dsa"), table)[0]
    assert plain["augment"] == "" and augmented["augment"] == "color_crop_cutout_scale_rotate"  # no flip on digits
    assert augmented["config_id"] != plain["config_id"] and len(pd.read_csv(table)) == 2
    assert augmented["acc_per_experience"] != plain["acc_per_experience"]  # same seed: DSA changed the training


def test_runs_log_through_avalanches_loggers_into_their_folders(settings, tmp_path, monkeypatch):
    case = CLCase("split-digits", "naive")
    run_cases([case], replace(settings, loggers=("text", "csv", "tensorboard")), tmp_path / "cl.csv")
    logs = next(Path(settings.run_root).glob("split-digits/naive-*/order0/logs/from_exp000"))
    text = (logs / "log.txt").read_text()
    assert "Top1_Acc_Stream" in text and "StreamBWT" in text and "MaxRAMUsage_Stream" in text
    assert len((logs / "csv" / "eval_results.csv").read_text().splitlines()) == 1 + 1 + 2 + 3 + 4 + 5  # header, rows
    assert list((logs / "tensorboard").glob("events.out.tfevents.*"))
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as where the package is not installed
    with pytest.raises(ValueError, match="the tensorboard logger needs the tensorboard package"):
        plan_case(case, replace(settings, loggers=("tensorboard",)))


class Crash(Exception):
    pass


def crash_after_experience(n: int):
    """A run log that stops the run once experience ``n`` (1-based) is saved, as a kill would."""

    def log(line: str) -> None:
        if f"experience {n}/" in line:
            raise Crash

    return log


@pytest.mark.parametrize(
    "strategy,buffer", [("gdumb", "herding@uint8"), ("er-ace", "class-balanced@uint8"), ("lwf-replay", "dm")]
)
def test_an_interrupted_run_ends_as_the_uninterrupted_one(strategy, buffer, settings, tmp_path):
    plan = plan_case(CLCase("split-digits", strategy, buffer, 2), settings)
    reference = run_order(plan, 0, replace(settings, run_root=str(tmp_path / "reference")), log=lambda line: None)
    with pytest.raises(Crash):
        run_order(plan, 0, settings, log=crash_after_experience(2))
    logs: list[str] = []
    resumed = run_order(plan, 0, settings, log=logs.append)
    assert resumed["stream_acc"] == reference["stream_acc"] and resumed["forgetting"] == reference["forgetting"]
    resumes = any("resuming after experience 1" in line for line in logs)
    restarts = any("from the first experience" in line for line in logs)
    assert (resumes, restarts) == ((False, True) if strategy == "lwf-replay" else (True, False))


def _cl_command(out: Path, cache: Path) -> list[str]:
    # a shared budget: resuming must replay the condensation (from the cache) and the learner-dependent shrinking
    return [
        sys.executable, str(REPO / "benchmarks" / "cl.py"), "--benchmarks", "split-digits", "--strategies", "replay",
        "--buffers", "dm", "--budget", "shared", "--mem-per-class", "4", "--orders", "1", "--model", MODEL,
        "--epochs", "30", "--batch-size", "64", "--no-bf16", "--param", "dm.iterations=20",
        "--out", str(out / "cl.csv"), "--runs", str(out / "runs"), "--cache", str(cache), "--no-plot",
    ]  # fmt: skip


@pytest.mark.slow  # starts other processes
def test_a_run_killed_mid_stream_resumes_to_the_uninterrupted_result(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    killed, reference, cache = tmp_path / "killed", tmp_path / "reference", tmp_path / "cache"
    process = subprocess.Popen(_cl_command(killed, cache), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(killed.glob("runs/*/*/order0/exp_000.json")):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the run never finished its first experience"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # most likely while training experience 1
    process.wait()
    run_dir = next(killed.glob("runs/*/*/order0"))
    assert not (run_dir / "result.json").exists()
    done = len(list(run_dir.glob("exp_*.json")))
    resumed = subprocess.run(_cl_command(killed, cache), env=env, capture_output=True, text=True, check=True)
    assert f"resuming after experience {done - 1}" in resumed.stdout
    subprocess.run(_cl_command(reference, cache), env=env, capture_output=True, check=True)
    result = json.loads((run_dir / "result.json").read_text())
    expected = json.loads(next(reference.glob("runs/*/*/order0/result.json")).read_text())
    assert result["stream_acc"] == expected["stream_acc"] and result["forgetting"] == expected["forgetting"]


def test_command_runs_a_study_prints_its_table_and_plots(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["cl", "--strategies", "replay", "gdumb", "naive", "--buffers", "dm", "dm@uint8", "--mem-per-class", "2",
         "--orders", "2", "--model", MODEL, "--epochs", "2", "--memory-epochs", "3", "--param", "dm.iterations=2",
         "--out", str(tmp_path / "cl.csv"), "--cache", str(tmp_path / "cache"), "--loggers", "text,csv"]
    )  # fmt: skip
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "dm@uint8" in out
    assert len(list(tmp_path.glob("runs/split-digits/*/order1/logs/from_exp000/csv/eval_results.csv"))) == 5
    with Image.open(tmp_path / "cl.png") as png:
        assert png.size == (1100, 418)  # replay and gdumb panels side by side, 5 x 3.8 inches each at 110 dpi
    frame = pd.read_csv(tmp_path / "cl.csv")
    assert len(frame) == 5 and set(frame.n_orders) == {2}
    for row in frame.itertuples():  # each order's final accuracy, in order, as its run recorded it
        finals = [float(a) for a in row.final_acc_per_order.split()]
        recorded = [
            json.loads(p.read_text())["final_acc"]
            for p in sorted(tmp_path.glob(f"runs/split-digits/*-{row.config_id}/order*/result.json"))
        ]
        assert finals == pytest.approx(recorded, abs=0.005) and sum(finals) / 2 == pytest.approx(
            row.final_acc_mean, abs=0.01
        )
    uint8, fp32 = frame[frame.buffer == "dm@uint8"].iloc[0], frame[frame.buffer == "dm"].iloc[0]
    assert uint8.mem_bytes == fp32.mem_bytes == 2 * 10 * (64 * 4 + 1)  # 2 fp32 exemplars (image, label) per class
    # same bytes: 79 uint8 exemplars (4x 20, less what their labels take), 7 per class at the end
    assert (uint8.memory_images, fp32.memory_images) == (70, 20)


def test_split_fmnist_reads_the_data_root_with_cl_nas_normalisation(data_root):
    spec = benchmark_spec("split-fmnist")
    scenario = make_scenario(spec, list(range(10)), data_root)
    experience = scenario.train_stream[0]
    assert len(scenario.train_stream) == 5 and sorted(experience.classes_in_this_experience) == [0, 1]
    x, _, t = experience.dataset[0]
    pixels = spec.info.denormalize(x[None]) * 255  # Avalanche's default mean (0.2860) would leave an offset
    assert t == 0 and (pixels - pixels.round()).abs().max() < 1e-3
