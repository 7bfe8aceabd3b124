"""Class-incremental benchmarks: a registry of named streams (:data:`BENCHMARKS`) built by Avalanche's generators.

Every benchmark names a cl_nas dataset, whose :class:`~cl_nas.data.DatasetInfo` fixes the image shape
and the normalisation. Avalanche's classic benchmarks keep Avalanche's default train and eval transforms,
with their ``Normalize`` swapped for that info's (Avalanche's values differ slightly, e.g. 0.2860 vs
0.2861 for Fashion-MNIST's mean), so a condensed buffer, which stores images already normalised, matches
the real data exactly; a spec's ``replay_transform`` is the stream's training augmentation rebuilt for such
tensors, so buffers that store them replay augmented as the stream's real images train.

* ``split-mnist``, ``split-fmnist``: Avalanche's ``SplitMNIST``/``SplitFMNIST`` on the data root,
  5 experiences of 2 classes, ``(x, y, t)`` items.
* ``split-cifar10-{5,10}``, ``split-cifar100-{5,10}``: ``SplitCIFAR10``/``SplitCIFAR100`` (configured
  for GPU users; torchvision downloads them into the data root), training through Avalanche's default
  augmentation (random crop with 4-pixel padding, horizontal flip).
* ``split-digits``: the embedded 8x8 digits through ``nc_benchmark`` (``(x, y, t)`` items), and
  ``split-digits-xy``: the same through the newer ``class_incremental_benchmark`` (``(x, y)`` items).

A class order is a permutation of the dataset's classes; order ``seed`` is :func:`class_order`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import torch
from torch.utils.data import TensorDataset

from cl_nas.cl.adapters import buffer_dataset
from cl_nas.data import (
    DATA_ENV_VAR,
    DatasetInfo,
    DatasetUnavailableError,
    dataset_info,
    load_dataset,
    resolve_data_root,
)
from cl_nas.registry import Registry

Builder = Callable[["BenchmarkSpec", list[int], Any], Any]


@dataclass(frozen=True)
class BenchmarkSpec:
    """A named class-incremental stream and the defaults that suit it on a CPU (``epochs`` per experience)."""

    name: str
    dataset: str
    n_experiences: int
    builder: Builder
    task_labels: bool = True  # items are (x, y, t); False: (x, y)
    model: str = "convnet"
    epochs: int = 1  # per experience, for naive, replay and joint training
    memory_epochs: int = 100  # GDumb-style training on the memory, per experience
    condense: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # condenser options per method
    # the stream's training augmentation for normalised image tensors, from the dataset info (None: unaugmented)
    augmentation: Callable[[DatasetInfo], Callable[[torch.Tensor], torch.Tensor] | None] | None = None

    @property
    def info(self) -> DatasetInfo:
        return dataset_info(self.dataset)

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def replay_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The augmentation the stream trains its real images with, for memories that store normalised tensors
        (condensed and reduced-precision buffers), so that every buffer replays as the stream's own data trains;
        None where the stream trains unaugmented."""
        return self.augmentation(self.info) if self.augmentation is not None else None


def _normalised(default: Any, info: DatasetInfo) -> Any:
    """Avalanche's default transform ``default`` (a ``Compose``) with its ``Normalize`` swapped for ``info``'s."""
    from torchvision import transforms

    steps = [
        transforms.Normalize(info.mean, info.std) if isinstance(step, transforms.Normalize) else step
        for step in default.transforms
    ]
    return transforms.Compose(steps)


def tensor_augmentation(transform: Any, info: DatasetInfo) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The augmentation steps of a torchvision ``Compose`` for images, rebuilt for ``info``'s normalised
    tensors; None when it has none. ``ToTensor`` and ``Normalize`` are dropped (the tensors are normalised
    already); a random crop pads with the normalised value of black, as the crop of a PIL image pads black
    before it is normalised. A step without a tensor version here raises ``NotImplementedError``."""
    from torchvision import transforms
    from torchvision.transforms import v2

    black = [-m / s for m, s in zip(info.mean, info.std, strict=True)]
    steps: list[Any] = []
    for step in getattr(transform, "transforms", [transform]):
        if isinstance(step, transforms.ToTensor | transforms.Normalize):
            continue
        if isinstance(step, transforms.RandomCrop):
            steps.append(
                v2.RandomCrop(
                    step.size, padding=step.padding, pad_if_needed=step.pad_if_needed, fill=black,
                    padding_mode=step.padding_mode,
                )
            )  # fmt: skip
        elif isinstance(step, transforms.RandomHorizontalFlip):
            steps.append(v2.RandomHorizontalFlip(step.p))
        else:
            raise NotImplementedError(f"no tensor version of the training transform {step!r} for replayed memories")
    return v2.Compose(steps) if steps else None


@dataclass(frozen=True)
class _AvalancheClassic:
    """Avalanche's classic benchmark ``factory`` on the data root, with Avalanche's default train and eval
    transforms (``_default_<prefix>_{train,eval}_transform`` in ``avalanche.benchmarks.classic.<module>``:
    random crop and flip for CIFAR's training, none for MNIST's) and cl_nas's normalisation."""

    factory: str
    module: str
    prefix: str

    def _module(self) -> Any:
        import importlib

        return importlib.import_module(f"avalanche.benchmarks.classic.{self.module}")

    def transforms(self, info: DatasetInfo) -> tuple[Any, Any]:
        """Avalanche's default ``(train, eval)`` transforms, normalised with ``info``'s values."""
        module = self._module()
        train, test = (getattr(module, f"_default_{self.prefix}_{group}_transform") for group in ("train", "eval"))
        return _normalised(train, info), _normalised(test, info)

    def augmentation(self, info: DatasetInfo) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return tensor_augmentation(self.transforms(info)[0], info)

    def __call__(self, spec: BenchmarkSpec, order: list[int], data_root: Any):
        train_transform, eval_transform = self.transforms(spec.info)
        root = resolve_data_root(data_root)
        try:
            return getattr(self._module(), self.factory)(
                spec.n_experiences,
                return_task_id=False,
                fixed_class_order=order,
                train_transform=train_transform,
                eval_transform=eval_transform,
                dataset_root=str(root),
            )
        except (RuntimeError, OSError) as err:  # torchvision's failed download, a truncated file
            raise DatasetUnavailableError(
                f"{spec.name} needs {spec.dataset} in data root {str(root)!r} (torchvision layout) and could not "
                f"download it ({type(err).__name__}: {str(err).splitlines()[0]}). Point --data-root / {DATA_ENV_VAR} "
                "at a folder that holds it."
            ) from err


BENCHMARKS: Registry[BenchmarkSpec] = Registry("benchmark")


def register_benchmark(name: str, dataset: str, n_experiences: int, **defaults: Any) -> Callable[[Builder], Builder]:
    """Decorator: register the stream its builder makes as benchmark ``name`` (a :class:`BenchmarkSpec` with
    ``defaults``); a name already taken raises ``ValueError``."""

    def add(builder: Builder) -> Builder:
        BENCHMARKS.register(name)(BenchmarkSpec(name, dataset, n_experiences, builder, **defaults))
        return builder

    return add


# ConvNet-3 pools 8x8 digits down to 1x1 after instance-normalising 2x2 maps, and collapsed under replay in our
# runs (old classes at 0 % although replayed every step); two blocks keep 2x2 features and learn well.
_DIGITS = {
    "model": "convnet:depth=2,width=64", "epochs": 30, "memory_epochs": 100,
    "condense": {
        "dm": {"iterations": 200}, "dc": {"iterations": 10, "outer_loop": 5, "inner_loop": 10},
        "dsa": {"iterations": 10, "outer_loop": 5, "inner_loop": 10},
        "apm": {"iterations": 50, "teacher_epochs": 20, "student_epochs": 30, "refresh_every": 10},
    },
}  # fmt: skip


@register_benchmark("split-digits", "digits", 5, **_DIGITS)
def _digits_nc(spec: BenchmarkSpec, order: list[int], data_root: Any):
    from avalanche.benchmarks import nc_benchmark

    splits = load_dataset("digits")
    return nc_benchmark(
        TensorDataset(splits.train.images, splits.train.labels),
        TensorDataset(splits.test.images, splits.test.labels),
        n_experiences=spec.n_experiences,
        task_labels=False,
        fixed_class_order=order,
    )


@register_benchmark("split-digits-xy", "digits", 5, task_labels=False, **_DIGITS)
def _digits_class_incremental(spec: BenchmarkSpec, order: list[int], data_root: Any):
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark

    splits = load_dataset("digits")
    streams = {
        "train": buffer_dataset(splits.train.images, splits.train.labels, None),
        "test": buffer_dataset(splits.test.images, splits.test.labels, None),
    }
    return class_incremental_benchmark(streams, class_order=order, num_experiences=spec.n_experiences)


# Condenser budgets for CPUs, far below the papers' (DM 20000 iterations, DC/DSA 1000, APM 2500): one 2-class
# experience of 12,000 images then condenses in minutes (benchmarks/results/cl.csv records the times).
# GPU users pass the papers' settings with --param (e.g. dm.iterations=20000).
_CPU_CONDENSE = {
    "dm": {"iterations": 1000, "batch_real": 64},
    "dc": {"iterations": 10, "outer_loop": 5, "inner_loop": 10, "batch_real": 64},
    "dsa": {"iterations": 10, "outer_loop": 5, "inner_loop": 10, "batch_real": 64},
    "apm": {"iterations": 100, "teacher_epochs": 3, "student_epochs": 50, "refresh_every": 10},
}
_MNIST = _AvalancheClassic("SplitMNIST", "cmnist", "mnist")
_FMNIST = _AvalancheClassic("SplitFMNIST", "cfashion_mnist", "fmnist")
_CIFAR10 = _AvalancheClassic("SplitCIFAR10", "ccifar10", "cifar10")
_CIFAR100 = _AvalancheClassic("SplitCIFAR100", "ccifar100", "cifar100")


def _register_classic(name: str, dataset: str, n_experiences: int, classic: _AvalancheClassic, **defaults: Any):
    register_benchmark(name, dataset, n_experiences, augmentation=classic.augmentation, **defaults)(classic)


_register_classic("split-mnist", "mnist", 5, _MNIST, condense=_CPU_CONDENSE)
_register_classic("split-fmnist", "fashionmnist", 5, _FMNIST, condense=_CPU_CONDENSE)
_register_classic("split-cifar10-5", "cifar10", 5, _CIFAR10, epochs=5)
_register_classic("split-cifar10-10", "cifar10", 10, _CIFAR10, epochs=5)
_register_classic("split-cifar100-5", "cifar100", 5, _CIFAR100, epochs=5)
_register_classic("split-cifar100-10", "cifar100", 10, _CIFAR100, epochs=5)


def available_benchmarks() -> list[str]:
    return BENCHMARKS.names()


def benchmark_spec(name: str) -> BenchmarkSpec:
    """The benchmark registered as ``name`` (any case); an unknown name raises ``ValueError``."""
    return BENCHMARKS.get(name)


def class_order(seed: int, num_classes: int) -> list[int]:
    """The class order of repeat ``seed``: a permutation drawn from its own generator."""
    return torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()


def check_class_order(order: Sequence[int], spec: BenchmarkSpec) -> list[int]:
    """``order`` as a list; raises ``ValueError`` unless it is a permutation of the benchmark's classes."""
    order = [int(c) for c in order]
    if len(order) != spec.num_classes:
        raise ValueError(
            f"class order has {len(order)} entries but {spec.name} has {spec.num_classes} classes; "
            f"give a permutation of 0..{spec.num_classes - 1}"
        )
    if sorted(order) != list(range(spec.num_classes)):
        raise ValueError(f"class order {order} is not a permutation of 0..{spec.num_classes - 1}")
    if spec.num_classes % spec.n_experiences:
        raise ValueError(f"{spec.num_classes} classes do not split into {spec.n_experiences} equal experiences")
    return order


def make_scenario(spec: BenchmarkSpec, order: Sequence[int], data_root: str | os.PathLike | None = None):
    """The Avalanche scenario of ``spec`` with classes arriving in ``order`` (validated first)."""
    return spec.builder(spec, check_class_order(order, spec), data_root)


def experience_classes(scenario: Any) -> list[set[int]]:
    """The classes of every training experience, read from its data (not every generator annotates them)."""
    return [{int(c) for c in exp.dataset.targets.uniques} for exp in scenario.train_stream]


def smallest_class(scenario: Any) -> int:
    """The number of training images of the stream's smallest class."""
    targets = torch.cat([torch.as_tensor(list(exp.dataset.targets)) for exp in scenario.train_stream])
    return int(torch.bincount(targets)[targets.unique()].min())


def check_class_incremental(scenario: Any) -> None:
    """Raise ``ValueError`` if two training experiences share a class (not a class-incremental stream)."""
    classes = experience_classes(scenario)
    for (i, a), (j, b) in combinations(enumerate(classes), 2):
        if a & b:
            raise ValueError(
                f"experiences {i} and {j} share classes {sorted(a & b)}: class-incremental learning was "
                "requested, which needs every class in exactly one experience"
            )
