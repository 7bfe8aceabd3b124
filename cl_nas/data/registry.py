"""Named datasets, loaded through torchvision (or scikit-learn for ``digits``) into tensors.

The root directory comes from, in order: the ``root`` argument (the CLI's ``--data-root``),
the ``CL_NAS_DATA`` environment variable, then ``~/.cache/cl_nas/data``. A root given by the
user must be an existing folder; the default cache folder is created. torchvision downloads a missing
dataset into the root; when that fails (no network) the error names the root and how to change it.
Files that are there but damaged (truncated, labels out of range) are named in the error instead.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cl_nas.data.images import DatasetInfo, ImageDataset, stratified_split

DATA_ENV_VAR = "CL_NAS_DATA"
DEFAULT_DATA_ROOT = Path.home() / ".cache" / "cl_nas" / "data"


class DatasetUnavailableError(RuntimeError):
    """A dataset is neither on disk nor downloadable, or its files are damaged."""


@dataclass(frozen=True)
class DatasetSplits:
    """Train, validation (held out from the official train split) and test sets."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset

    @property
    def info(self) -> DatasetInfo:
        return self.train.info


# A loader returns uint8 or [0, 1] float arrays: (train_x, train_y, test_x, test_y), x as NCHW.
RawLoader = Callable[[Path, bool], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: RawLoader
    needs_root: bool = True
    # where the data lies under the root, to name a damaged file: the dataset's folder, and for MNIST's idx
    # format each file by what it holds ("train labels", ...)
    folder: str | None = None
    idx_files: Mapping[str, str] = field(default_factory=dict)


def _idx_files(folder: str) -> dict[str, str]:
    return {
        f"{split} {kind}": f"{folder}/raw/{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
        for split, prefix in (("train", "train"), ("test", "t10k"))
        for kind in ("images", "labels")
    }


def _torchvision_loader(cls_name: str, split_kw: str | None = None) -> RawLoader:
    def load(root: Path, download: bool):
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        arrays = []
        for train in (True, False):
            kwargs = {"split": "train" if train else "test"} if split_kw else {"train": train}
            ds = cls(root=str(root), download=download, **kwargs)
            data = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
            targets = np.asarray(getattr(ds, "targets", None) if hasattr(ds, "targets") else ds.labels)
            if data.ndim == 3:  # (N, H, W) grayscale
                data = data[:, None]
            elif data.shape[-1] == 3:  # (N, H, W, C) colour -> NCHW
                data = data.transpose(0, 3, 1, 2)
            arrays += [data, targets]
        return arrays[0], arrays[1], arrays[2], arrays[3]

    return load


def _digits_loader(root: Path, download: bool):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    # scikit-learn ships no test split: hold out a fixed, stratified 25 % as the test set
    train_idx, test_idx = (t.numpy() for t in stratified_split(torch.from_numpy(y), 0.25, seed=0))
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


_DATASETS: dict[str, _Entry] = {
    "digits": _Entry(DatasetInfo("digits", 1, (8, 8), 10, (0.3053,), (0.3760,)), _digits_loader, needs_root=False),
    "mnist": _Entry(
        DatasetInfo("mnist", 1, (28, 28), 10, (0.1307,), (0.3081,)),
        _torchvision_loader("MNIST"),
        folder="MNIST",
        idx_files=_idx_files("MNIST"),
    ),
    "fashionmnist": _Entry(
        DatasetInfo("fashionmnist", 1, (28, 28), 10, (0.2861,), (0.3530,)),
        _torchvision_loader("FashionMNIST"),
        folder="FashionMNIST",
        idx_files=_idx_files("FashionMNIST"),
    ),
    "usps": _Entry(
        DatasetInfo("usps", 1, (16, 16), 10, (0.2469,), (0.2989,)), _torchvision_loader("USPS"), folder="usps.bz2"
    ),
    "svhn": _Entry(
        DatasetInfo("svhn", 3, (32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
        _torchvision_loader("SVHN", split_kw="split"),
        folder="train_32x32.mat",
    ),
    "cifar10": _Entry(
        DatasetInfo("cifar10", 3, (32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
        _torchvision_loader("CIFAR10"),
        folder="cifar-10-batches-py",
    ),
    "cifar100": _Entry(
        DatasetInfo("cifar100", 3, (32, 32), 100, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
        _torchvision_loader("CIFAR100"),
        folder="cifar-100-python",
    ),
}
# ImageDataset.content_hash() of each dataset's training split as load_dataset returns it by default (validation
# fraction 0.1, split seed 0): a synthetic set's source_hash then names the dataset it was condensed from
# before any data loads. Datasets not listed are checked after loading (tests/test_data.py keeps these current).
TRAIN_SPLIT_HASHES = {"c7f7b9078b57d2c1": "digits", "cd3483186a3d5db4": "mnist", "09021b52c99e0c3b": "fashionmnist"}
_ALIASES = {"fashion-mnist": "fashionmnist", "fashion_mnist": "fashionmnist", "fmnist": "fashionmnist"}


def available_datasets() -> list[str]:
    return sorted(_DATASETS)


def canonical_name(name: str) -> str:
    """The registry key for ``name`` (case and common aliases folded); unknown names raise."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    return key


def dataset_info(name: str) -> DatasetInfo:
    return _DATASETS[canonical_name(name)].info


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root``, else ``$CL_NAS_DATA``, else the cache folder (created)."""
    for source, value in (("--data-root", root), (DATA_ENV_VAR, os.environ.get(DATA_ENV_VAR))):
        if value:
            path = Path(value).expanduser()
            if path.exists() and not path.is_dir():
                raise FileNotFoundError(
                    f"data root {str(path)!r} (from {source}) is a file, not a folder; point "
                    f"--data-root / {DATA_ENV_VAR} at a folder holding the datasets"
                )
            if not path.is_dir():
                raise FileNotFoundError(
                    f"data root {str(path)!r} (from {source}) does not exist; create it, or point "
                    f"--data-root / {DATA_ENV_VAR} at a folder holding the datasets"
                )
            return path
    DEFAULT_DATA_ROOT.mkdir(parents=True, exist_ok=True)
    return DEFAULT_DATA_ROOT


def _idx_problem(path: Path) -> str | None:
    """Why the idx file (MNIST's format) at ``path`` is unusable, or None when its size matches its header."""
    if not path.is_file():
        return "is missing"
    with path.open("rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_ITEM_BYTES:
            return "is not an idx file (no idx header)"
        raw = f.read(4 * head[3])
    if len(raw) < 4 * head[3]:
        return "is truncated inside its header"
    expected = 4 + len(raw) + math.prod(struct.unpack(f">{head[3]}I", raw)) * _IDX_ITEM_BYTES[head[2]]
    size = path.stat().st_size
    return None if size == expected else f"holds {size} bytes where its header announces {expected}"


_IDX_ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def _damaged(entry: _Entry, data_root: Path, err: Exception) -> DatasetUnavailableError | None:
    """The error for a dataset whose files are in ``data_root`` but failed to load (``err``), naming the damaged
    file where the format allows; None when the dataset is not there at all (so it was to be downloaded)."""
    if entry.folder is None or not (data_root / entry.folder).exists():
        return None
    name = entry.info.name
    for path in (data_root / f for f in entry.idx_files.values()):
        problem = _idx_problem(path)
        if problem is not None:
            return DatasetUnavailableError(
                f"dataset {name!r}: the file {str(path)!r} {problem}; replace it, or delete "
                f"{str(data_root / entry.folder)!r} to download the dataset again"
            )
    return DatasetUnavailableError(
        f"dataset {name!r} in {str(data_root / entry.folder)!r} cannot be read ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else 'no detail'}); delete that folder to download it again"
    )


def _check_labels(entry: _Entry, data_root: Path, split: str, labels: np.ndarray) -> None:
    """Labels must be class numbers of the dataset: a damaged label file otherwise fails much later."""
    k = entry.info.num_classes
    bad = labels[(labels < 0) | (labels >= k)]
    if len(bad):
        where = entry.idx_files.get(f"{split} labels") or entry.folder
        source = f"the file {str(data_root / where)!r}" if where else "its loader"
        raise DatasetUnavailableError(
            f"dataset {entry.info.name!r}: {source} gives {split} labels outside 0..{k - 1} "
            f"(e.g. {int(bad[0])}): the file is damaged; replace it or download the dataset again"
        )


def _to_float(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    download: bool = True,
) -> DatasetSplits:
    """Load a named dataset as normalised tensors, with a stratified validation split.

    ``val_fraction`` of every class of the official training split is held out as ``val``
    (fixed by ``split_seed``): model selection and NAS score on it, never on ``test``.
    """
    entry = _DATASETS[canonical_name(name)]
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    data_root = resolve_data_root(root) if entry.needs_root else Path(".")
    try:
        train_x, train_y, test_x, test_y = entry.loader(data_root, download)
    except (RuntimeError, OSError, ValueError, EOFError) as err:
        damaged = _damaged(entry, data_root, err)
        if damaged is not None:
            raise damaged from err
        raise DatasetUnavailableError(
            f"dataset {entry.info.name!r} is not in data root {str(data_root)!r} and could not be "
            f"downloaded ({type(err).__name__}: {err}). Put it there in torchvision's layout, or "
            f"point --data-root / {DATA_ENV_VAR} at a folder that holds it."
        ) from err
    train_y, test_y = np.asarray(train_y, dtype=np.int64), np.asarray(test_y, dtype=np.int64)
    _check_labels(entry, data_root, "train", train_y)
    _check_labels(entry, data_root, "test", test_y)
    info = entry.info
    train_images = info.normalize(_to_float(train_x))
    labels = torch.from_numpy(train_y)
    kept, held = stratified_split(labels, val_fraction, split_seed)
    full_train = ImageDataset(train_images, labels, info)
    test = ImageDataset(info.normalize(_to_float(test_x)), torch.from_numpy(test_y), info)
    return DatasetSplits(train=full_train.subset(kept), val=full_train.subset(held), test=test)
