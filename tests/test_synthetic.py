import os
import stat
import time

import pytest
import torch
from PIL import Image

from cl_nas.condense import build_condenser
from cl_nas.synthetic import SyntheticSet, SyntheticSetError


@pytest.fixture(scope="module")
def syn(digits):
    return build_condenser("random").condense(digits.train, ipc=3, seed=1)


def test_metadata_is_complete(syn, digits):
    m = syn.meta
    assert (m.method, m.dataset, m.ipc, m.seed) == ("random", "digits", 3, 1)
    assert m.source_hash == digits.train.content_hash()
    assert {"torch", "torchvision", "cl_nas", "python"} <= set(m.versions)
    assert isinstance(m.config, dict)
    start = time.perf_counter()
    again = build_condenser("random").condense(digits.train, ipc=3, seed=1)
    assert 0 < again.meta.wall_seconds <= time.perf_counter() - start  # the condensation's own time


def test_save_load_roundtrip(syn, tmp_path):
    path = syn.save(tmp_path / "sub" / "set.pt")
    back = SyntheticSet.load(path)
    assert torch.equal(back.images, syn.images) and torch.equal(back.labels, syn.labels)
    assert back.meta == syn.meta
    assert os.listdir(path.parent) == ["set.pt"]  # atomic write leaves no temporary file


def test_saved_files_get_the_umask_mode_like_any_written_file(syn, tmp_path):
    old = os.umask(0o022)
    try:
        path = syn.save(tmp_path / "set.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by others, not mkstemp's 0o600


def test_to_dataset_and_png(syn, tmp_path):
    ds = syn.to_dataset()
    x, y = ds[0]
    assert x.shape == (1, 8, 8) and 0 <= int(y) < 10 and len(ds) == 30
    png = syn.save_png(tmp_path / "grid.png")
    width, height = Image.open(png).size
    assert height == 10 * 9 + 1 and width == 3 * 9 + 1  # one row of 8x8 tiles (+1 px padding) per class


def test_grid_is_pixel_space_and_truncates(syn):
    grid = syn.grid(max_per_class=2)
    assert grid.shape == (3, 10 * 9 + 1, 2 * 9 + 1)  # grey images are shown as RGB
    assert 0.0 <= float(grid.min()) and float(grid.max()) <= 1.0
    first = syn.info.denormalize(syn.sorted_by_class().images[:1]).clamp(0, 1)[0, 0]
    assert torch.allclose(grid[0, 1:9, 1:9], first)  # the first tile is class 0's first image, denormalised


def test_truncated_file_is_rejected(syn, tmp_path):
    path = syn.save(tmp_path / "set.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SyntheticSetError, match="not a readable synthetic-set file"):
        SyntheticSet.load(path)


def test_foreign_file_is_rejected(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(SyntheticSetError, match="not a cl_nas synthetic set"):
        SyntheticSet.load(path)


def test_pickled_code_is_never_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "cl_nas.SyntheticSet", "payload": Evil()}, path)
    with pytest.raises(SyntheticSetError, match="not a readable"):
        SyntheticSet.load(path)


def test_inconsistent_contents_are_rejected(syn):
    with pytest.raises(SyntheticSetError, match="labels outside"):
        SyntheticSet(syn.images, syn.labels + 10, syn.meta)
    with pytest.raises(SyntheticSetError, match="metadata says"):
        SyntheticSet(syn.images[:, :, :4], syn.labels, syn.meta)
    with pytest.raises(SyntheticSetError, match="int64"):
        SyntheticSet(syn.images, syn.labels.float(), syn.meta)


def test_shape_mismatch_with_model_is_named(syn):
    with pytest.raises(SyntheticSetError, match="1x8x8 images but the model expects 1x28x28"):
        syn.check_compatible(1, (28, 28))
