"""The ground truth: resumable per architecture, seed and epoch; several seeds; successive halving; its noise."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from cl_nas.nas import ArchScore, GroundTruthConfig, Rung, convnet_space, open_ground_truth, open_storage, resolution
from cl_nas.nas.ground_truth import SEED_PARAM, best, checkpoint_name, describe_scores
from cl_nas.utils import load_torch_file

REPO = Path(__file__).resolve().parents[1]
# one architecture slow enough (no pooling, width 64) that a kill lands between two epochs of digits
SLOW = {"depth": [2], "width": [64], "activation": ["relu"], "norm": ["batch"], "pool": ["none"]}
SMALL = {"depth": [1, 2], "width": [32]}
EPOCHS = 24

WORKER = """
import sys
from cl_nas.data import load_dataset
from cl_nas.nas import GroundTruthConfig, convnet_space, open_ground_truth, open_storage
space = convnet_space().restrict({space!r})
storage = open_storage(sys.argv[1], heartbeat_interval=1, grace_period=2)
config = GroundTruthConfig(n_arch=1, epochs={epochs}, seeds=(3,))
open_ground_truth(storage, space, load_dataset("digits"), config, checkpoint_dir=sys.argv[2]).run()
"""


def _checkpointed_epochs(folder: Path) -> int:
    files = list(folder.glob("*/*.pt"))
    if not files:
        return 0
    try:
        return len(load_torch_file(files[0], "checkpoint")["done"]["scores"])
    except ValueError:  # caught between the temporary file and its rename: look again
        return 0


@pytest.mark.slow
def test_a_killed_trial_resumes_from_its_last_epoch_and_repeats_the_uninterrupted_run(digits, tmp_path):
    space = convnet_space().restrict(SLOW)
    config = GroundTruthConfig(n_arch=1, epochs=EPOCHS, seeds=(3,))
    whole = open_ground_truth(open_storage(f"sqlite:///{tmp_path / 'whole.db'}"), space, digits, config,
                              checkpoint_dir=tmp_path / "whole")  # fmt: skip
    assert whole.run() == 1
    (uninterrupted,) = whole.stages().__next__()[1].get_trials(states=(TrialState.COMPLETE,))

    url, checkpoints = f"sqlite:///{tmp_path / 'killed.db'}", tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": str(REPO)}
    script = WORKER.format(space=SLOW, epochs=EPOCHS)
    worker = subprocess.Popen([sys.executable, "-c", script, url, str(checkpoints)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while _checkpointed_epochs(checkpoints) < 3 and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)  # mid-run: between two epochs at best, mid-epoch at worst
        assert worker.wait(timeout=10) == -signal.SIGKILL, worker.stdout.read().decode()
    finally:
        if worker.poll() is None:
            worker.kill()
    killed_after = _checkpointed_epochs(checkpoints)
    assert 3 <= killed_after < EPOCHS

    time.sleep(3)  # past the grace period: the next worker fails the silent trial and queues it again
    resumed = open_ground_truth(open_storage(url, heartbeat_interval=1, grace_period=2), space, digits, config,
                                checkpoint_dir=checkpoints)  # fmt: skip
    assert resumed.run() == 1
    trials = resumed.stages().__next__()[1].get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    retry = trials[1]
    assert retry.user_attrs["resumed_at_epoch"] == killed_after  # trained only the epochs after the checkpoint
    assert retry.intermediate_values == uninterrupted.intermediate_values and len(retry.intermediate_values) == EPOCHS
    assert retry.value == uninterrupted.value
    assert list(checkpoints.glob("*/*.pt")) == []  # a finished slot's checkpoint is deleted


def test_every_seed_trains_and_successive_halving_spends_the_full_fidelity_on_the_best(digits, tmp_path):
    space = convnet_space().restrict(SMALL)
    config = GroundTruthConfig(n_arch=5, epochs=3, seeds=(0, 1), rungs=(Rung.parse("1x1:2"),))
    assert config.fidelities() == [(5, 1, 1), (2, 3, 2)]
    gt = open_ground_truth(open_storage(f"sqlite:///{tmp_path / 'gt.db'}"), space, digits, config,
                           checkpoint_dir=tmp_path / "ck")  # fmt: skip
    assert gt.scores() == {} and not gt.complete
    assert gt.run() == 5 + 2 * 2 and gt.complete
    (stage0, screen), (stage1, final) = list(gt.stages())
    screened = {t.user_attrs["arch"]: t.value for t in screen.get_trials(states=(TrialState.COMPLETE,))}
    assert len(screened) == 5 and stage0.seeds == (0,)
    assert set(stage1.archs) == set(sorted(screened, key=lambda a: (-screened[a], a))[:2])  # the best two go on
    runs = final.get_trials(states=(TrialState.COMPLETE,))
    assert sorted((t.user_attrs["arch"], t.params[SEED_PARAM]) for t in runs) == sorted(
        (a, s) for a in stage1.archs for s in (0, 1)
    )
    truth = gt.scores()
    assert len(truth) == 5 and sorted(s.fidelity for s in truth.values()) == [(1, 1)] * 3 + [(3, 2)] * 2
    for arch in stage1.archs:
        values = tuple(
            t.value for t in sorted(runs, key=lambda t: t.params[SEED_PARAM]) if t.user_attrs["arch"] == arch
        )
        assert truth[arch].seed_values == values and truth[arch].value == pytest.approx(sum(values) / 2)
        assert truth[arch].train_seconds > sum(
            t.user_attrs["train_seconds"] for t in runs if t.user_attrs["arch"] == arch
        )
    assert set(best(truth, 2)) == set(stage1.archs)  # the full fidelity ranks above the screened-out
    assert describe_scores(truth).startswith("5 architectures on the full training split: 2 at 3 epochs x 2 seeds")
    assert "successive halving: 5 at 1 epoch x 1 seed, then 2 at 3 epochs x 2 seeds" in config.describe()
    assert gt.run() == 0  # rerunning the command finds nothing left


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seeds": (0, 0)}, "distinct training seeds"),
        ({"rungs": ("1x1:48",)}, "keep fewer than the 48"),
        ({"rungs": ("2x1:24", "1x1:12"), "epochs": 4}, "must not lower the epochs"),
        ({"rungs": ("1x2:24",), "seeds": (0,)}, "uses 2 seeds but the ground truth has 1"),
        ({"rungs": ("4x1:24",), "epochs": 2}, "full fidelity .* must exceed the last rung's"),
        ({"rungs": ("1x1",)}, "a rung is EPOCHSxSEEDS:KEEP"),
    ],
)
def test_bad_ground_truth_configs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroundTruthConfig(**kwargs)


def _score(arch: str, values: tuple[float, ...], epochs: int = 8) -> ArchScore:
    return ArchScore(arch, {}, sum(values) / len(values), False, epochs, 1.0, 0.0, 0, "m", values)


def test_resolution_compares_the_seed_noise_with_the_spread_of_the_top_ten():
    # 12 architectures 0.5 points apart, each +-0.1 over its two seeds: SD 0.1414, top-10 spread 4.5
    truth = {f"a{i:02d}": _score(f"a{i:02d}", (90 - 0.5 * i - 0.1, 90 - 0.5 * i + 0.1)) for i in range(12)}
    truth["screened"] = _score("screened", (99.0,), epochs=1)  # a lower fidelity: not in the measurement
    r = resolution(truth)
    assert (r.n_arch, r.seeds) == (12, 2)
    assert r.run_sd == pytest.approx(math.sqrt(0.02)) and r.value_sd == pytest.approx(0.1)
    assert r.top10_spread == pytest.approx(4.5) and r.resolves
    assert "'SD <= spread / 4' holds" in r.describe()
    noisy = {a: _score(a, (s.value - 1.5, s.value + 1.5)) for a, s in truth.items() if a != "screened"}
    assert not resolution(noisy).resolves and "does NOT hold" in resolution(noisy).describe()
    single = resolution({a: _score(a, (s.value,)) for a, s in noisy.items()})
    assert math.isnan(single.run_sd) and "not measured (one training seed)" in single.describe()


def test_checkpoint_names_are_per_architecture_and_seed():
    names = {checkpoint_name(a, s) for a in ("convnet:depth=1", "convnet:depth=2") for s in (0, 1)}
    assert len(names) == 4 and all(n.endswith(".pt") for n in names)
