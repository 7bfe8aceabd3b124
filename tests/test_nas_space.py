import collections

import optuna
import pytest

from cl_nas.models import ConvNetSpec, build_model, model_spec_string
from cl_nas.models.space import parse_space_overrides
from cl_nas.nas import Dimension, InfeasibleArchitecture, SearchSpace, SearchSpaceError, convnet_space


def test_convnet_space_enumerates_720_architectures_on_28x28():
    space = convnet_space()
    grid = space.grid(1, (28, 28))
    assert space.size == 720 and len(grid) == 720
    assert len({space.spec_string(p) for p in grid}) == 720
    assert collections.Counter(p["norm"] for p in grid)["instance"] == 720 // 5


def test_impossible_architectures_are_left_out_on_8x8():
    space = convnet_space()
    grid = space.grid(1, (8, 8))
    assert len(grid) == 600  # 8 -> 4 -> 2 -> 1 -> 0: depth 4 with pooling (4 x 3 x 5 x 2 = 120) cannot work
    assert not [p for p in grid if p["depth"] == 4 and p["pool"] != "none"]
    left_out = [p for p in space.points() if p not in grid]
    assert len(left_out) == 120 and all(p["depth"] == 4 and p["pool"] != "none" for p in left_out)
    reason = space.feasibility(left_out[0], 1, (8, 8))
    assert "shrinks 8x8 images to 0x0" in reason
    with pytest.raises(ValueError):  # the rule agrees with the model builder itself
        build_model(space.spec(left_out[0]), 1, 10, (8, 8))


def test_suggest_and_grid_agree():
    space = convnet_space()
    grid = space.grid(1, (8, 8))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for params in grid[::37]:  # a grid point, asked for through suggest_*, comes back unchanged
        study.enqueue_trial(params)
        trial = study.ask()
        assert space.suggest(trial, 1, (8, 8)) == ConvNetSpec(**params)
        study.tell(trial, 0.0)
    # the distributions suggest_* declares are exactly the grid's dimensions
    distributions = study.trials[-1].distributions
    assert distributions["depth"] == optuna.distributions.IntDistribution(1, 4)
    assert distributions["width"].choices == (32, 64, 128, 256)
    assert distributions["norm"].choices == ("none", "batch", "layer", "instance", "group")
    # and whatever the sampler draws is a grid point, or rejected with the reason
    drawn, rejected = set(), 0
    for _ in range(200):
        trial = study.ask()
        try:
            drawn.add(model_spec_string(space.suggest(trial, 1, (8, 8))))
        except InfeasibleArchitecture as err:
            assert "does not fit the images" in str(err) and "depth=4" in str(err) and "0x0" in str(err)
            rejected += 1
        study.tell(trial, 0.0)
    assert drawn <= {space.spec_string(p) for p in grid} and len(drawn) > 100 and rejected > 0


def test_seeded_sample_is_fixed_and_nested():
    space = convnet_space()
    first = space.sample(48, 0, 1, (28, 28))
    assert first == space.sample(48, 0, 1, (28, 28)) and first != space.sample(48, 1, 1, (28, 28))
    assert space.sample(10, 0, 1, (28, 28)) == first[:10]
    assert len({space.spec_string(p) for p in first}) == 48
    with pytest.raises(ValueError, match="only 600 of the 720"):
        space.sample(601, 0, 1, (8, 8))
    with pytest.raises(ValueError, match="positive integer"):
        space.sample(0, 0, 1, (8, 8))


def test_spaces_are_built_from_named_dimensions():
    mlp = SearchSpace("mlp", [Dimension("width", (16, 32, 64))], to_spec=lambda p: {"name": "mlp", **p})
    assert [mlp.spec_string(p) for p in mlp.grid(1, (8, 8))] == ["mlp:width=16", "mlp:width=32", "mlp:width=64"]
    assert mlp.grid(1, (8, 8))[0] == {"width": 16} and not Dimension("width", (16, 32)).is_int_range
    assert Dimension("depth", (1, 2, 3)).is_int_range


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: SearchSpace("s", [], to_spec=dict), "has no dimensions"),
        (lambda: Dimension("depth", ()), "no choices"),
        (lambda: Dimension("depth", (1, 1)), "twice"),
        (lambda: SearchSpace("s", [Dimension("a", (1,)), Dimension("a", (2,))], to_spec=dict), "more than once"),
        (lambda: convnet_space().restrict({"depht": [1]}), r"no dimension\(s\) \['depht'\]"),
        (lambda: convnet_space().restrict({"norm": ["batch", "foo"]}).grid(1, (28, 28)), "contradictory.*'foo'"),
        (lambda: convnet_space().restrict({"depth": [4], "pool": ["avg"]}).grid(1, (8, 8)), "no architecture"),
        (lambda: parse_space_overrides(["depth="]), "without choices"),
        (lambda: parse_space_overrides(["depth=1", "depth=2"]), "twice"),
        (lambda: parse_space_overrides(["depth"]), "NAME=V1,V2"),
    ],
)
def test_empty_or_contradictory_spaces_are_rejected(make, message):
    with pytest.raises(SearchSpaceError, match=message):
        make()


def test_overrides_parse_numbers():
    assert parse_space_overrides(["depth=2,3", "norm=batch"]) == {"depth": [2, 3], "norm": ["batch"]}
    space = convnet_space().restrict(parse_space_overrides(["depth=2,3", "width=48"]))
    assert space.size == 2 * 1 * 3 * 5 * 3 and space.grid(1, (28, 28))[0]["width"] == 48
