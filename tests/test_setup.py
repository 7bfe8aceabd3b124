"""The install works: torchvision and Avalanche import on the CPU torch, datasets and transforms work."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.mark.slow  # starts other processes
def test_import_cl_nas_torchvision_avalanche_in_fresh_interpreter():
    code = "import cl_nas, torchvision, avalanche; from avalanche.training.supervised import Naive; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def test_shim_only_defines_schemas_when_extension_is_missing():
    from cl_nas import _compat

    loads = _compat._torchvision_extension_loads()
    assert (_compat._library is None) == loads
    assert hasattr(torch.ops.torchvision, "nms")


def test_torchvision_dataset_and_transforms_work(data_root):
    import torchvision
    from torchvision import transforms

    ds = torchvision.datasets.MNIST(root=str(data_root), train=False, download=False)
    image, label = ds[0]
    assert isinstance(image, Image.Image) and 0 <= label < 10
    tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])(image)
    assert tensor.shape == (1, 28, 28)
    raw = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    assert torch.allclose(tensor[0], (raw - 0.1307) / 0.3081, atol=1e-5)
