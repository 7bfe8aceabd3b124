import pytest
import torch

from cl_nas.data import (
    DATA_ENV_VAR,
    TRAIN_SPLIT_HASHES,
    DatasetUnavailableError,
    available_datasets,
    dataset_info,
    load_dataset,
    resolve_data_root,
)


def test_registry_lists_the_named_datasets():
    assert set(available_datasets()) == {"digits", "mnist", "fashionmnist", "svhn", "cifar10", "cifar100", "usps"}
    assert dataset_info("CIFAR100").num_classes == 100
    assert dataset_info("fashion-mnist").name == "fashionmnist"
    assert dataset_info("svhn").image_shape == (3, 32, 32)


def test_digits_is_embedded_normalised_and_split(digits):
    assert digits.info.image_shape == (1, 8, 8)
    total = len(digits.train) + len(digits.val) + len(digits.test)
    assert total == 1797
    assert abs(digits.train.images.mean().item()) < 0.05
    assert abs(digits.train.images.std().item() - 1.0) < 0.05
    assert digits.train.classes == list(range(10))


def test_mnist_loads_from_data_root_with_stratified_validation_split(mnist):
    assert len(mnist.train) + len(mnist.val) == 60000
    assert len(mnist.test) == 10000
    assert abs(len(mnist.val) - 6000) <= 10
    counts = mnist.val.class_counts()
    full = {c: counts[c] + mnist.train.class_counts()[c] for c in counts}
    for c in counts:  # every class holds out ~10 %
        assert abs(counts[c] / full[c] - 0.1) < 0.002
    assert abs(mnist.train.images.mean().item()) < 0.01


def test_fashion_mnist_loads(data_root):
    splits = load_dataset("FashionMNIST", data_root)
    assert splits.info.name == "fashionmnist" and len(splits.test) == 10000


def test_validation_split_is_disjoint_from_train(digits):
    train_rows = {tuple(r.tolist()) for r in digits.train.images.flatten(1)}
    val_rows = [tuple(r.tolist()) for r in digits.val.images.flatten(1)]
    overlap = sum(r in train_rows for r in val_rows)
    assert overlap <= 2  # sklearn digits holds a couple of exact duplicate images


def test_data_root_resolution_order(tmp_path, monkeypatch):
    env_root = tmp_path / "env"
    env_root.mkdir()
    monkeypatch.setenv(DATA_ENV_VAR, str(env_root))
    assert resolve_data_root(None) == env_root
    assert resolve_data_root(tmp_path) == tmp_path


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*available: cifar10"):
        load_dataset("imagenet")


def test_missing_data_root_is_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*--data-root"):
        load_dataset("mnist", tmp_path / "nowhere")


def test_missing_dataset_without_download_names_root_and_fix(tmp_path):
    with pytest.raises(DatasetUnavailableError, match=f"{tmp_path}.*{DATA_ENV_VAR}"):
        load_dataset("cifar10", tmp_path, download=False)


def test_content_hash_identifies_data(digits):
    assert digits.train.content_hash() == digits.train.subset(torch.arange(len(digits.train))).content_hash()
    assert digits.train.content_hash() != digits.val.content_hash()


def test_known_training_split_hashes_are_current(digits, request):
    """TRAIN_SPLIT_HASHES names a set's source before any data loads: it must match what load_dataset gives."""
    names = {name: key for key, name in TRAIN_SPLIT_HASHES.items()}
    assert digits.train.content_hash() == names["digits"]
    root = request.getfixturevalue("data_root")  # skips the real datasets where they are absent
    for name in ("mnist", "fashionmnist"):
        assert load_dataset(name, root).train.content_hash() == names[name]
