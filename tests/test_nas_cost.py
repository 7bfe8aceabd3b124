"""What training costs: FLOPs, a measured epoch, and a ground truth's estimated hours."""

import pytest

from cl_nas.nas import GroundTruthConfig
from cl_nas.nas.cost import EpochTime, estimate_seconds, forward_flops, plan_seconds, time_epoch


def test_flops_grow_with_the_architecture(digits):
    small = forward_flops("convnet:depth=1,width=32", digits.info)
    wide = forward_flops("convnet:depth=1,width=64", digits.info)
    deep = forward_flops("convnet:depth=3,width=32,pool=none", digits.info)
    assert 0 < small < wide and small < deep
    assert wide == pytest.approx(2 * small, rel=0.05)  # one convolution and the classifier: linear in width


def test_an_epoch_is_timed_from_a_few_batches(digits):
    measured = time_epoch("convnet:depth=1,width=32", digits.train, budget_seconds=0.2)
    assert measured.batches >= 2 and measured.seconds > 0 and measured.flops > 0


def test_estimates_follow_the_line_through_two_measurements():
    small, large = EpochTime("s", 100, 3, 10.0), EpochTime("l", 1100, 2, 110.0)
    assert estimate_seconds([100, 600, 1100, 50], small, large) == pytest.approx([10.0, 60.0, 110.0, 10.0])
    config = GroundTruthConfig(n_arch=4, epochs=4, seeds=(0, 1), rungs=("1x1:2",))
    stages = plan_seconds(config.fidelities(), [10.0, 20.0, 30.0, 40.0])
    assert [(s.archs, s.epochs, s.seeds) for s in stages] == [(4, 1, 1), (2, 4, 2)]
    assert stages[0].worst == stages[0].typical == 100.0
    assert stages[1].worst == (40 + 30) * 4 * 2 and stages[1].typical == 25 * 2 * 4 * 2
    with pytest.raises(ValueError, match="different FLOPs"):
        estimate_seconds([1], small, small)
