"""Class-incremental benchmarks: a registry of named streams built by Avalanche's generators.

Every benchmark names a cl_nas dataset, whose :class:`~cl_nas.data.DatasetInfo` fixes the image shape
and the normalisation. The streams' transforms are built from that same info (Avalanche's defaults
differ slightly, e.g. 0.2860 vs 0.2861 for Fashion-MNIST's mean), so a condensed buffer, which stores
images already normalised and gets no transforms, matches the real data exactly.

* ``split-mnist``, ``split-fmnist``: Avalanche's ``SplitMNIST``/``SplitFMNIST`` on the data root,
  5 experiences of 2 classes, ``(x, y, t)`` items.
* ``split-cifar10-{5,10}``, ``split-cifar100-{5,10}``: ``SplitCIFAR10``/``SplitCIFAR100`` (configured
  for GPU users; torchvision downloads them into the data root).
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

from cl_nas.cl.items import buffer_dataset
from cl_nas.data import (
    DATA_ENV_VAR,
    DatasetInfo,
    DatasetUnavailableError,
    dataset_info,
    load_dataset,
    resolve_data_root,
)

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


def _transform(info: DatasetInfo, from_pil: bool):
    from torchvision import transforms

    normalize = transforms.Normalize(info.mean, info.std)
    return transforms.Compose([transforms.ToTensor(), normalize]) if from_pil else normalize


def _avalanche_classic(factory_name: str, from_pil: bool) -> Builder:
    """Avalanche's classic benchmark ``factory_name`` with our normalisation, on the data root."""

    def build(spec: BenchmarkSpec, order: list[int], data_root: Any):
        from avalanche.benchmarks import classic

        transform = _transform(spec.info, from_pil)
        root = resolve_data_root(data_root)
        try:
            return getattr(classic, factory_name)(
                spec.n_experiences,
                return_task_id=False,
                fixed_class_order=order,
                train_transform=transform,
                eval_transform=transform,
                dataset_root=str(root),
            )
        except (RuntimeError, OSError) as err:  # torchvision's failed download, a truncated file
            raise DatasetUnavailableError(
                f"{spec.name} needs {spec.dataset} in data root {str(root)!r} (torchvision layout) and could not "
                f"download it ({type(err).__name__}: {str(err).splitlines()[0]}). Point --data-root / {DATA_ENV_VAR} "
                "at a folder that holds it."
            ) from err

    return build


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


def _digits_class_incremental(spec: BenchmarkSpec, order: list[int], data_root: Any):
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark

    splits = load_dataset("digits")
    streams = {
        "train": buffer_dataset(splits.train.images, splits.train.labels, None),
        "test": buffer_dataset(splits.test.images, splits.test.labels, None),
    }
    return class_incremental_benchmark(streams, class_order=order, num_experiences=spec.n_experiences)


# Condenser budgets for a 2-core CPU, far below the papers' (DM 20000 iterations, DC/DSA 1000, APM 2500).
# One 2-class experience of 12,000 images then condenses in about 2.5 min (DM, on an AVX-512-BF16 core) and
# 2 min (DSA, float32 on an AVX2 core; 50 DSA iterations took about 17 min there, too long for 15 experiences).
# GPU users pass the papers' settings with --param (e.g. dm.iterations=20000).
_CPU_CONDENSE = {
    "dm": {"iterations": 1000, "batch_real": 64},
    "dc": {"iterations": 10, "outer_loop": 5, "inner_loop": 10, "batch_real": 64},
    "dsa": {"iterations": 10, "outer_loop": 5, "inner_loop": 10, "batch_real": 64},
    "apm": {"iterations": 100, "teacher_epochs": 3, "student_epochs": 50, "refresh_every": 10},
}
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
BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("split-digits", "digits", 5, _digits_nc, **_DIGITS),
        BenchmarkSpec("split-digits-xy", "digits", 5, _digits_class_incremental, task_labels=False, **_DIGITS),
        BenchmarkSpec("split-mnist", "mnist", 5, _avalanche_classic("SplitMNIST", False), condense=_CPU_CONDENSE),
        BenchmarkSpec(
            "split-fmnist", "fashionmnist", 5, _avalanche_classic("SplitFMNIST", True), condense=_CPU_CONDENSE
        ),
        BenchmarkSpec("split-cifar10-5", "cifar10", 5, _avalanche_classic("SplitCIFAR10", True), epochs=5),
        BenchmarkSpec("split-cifar10-10", "cifar10", 10, _avalanche_classic("SplitCIFAR10", True), epochs=5),
        BenchmarkSpec("split-cifar100-5", "cifar100", 5, _avalanche_classic("SplitCIFAR100", True), epochs=5),
        BenchmarkSpec("split-cifar100-10", "cifar100", 10, _avalanche_classic("SplitCIFAR100", True), epochs=5),
    )
}


def available_benchmarks() -> list[str]:
    return sorted(BENCHMARKS)


def benchmark_spec(name: str) -> BenchmarkSpec:
    key = name.lower()
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(available_benchmarks())}")
    return BENCHMARKS[key]


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


def check_class_incremental(scenario: Any) -> None:
    """Raise ``ValueError`` if two training experiences share a class (not a class-incremental stream)."""
    classes = experience_classes(scenario)
    for (i, a), (j, b) in combinations(enumerate(classes), 2):
        if a & b:
            raise ValueError(
                f"experiences {i} and {j} share classes {sorted(a & b)}: class-incremental learning was "
                "requested, which needs every class in exactly one experience"
            )
