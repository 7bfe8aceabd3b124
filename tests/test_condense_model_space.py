"""Search-space-aware condensation: DM draws its embedding networks from the NAS search space."""

import pytest
import torch

from cl_nas.condense import build_condenser
from cl_nas.condense.model_space import draw_network, model_or_space, space_choices
from cl_nas.models import ConvNetSpec
from cl_nas.models.space import convnet_space


def test_the_convnet_space_is_the_nas_search_space():
    nas = {d.name: d.choices for d in convnet_space().dimensions}
    assert space_choices("space:convnet") == nas
    restricted = space_choices("space:convnet:norm=instance|batch,depth=2")
    assert restricted["norm"] == ("batch", "instance") and restricted["depth"] == (2,)  # the family's order
    assert model_or_space("space:convnet:norm=instance|batch,depth=2") == "space:convnet:depth=2,norm=batch|instance"
    assert model_or_space("space:convnet:depth=1|2|3|4") == "space:convnet"  # every choice: the whole space
    assert model_or_space({"name": "convnet", "depth": 2}) == "convnet:depth=2"  # plain specs as before


@pytest.mark.parametrize(
    "text,message",
    [
        ("space:resnet", "unknown model space 'resnet'"),
        ("space:convnet:kernel=3", "has no dimension 'kernel'"),
        ("space:convnet:norm=fancy", "norm must list values among"),
    ],
)
def test_bad_spaces_are_rejected_when_configured(text, message):
    with pytest.raises(ValueError, match=message):
        build_condenser("dm", iterations=2, model=text)


def test_draws_are_uniform_over_the_architectures_that_fit():
    torch.manual_seed(0)
    drawn = [draw_network("space:convnet:depth=3|4", 1, (8, 8)) for _ in range(200)]
    assert all(isinstance(s, ConvNetSpec) and s.depth in (3, 4) for s in drawn)
    assert all(s.pool == "none" for s in drawn if s.depth == 4)  # 8x8 pooled four times is nothing: never drawn
    assert len(set(drawn)) > 50  # 4 widths x 3 activations x 5 norms x (3 + 1) poolings = 240 fit
    torch.manual_seed(0)
    assert [draw_network("space:convnet:depth=3|4", 1, (8, 8)) for _ in range(200)] == drawn  # seeded


def test_dm_over_the_space_draws_many_architectures_and_has_its_own_cache_key(digits):
    settings = dict(iterations=6, batch_real=8)
    plain, spaced = build_condenser("dm", **settings), build_condenser("dm", model="space:convnet", **settings)
    narrow = build_condenser("dm", model="space:convnet:depth=1", **settings)
    keys = {c.cache_key(digits.train, 2, 0) for c in (plain, spaced, narrow)}
    assert len(keys) == 3 and spaced.get_config()["model"] == "space:convnet"

    torch.manual_seed(0)
    nets = [spaced.fresh_model(digits.info) for _ in range(8)]
    assert len({net.spec for net in nets}) > 1 and all(net.spec.depth in (1, 2, 3, 4) for net in nets)
    assert {plain.fresh_model(digits.info).spec for _ in range(3)} == {ConvNetSpec()}

    first = spaced.condense(digits.train, ipc=2, seed=0)
    assert first.meta.config["model"] == "space:convnet" and first.images.shape == (20, 1, 8, 8)
    assert torch.equal(spaced.condense(digits.train, ipc=2, seed=0).images, first.images)  # reproducible
    assert not torch.equal(plain.condense(digits.train, ipc=2, seed=0).images, first.images)
