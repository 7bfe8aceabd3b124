"""The training-free control: NASWOT scores at initialisation, registered as a proxy."""

import math

import optuna
import pytest
import torch
from torch import nn

from cl_nas.condense import SyntheticCache
from cl_nas.models import build_model
from cl_nas.nas import PROXIES, convnet_space, naswot_score, open_search, proxy_data
from cl_nas.nas.proxy import check_proxy

SPACE = {"depth": [1, 2], "width": [32]}


def _score(arch: str, images: torch.Tensor, seed: int) -> float:
    torch.manual_seed(seed)
    return naswot_score(build_model(arch, 1, 10, (8, 8)), images)


def test_naswot_is_deterministic_for_a_seed_and_tells_architectures_apart(digits):
    images = digits.train.images[:64]
    archs = ["convnet:depth=1,width=32,norm=none", "convnet:depth=2,width=32,norm=batch,activation=sigmoid",
             "convnet:depth=2,width=64,norm=instance,activation=leakyrelu"]  # fmt: skip
    scores = [_score(a, images, seed=0) for a in archs]
    assert scores == [_score(a, images, seed=0) for a in archs]  # same network, same images: same score
    assert len(set(scores)) == 3 and all(math.isfinite(s) for s in scores)
    assert _score(archs[0], images, seed=1) != scores[0]  # another initialisation
    assert _score(archs[0], images[:32], seed=0) != scores[0]  # other images


def test_naswot_of_a_network_that_maps_all_images_alike_is_minus_infinity():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.fill_(1.0)  # every unit on for every image: all codes equal, the kernel is singular
    assert naswot_score(net, torch.randn(5, 1, 2, 2)) == -math.inf
    with pytest.raises(ValueError, match="needs ReLU, LeakyReLU or sigmoid"):
        naswot_score(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), torch.randn(5, 1, 2, 2))


def test_the_naswot_proxy_scores_a_study_without_training(digits, tmp_path):
    assert "naswot" in PROXIES
    data = proxy_data("naswot", digits.train, ipc=5, epochs=20, seed=0, cache=SyntheticCache(tmp_path))
    assert (data.epochs, data.sample_passes, len(data.images)) == (0, 0, 50)
    space = convnet_space().restrict(SPACE)
    search = open_search(optuna.storages.InMemoryStorage(), space, data, digits.val, trials=4)
    assert search.run() == 4
    scores = search.scores()
    # one block's codes do not depend on the pooling after the activation, nor on which activation: such pairs tie
    assert len(scores) == 4 and len({s.value for s in scores.values()}) >= 2
    assert all(s.epochs == 0 and s.train_seconds > 0 and s.eval_seconds == 0 for s in scores.values())
    for arch, score in scores.items():  # the study's score is the score of the network built from its seed
        assert score.value == _score(arch, data.images, seed=0)


def test_the_subset_controls_refuse_a_budget_beyond_the_training_split(digits):
    n, classes = len(digits.train), len(digits.train.classes)
    ipc = n // classes + 1  # one more image per class than the split holds
    check_proxy("naswot", digits.train, ipc=ipc - 1, epochs=50)  # naswot's budget ignores the epochs
    with pytest.raises(ValueError, match=rf"naswot at ipc={ipc}, 1 epochs needs {ipc * classes} .*lower --ipc$"):
        check_proxy("naswot", digits.train, ipc=ipc, epochs=1)
    epochs = n // classes + 1  # earlystop's budget is ipc x classes x epochs samples of one pass
    with pytest.raises(ValueError, match=rf"earlystop at ipc=1, {epochs} epochs .*lower --ipc or --epochs$"):
        check_proxy("earlystop", digits.train, ipc=1, epochs=epochs)
