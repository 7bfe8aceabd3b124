"""Class-incremental benchmarks: a registry of named streams (:data:`BENCHMARKS`) built by Avalanche's generators.

Every benchmark names a cl_nas dataset, whose :class:`~cl_nas.data.DatasetInfo` fixes the image shape
and the normalisation. Avalanche's classic benchmarks keep Avalanche's default train and eval transforms,
with their ``Normalize`` swapped for that info's (Avalanche's values differ slightly, e.g. 0.2860 vs
0.2861 for Fashion-MNIST's mean), so a condensed buffer, which stores images already normalised and gets
no transforms, matches the real data exactly.

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

    @property
    def info(self) -> DatasetInfo:
        return dataset_info(self.dataset)

    @property
    def num_classes(self) -> int:
        return self.info.num_classes


def _normalised(default: Any, info: DatasetInfo) -> Any:
    """Avalanche's default transform ``default`` (a ``Compose``) with its ``Normalize`` swapped for ``info``'s."""
    from torchvision import transforms

    steps = [
        transforms.Normalize(info.mean, info.std) if isinstance(step, transforms.Normalize) else step
        for step in default.transforms
    ]
    return transforms.Compose(steps)


def _avalanche_classic(factory_name: str, module_name: str, defaults_prefix: str) -> Builder:
    """Avalanche's classic benchmark ``factory_name`` on the data root, with Avalanche's default train and eval
    transforms (``_default_<prefix>_{train,eval}_transform`` in ``avalanche.benchmarks.classic.<module>``:
    random crop and flip for CIFAR's training, none for MNIST's) and cl_nas's normalisation."""

    def build(spec: BenchmarkSpec, order: list[int], data_root: Any):
        import importlib

        module = importlib.import_module(f"avalanche.benchmarks.classic.{module_name}")
        train_transform = _normalised(getattr(module, f"_default_{defaults_prefix}_train_transform"), spec.info)
        eval_transform = _normalised(getattr(module, f"_default_{defaults_prefix}_eval_transform"), spec.info)
        root = resolve_data_root(data_root)
        try:
            return getattr(module, factory_name)(
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

    return build


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
_MNIST = _avalanche_classic("SplitMNIST", "cmnist", "mnist")
_FMNIST = _avalanche_classic("SplitFMNIST", "cfashion_mnist", "fmnist")
_CIFAR10 = _avalanche_classic("SplitCIFAR10", "ccifar10", "cifar10")
_CIFAR100 = _avalanche_classic("SplitCIFAR100", "ccifar100", "cifar100")
register_benchmark("split-mnist", "mnist", 5, condense=_CPU_CONDENSE)(_MNIST)
register_benchmark("split-fmnist", "fashionmnist", 5, condense=_CPU_CONDENSE)(_FMNIST)
register_benchmark("split-cifar10-5", "cifar10", 5, epochs=5)(_CIFAR10)
register_benchmark("split-cifar10-10", "cifar10", 10, epochs=5)(_CIFAR10)
register_benchmark("split-cifar100-5", "cifar100", 5, epochs=5)(_CIFAR100)
register_benchmark("split-cifar100-10", "cifar100", 10, epochs=5)(_CIFAR100)


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
