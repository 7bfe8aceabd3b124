import pytest
import torch

from cl_nas.augment import DSA, OPERATIONS, default_strategy


@pytest.mark.parametrize("op", OPERATIONS)
def test_each_operation_is_differentiable_and_shape_preserving(op):
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    y = DSA(op)(x, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_per_image_draws_differ_but_siamese_groups_share():
    dsa = DSA("rotate")
    x = torch.randn(1, 1, 12, 12).expand(4, -1, -1, -1)
    y = dsa(x, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(y[0], y[1])
    real, syn = dsa.siamese(
        [x, x[:2]],
        [torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1])],
        groups=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.allclose(real[0], real[1]) and torch.allclose(real[0], syn[0])
    assert torch.allclose(real[2], syn[1]) and not torch.allclose(real[0], real[2])


def test_crop_translates_with_zero_fill():
    dsa = DSA("crop")
    x = torch.arange(16.0).view(1, 1, 4, 4)
    params = dsa.sample(1, (4, 4))
    params.values = {"dy": torch.tensor([1]), "dx": torch.tensor([0])}
    y = dsa.apply(x, params)
    assert torch.equal(y[0, 0, :3], x[0, 0, 1:]) and torch.equal(y[0, 0, 3], torch.zeros(4))


def test_strategy_validation_and_digit_default():
    with pytest.raises(ValueError, match="unknown DSA operation"):
        DSA("color_blur")
    assert "flip" not in default_strategy("mnist") and "flip" in default_strategy("cifar10")
