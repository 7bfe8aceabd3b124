"""Split-CIFAR keeps Avalanche's default train transforms (random crop and flip) with cl_nas's normalisation.

No CIFAR is on disk in the test environment: Avalanche's CIFAR-10 loader is handed a small fake dataset of
PIL images in torchvision's form, and the stream is built by the real code path from there.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision import transforms

from cl_nas.cl import benchmark_spec, make_scenario

PER_CLASS = 4


class FakeCIFAR10(torch.utils.data.Dataset):
    """torchvision's CIFAR10 interface: ``targets`` and ``(PIL image, label)`` items, random 32x32 RGB pixels."""

    def __init__(self, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.pixels = torch.randint(0, 256, (10 * PER_CLASS, 32, 32, 3), generator=generator, dtype=torch.uint8)
        self.targets = [i // PER_CLASS for i in range(10 * PER_CLASS)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return Image.fromarray(self.pixels[index].numpy()), self.targets[index]


@pytest.fixture
def split_cifar(monkeypatch, tmp_path):
    import avalanche.benchmarks.classic.ccifar10 as ccifar10

    monkeypatch.setattr(ccifar10, "get_cifar10_dataset", lambda root: (FakeCIFAR10(0), FakeCIFAR10(1)))
    spec = benchmark_spec("split-cifar10-5")
    return spec, make_scenario(spec, list(range(10)), tmp_path)


def test_split_cifar_trains_on_avalanches_augmentation_with_cl_nas_normalisation(split_cifar):
    spec, scenario = split_cifar
    normalise = transforms.Compose([transforms.ToTensor(), transforms.Normalize(spec.info.mean, spec.info.std)])
    train = scenario.train_stream[0].dataset
    torch.manual_seed(0)
    draws = torch.stack([train[0][0] for _ in range(16)])
    image = normalise(FakeCIFAR10(0)[0][0])
    assert len({d.numpy().tobytes() for d in draws}) > 1  # a fresh crop or flip on every read
    black = transforms.Normalize(spec.info.mean, spec.info.std)(torch.zeros(3, 1, 1))
    assert any(torch.allclose(d[:, :, 0], black[:, :, 0].expand(3, 32)) for d in draws)  # a column of padding
    assert torch.allclose(train.eval()[0][0], image)  # evaluation reads the image as it is, normalised like ours
    assert torch.allclose(scenario.test_stream[0].dataset[0][0], normalise(FakeCIFAR10(1)[0][0]))


def _augmented_views(image: torch.Tensor, black: torch.Tensor) -> list[torch.Tensor]:
    """Every crop (4-pixel padding in black) of ``image``, flipped or not: what Avalanche's CIFAR train transform
    can make of it."""
    padded = black.view(3, 1, 1).expand(3, 40, 40).clone()
    padded[:, 4:36, 4:36] = image
    crops = [padded[:, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
    return crops + [crop.flip(-1) for crop in crops]


@pytest.mark.parametrize("buffer", ["class-balanced@uint8", "random", "random@uint8"])
def test_buffers_that_store_tensors_replay_with_the_streams_augmentation(split_cifar, buffer):
    from cl_nas.cl.buffers import build_memory, parse_buffer
    from cl_nas.models import build_model

    spec, scenario = split_cifar
    assert benchmark_spec("split-fmnist").replay_transform is None  # Avalanche trains MNIST-like data unaugmented
    model = build_model("convnet:depth=1,width=8", 3, 10, (32, 32))
    memory = build_memory(
        parse_buffer(buffer), 8, model, spec.info, total_num_classes=2, transform=spec.replay_transform
    )  # fmt: skip
    memory.post_adapt(None, scenario.train_stream[0])
    stored = memory.buffer.eval()[0][0]  # as stored: no augmentation outside training
    assert torch.equal(memory.buffer.eval()[0][0], stored)
    black = transforms.Normalize(spec.info.mean, spec.info.std)(torch.zeros(3, 1, 1)).view(3)
    views = _augmented_views(stored, black)
    torch.manual_seed(0)
    draws = [memory.buffer[0][0] for _ in range(16)]  # the train group, as replay reads it
    assert len({d.numpy().tobytes() for d in draws}) > 1  # a fresh crop or flip on every read
    assert all(any(torch.allclose(d, v) for v in views) for d in draws)  # each one a crop or flip of the image
