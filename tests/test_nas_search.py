import contextlib
import os
import signal
from collections.abc import Iterator

import optuna
import pytest
import torch
from optuna.trial import TrialState

from cl_nas.condense import SyntheticCache
from cl_nas.models import build_model
from cl_nas.nas import (
    ArchitectureObjective,
    Dimension,
    GroundTruthConfig,
    SearchSpace,
    convnet_space,
    open_ground_truth,
    open_queue,
    open_search,
    open_storage,
    proxy_data,
    queue_status,
    run_worker,
)
from cl_nas.train import TrainConfig, accuracy, train_model
from cl_nas.utils import machine_description

SMALL = {"depth": [1, 2], "width": [32]}  # cheap architectures: the tests time training, not big convolutions


@pytest.fixture
def random_set(digits, tmp_path):
    return proxy_data("random", digits.train, ipc=10, epochs=6, seed=0, cache=SyntheticCache(tmp_path / "cache"))


def test_objective_reports_every_epoch_and_the_median_pruner_stops_a_poor_candidate(digits, random_set):
    space = convnet_space().restrict(SMALL)
    good = [{"depth": 1, "width": 32, "activation": "relu", "norm": n, "pool": "max"} for n in ("batch", "group")]
    good += [{"depth": 2, "width": 32, "activation": a, "norm": "batch", "pool": "avg"} for a in ("relu", "leakyrelu")]
    poor = {"depth": 2, "width": 32, "activation": "sigmoid", "norm": "none", "pool": "avg"}  # ~10 % for epochs
    study = open_queue(
        optuna.storages.InMemoryStorage(),
        "pruning",
        [*good, poor],
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=len(good)),
    )
    objective = ArchitectureObjective(space, random_set, digits.val, report_every=1)
    assert run_worker(study, objective) == 5
    trials = study.get_trials()
    for t in trials[:4]:
        assert t.state == TrialState.COMPLETE and sorted(t.intermediate_values) == [1, 2, 3, 4, 5, 6]
        assert t.value == t.intermediate_values[6] and t.user_attrs["train_seconds"] > 0
        assert t.user_attrs["machine"] == machine_description()  # each trial says where it was timed
    assert trials[4].state == TrialState.PRUNED and list(trials[4].intermediate_values) == [1]
    assert queue_status(study).done == 5


def test_score_is_validation_accuracy_never_test(digits, random_set):
    space = convnet_space().restrict(SMALL)
    search = open_search(optuna.storages.InMemoryStorage(), space, random_set, digits.val, trials=2, seed=3)
    search.run()
    for arch, score in search.scores().items():
        torch.manual_seed(3)  # rebuild and retrain the candidate exactly as the objective did
        net = build_model(arch, 1, 10, (8, 8))
        train_model(
            net, random_set.images, random_set.labels, TrainConfig(epochs=6), generator=torch.Generator().manual_seed(3)
        )
        assert score.value == accuracy(net, digits.val) != accuracy(net, digits.test)
        assert score.machine == machine_description()


def test_training_images_must_fit_the_space_and_the_validation_split(digits, mnist, random_set, tmp_path):
    mnist_set = proxy_data("random", mnist.train, ipc=1, epochs=1, seed=0, cache=SyntheticCache(tmp_path))
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\) but the digits validation split has \(1, 8, 8\)"):
        ArchitectureObjective(convnet_space(), mnist_set, digits.val)
    with pytest.raises(ValueError, match="no architecture .* can process 1x8x8 images"):
        ArchitectureObjective(convnet_space().restrict({"depth": [4], "pool": ["max"]}), random_set, digits.val)


@contextlib.contextmanager
def _ctrl_c_after(seconds: float) -> Iterator[None]:
    """Ctrl-C as a terminal sends it (SIGINT to this process), ``seconds`` from now, under Python's own
    SIGINT handler (KeyboardInterrupt in the main thread), as a command-line user has it. Earlier tests of
    the suite can leave another handler installed: the interrupt was then ignored and the trial finished."""
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_alarm = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGINT, previous_int)


def test_ground_truth_resumes_per_architecture(digits, tmp_path):
    url = f"sqlite:///{tmp_path / 'gt.db'}"
    space = convnet_space().restrict(SMALL)
    # long enough that a Ctrl-C 1 s into a session lands mid-training even on an idle, fast machine
    config = GroundTruthConfig(n_arch=3, epochs=60)
    gt = open_ground_truth(open_storage(url), space, digits, config, checkpoint_dir=tmp_path / "ck")
    assert gt.run(max_trials=1) == 1  # a first session stops after one architecture
    with pytest.raises(KeyboardInterrupt), _ctrl_c_after(1.0):  # a second one is stopped mid-training by Ctrl-C
        gt.run()
    (_, study), *_ = gt.stages()
    done_before = {t.user_attrs["arch"]: t.number for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert len(done_before) == 1

    resumed = open_ground_truth(open_storage(url), space, digits, config, checkpoint_dir=tmp_path / "ck")
    (_, again), *_ = resumed.stages()  # a new process, same command: the same study
    assert again.study_name == study.study_name and resumed.run() == 2
    trials = again.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["arch"] for t in complete) == sorted(
        space.spec_string(p) for p in space.sample(3, 0, 1, (8, 8))
    )
    assert all(done_before[t.user_attrs["arch"]] == t.number for t in complete if t.user_attrs["arch"] in done_before)
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert len(interrupted) == 1 and interrupted[0].user_attrs["interrupted"]
    assert str(queue_status(again)) == "3/3 done, 0 pending, 1 recovered after a failure, 0 lost"
    assert set(resumed.scores()) == {t.user_attrs["arch"] for t in complete}
    assert open_ground_truth(open_storage(url), space, digits, config).run() == 0  # nothing left to train


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_sampled_slots_replace_infeasible_draws(digits, random_set, sampler):
    # on 8x8 images depth 4 works only without pooling: half of this space cannot be built
    space = convnet_space().restrict({"depth": [4], "width": [32], "activation": ["relu"], "pool": ["none", "avg"]})
    search = open_search(optuna.storages.InMemoryStorage(), space, random_set, digits.val, trials=4, sampler=sampler)
    search.run()
    trials = search.study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == 4 and all(t.params["pool"] == "none" for t in complete)
    assert all("0x0" in t.user_attrs["infeasible"] for t in failed)
    assert sorted(t.user_attrs["slot"] for t in complete) == [0, 1, 2, 3]
    status = queue_status(search.study)
    assert (status.done, status.lost, status.surplus, status.recovered) == (4, 0, 0, len(failed))


def test_another_model_family_runs_through_the_same_loop(digits, random_set):
    mlp = SearchSpace("mlp", [Dimension("width", (16, 64))], to_spec=lambda p: {"name": "mlp", **p})
    search = open_search(optuna.storages.InMemoryStorage(), mlp, random_set, digits.val, trials=2)
    search.run()
    assert sorted(search.scores()) == ["mlp:width=16", "mlp:width=64"]
