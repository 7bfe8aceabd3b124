import warnings

import pytest
import torch

from cl_nas.condense import available_methods, build_condenser, register_condenser
from cl_nas.condense.coreset import HerdingCoreset, RandomCoreset
from cl_nas.utils import native_bf16


def _rows_in(images, pool):
    pool_rows = {tuple(r.tolist()) for r in pool.flatten(1)}
    return all(tuple(r.tolist()) in pool_rows for r in images.flatten(1))


@pytest.mark.parametrize("method", ["random", "herding", "kcenter"])
def test_coreset_selects_ipc_real_images_per_class(method, digits):
    options = {} if method == "random" else {"train_epochs": 1, "train_samples": 500}
    syn = build_condenser(method, **options).condense(digits.train, ipc=5, seed=0)
    assert syn.images.shape == (50, 1, 8, 8)
    assert torch.bincount(syn.labels).tolist() == [5] * 10
    assert _rows_in(syn.images, digits.train.images)
    assert syn.meta.method == method


def test_coresets_are_registered():
    assert {"random", "herding", "kcenter"} <= set(available_methods())


def test_random_is_seeded(digits):
    a = build_condenser("random").condense(digits.train, 4, seed=3)
    b = build_condenser("random").condense(digits.train, 4, seed=3)
    c = build_condenser("random").condense(digits.train, 4, seed=4)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_herding_matches_the_class_mean_better_than_random(digits):
    herding = HerdingCoreset(train_epochs=0)  # random-init features: selection logic alone
    net = herding._feature_model(digits.train, torch.Generator().manual_seed(0))
    feats = herding._embed(net, digits.train.images[digits.train.class_indices(0)])
    picks = herding._select(feats, 5)
    herd_gap = (feats[picks].mean(0) - feats.mean(0)).norm()
    gen = torch.Generator().manual_seed(0)
    random_gaps = [
        (feats[torch.randperm(len(feats), generator=gen)[:5]].mean(0) - feats.mean(0)).norm() for _ in range(50)
    ]
    assert herd_gap < min(random_gaps)


def test_kcenter_covers_better_than_random(digits):
    kcenter = build_condenser("kcenter", train_epochs=0)
    net = kcenter._feature_model(digits.train, torch.Generator().manual_seed(0))
    feats = kcenter._embed(net, digits.train.images[digits.train.class_indices(1)])

    def radius(idx):
        return torch.cdist(feats, feats[idx]).min(1).values.max()

    gen = torch.Generator().manual_seed(0)
    assert radius(kcenter._select(feats, 5)) < min(
        radius(torch.randperm(len(feats), generator=gen)[:5]) for _ in range(50)
    )


@pytest.mark.parametrize(
    "ipc,match", [(0, "positive integer"), (-2, "positive integer"), (10_000, "exceeds the .* samples of class")]
)
def test_bad_ipc_is_rejected_before_compute(ipc, match, digits):
    with pytest.raises(ValueError, match=match):
        build_condenser("herding").condense(digits.train, ipc)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="unknown condensation method 'magic'"):
        build_condenser("magic")


def test_cache_key_tracks_config_and_source(digits):
    a = build_condenser("herding", train_epochs=1)
    b = build_condenser("herding", train_epochs=2)
    assert a.cache_key(digits.train, 10, 0) != b.cache_key(digits.train, 10, 0)
    assert a.cache_key(digits.train, 10, 0) != a.cache_key(digits.val, 10, 0)
    assert a.cache_key(digits.train, 10, 0) == build_condenser("herding", train_epochs=1, progress=True).cache_key(
        digits.train, 10, 0
    )


def test_cache_key_tells_embedders_apart(digits):
    from cl_nas.models import build_model

    torch.manual_seed(0)
    first = build_model("convnet:depth=2,width=32", 1, 10, (8, 8))
    second = build_model("convnet:depth=2,width=32", 1, 10, (8, 8))  # same class, other weights
    keys = {HerdingCoreset(embedder=net).cache_key(digits.train, 5, 0) for net in (first, second, None)}
    assert len(keys) == 3
    assert HerdingCoreset(embedder=first).cache_key(digits.train, 5, 0) == HerdingCoreset(embedder=first).cache_key(
        digits.train, 5, 0
    )


@pytest.mark.parametrize("method", ["herding", "kcenter"])
def test_bf16_is_resolved_at_construction_and_keys_the_cache(method, digits):
    auto = build_condenser(method, device="cpu")
    assert auto.bf16 is native_bf16("cpu") and auto.get_config()["bf16"] is native_bf16("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # explicit bf16 where the CPU emulates it
        on = build_condenser(method, device="cpu", bf16=True)
    off = build_condenser(method, device="cpu", bf16="off")
    assert on.get_config()["bf16"] is True and off.get_config()["bf16"] is False
    assert on.cache_key(digits.train, 5, 0) != off.cache_key(digits.train, 5, 0)


def test_a_new_algorithm_version_never_reuses_a_cached_set(digits):
    class FixedHerding(HerdingCoreset):
        algorithm_version = HerdingCoreset.algorithm_version + 1

    assert FixedHerding().get_config() == HerdingCoreset().get_config()
    assert FixedHerding().cache_key(digits.train, 5, 0) != HerdingCoreset().cache_key(digits.train, 5, 0)


def test_a_method_name_is_registered_once():
    with pytest.raises(ValueError, match="condensation method 'random' is already registered"):

        @register_condenser("random")
        class AnotherRandom(RandomCoreset):
            pass

    assert build_condenser("RANDOM").__class__ is RandomCoreset
