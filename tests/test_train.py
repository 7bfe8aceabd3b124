import pytest
import torch

from cl_nas.models import build_model
from cl_nas.train import TrainConfig, accuracy, evaluate_protocol, train_model


def test_training_learns_digits(digits):
    torch.manual_seed(0)
    model = build_model("convnet:width=32", 1, 10, (8, 8))
    before = accuracy(model, digits.test)
    train_model(model, digits.train.images, digits.train.labels, TrainConfig(epochs=40), device="cpu")
    after = accuracy(model, digits.test)
    assert before < 30 and after > 85


def test_epoch_hook_and_lr_decay(digits):
    seen = []
    model = build_model("mlp", 1, 10, (8, 8))
    train_model(
        model,
        digits.train.images[:64],
        digits.train.labels[:64],
        TrainConfig(epochs=4),
        on_epoch_end=lambda e, m: seen.append(e),
    )
    assert seen == [0, 1, 2, 3]


def test_soft_labels_are_accepted(digits):
    soft = torch.nn.functional.one_hot(digits.train.labels, 10).float() * 0.9 + 0.01
    model = build_model("mlp", 1, 10, (8, 8))
    train_model(model, digits.train.images, soft, TrainConfig(epochs=30, lr=0.05))
    assert accuracy(model, digits.test) > 70


def test_evaluate_protocol_repeats_over_seeds(digits):
    result = evaluate_protocol(
        digits.train.images,
        digits.train.labels,
        digits.test,
        model="convnet:width=32",
        n_seeds=3,
        config=TrainConfig(epochs=60),
    )
    assert len(result.accuracies) == 3 and len(set(result.accuracies)) > 1  # seeds differ
    assert result.mean > 85 and result.std < 5
    assert "±" in str(result)


def test_evaluate_protocol_rejects_wrong_image_shape(digits, mnist):
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\).*expect \(1, 8, 8\)"):
        evaluate_protocol(
            mnist.test.images[:10], mnist.test.labels[:10], digits.test, n_seeds=1, config=TrainConfig(epochs=1)
        )


def test_bad_train_config_is_rejected():
    with pytest.raises(ValueError, match="invalid training config"):
        TrainConfig(epochs=-1)
