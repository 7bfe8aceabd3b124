import itertools

import pytest
import torch

from cl_nas.models import (
    ConvNetSpec,
    available_models,
    build_model,
    model_spec_string,
    parse_model_spec,
    register_model,
)
from cl_nas.models.convnet import ACTIVATIONS, NORMS, POOLS


@pytest.mark.parametrize("name", ["convnet", "mlp", "lenet", "alexnet", "vgg11", "resnet18"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_zoo_models_forward_and_embed(name, shape):
    model = build_model(name, shape[0], 10, shape[1:])
    x = torch.randn(2, *shape)
    assert model(x).shape == (2, 10)
    emb = model.embed(x)
    assert emb.ndim == 2 and emb.shape[0] == 2
    # embed is the penultimate layer: the last linear layer maps it to the logits
    head = model.classifier[-1] if isinstance(model.classifier, torch.nn.Sequential) else model.classifier
    assert torch.allclose(head(emb), model(x), atol=1e-5)


def test_registry_names():
    assert set(available_models()) >= {"convnet", "mlp", "lenet", "alexnet", "vgg11", "resnet18"}


@pytest.mark.parametrize("activation,norm,pool", list(itertools.product(ACTIVATIONS, NORMS, POOLS)))
def test_every_convnet_cell_of_the_space_builds(activation, norm, pool):
    spec = ConvNetSpec(depth=2, width=32, activation=activation, norm=norm, pool=pool)
    model = build_model(spec, 1, 10, (28, 28))
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_default_convnet_is_the_dc_papers():
    model = build_model("convnet", 1, 10, (28, 28))
    assert model.spec == ConvNetSpec(depth=3, width=128, activation="relu", norm="instance", pool="avg")
    assert isinstance(model.features[1], torch.nn.GroupNorm) and model.features[1].num_groups == 128


@pytest.mark.parametrize(
    "spec,shape,features,first_padding",
    [
        # the reference treats 28x28 one-channel input as 32x32: pad 3, then 32 -> 16 -> 8 -> 4
        ("convnet", (1, 28, 28), 128 * 4 * 4, 3),
        ("convnet", (3, 32, 32), 128 * 4 * 4, 1),  # 32 -> 16 -> 8 -> 4
        ("convnet", (1, 8, 8), 128 * 1 * 1, 1),  # 8 -> 4 -> 2 -> 1
        ("convnet:stem_padding=1", (1, 28, 28), 128 * 3 * 3, 1),  # the padding-1 variant: 28 -> 14 -> 7 -> 3
        ("convnet:depth=4,pool=max", (1, 28, 28), 128 * 2 * 2, 3),  # 32 -> 16 -> 8 -> 4 -> 2
    ],
)
def test_convnet_embedding_sizes_match_the_reference(spec, shape, features, first_padding):
    model = build_model(spec, shape[0], 10, shape[1:])
    assert model.features[0].padding == (first_padding, first_padding)
    assert model.embed(torch.randn(2, *shape)).shape == (2, features)
    assert model.classifier.in_features == features


def test_default_spec_string_has_no_stem_key_and_the_variant_keeps_it():
    assert "stem_padding" not in model_spec_string(ConvNetSpec())
    assert model_spec_string("convnet:stem_padding=1") == "convnet:stem_padding=1"
    assert parse_model_spec(ConvNetSpec(stem_padding=1))[1]["stem_padding"] == 1


def test_spec_forms_agree():
    as_string = parse_model_spec("convnet:depth=2,width=64,norm=batch")
    as_dict = parse_model_spec({"name": "convnet", "depth": 2, "width": 64, "norm": "batch"})
    as_spec = parse_model_spec(ConvNetSpec(depth=2, width=64, norm="batch"))
    assert as_string[1].items() <= as_spec[1].items() and as_dict == as_string
    assert model_spec_string("convnet:width=64,depth=2") == "convnet:depth=2,width=64"


def test_impossible_convnet_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match=r"depth 4.*8x8.*0x0.*depth <= 3 or pool='none'"):
        build_model("convnet:depth=4", 1, 10, (8, 8))
    assert build_model("convnet:depth=4,pool=none,width=32", 1, 10, (8, 8))(torch.randn(1, 1, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize(
    "spec,match",
    [
        ("transformer", "unknown model 'transformer'"),
        ("convnet:norm=weird", "norm 'weird' is unknown"),
        ("convnet:depth=0", "depth must be a positive integer"),
        ("convnet:colour=red", "does not accept parameters"),
        ("convnet:depth", "expected key=value"),
    ],
)
def test_bad_specs_are_rejected(spec, match):
    with pytest.raises(ValueError, match=match):
        build_model(spec, 1, 10, (28, 28))


def test_an_image_size_that_is_not_height_and_width_is_rejected_by_name():
    with pytest.raises(ValueError, match=r"image_size is \(height, width\), e.g. \(28, 28\), not 28"):
        build_model("convnet", 1, 10, 28)


def test_lenet_rejects_images_too_small():
    with pytest.raises(ValueError, match="LeNet cannot process 8x8"):
        build_model("lenet", 1, 10, (8, 8))


def test_a_model_name_is_registered_once_and_unknown_names_get_a_suggestion():
    with pytest.raises(ValueError, match="model 'mlp' is already registered"):

        @register_model("MLP")
        def another_mlp(channels, num_classes, image_size):
            raise AssertionError("never built")

    with pytest.raises(ValueError, match=r"unknown model 'convnett'; did you mean 'convnet'\? available: alexnet, "):
        build_model("convnett", 1, 10, (8, 8))
