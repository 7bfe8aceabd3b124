"""What training an architecture costs: its FLOPs, a measured epoch time, and a plan's total from them.

The ground truth orders its slots by :func:`forward_flops` (the longest first), and
:func:`estimate_seconds` turns two measured epoch times (:func:`time_epoch`, one small and one large
architecture) into the cost of every architecture by a straight line through them in FLOPs: the time
of a batch is a fixed overhead plus a part proportional to the arithmetic. :func:`estimate_cost` does
all of it for a sample of architectures and the stages of a ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from cl_nas.data import DatasetInfo, ImageDataset
from cl_nas.models import ModelSpec, build_model
from cl_nas.train import TrainConfig, train_model
from cl_nas.utils import machine_description, resolve_device


def forward_flops(spec: ModelSpec, info: DatasetInfo) -> int:
    """FLOPs of one image's forward pass through ``spec`` built for ``info``'s images (convolutions and
    matrix products, as :class:`torch.utils.flop_counter.FlopCounterMode` counts them)."""
    net = build_model(spec, info.channels, info.num_classes, info.image_size).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, *info.image_shape))
    return counter.get_total_flops()


@dataclass(frozen=True)
class EpochTime:
    """A measured training time of ``arch``: ``seconds`` per full epoch, extrapolated from ``batches`` batches."""

    arch: str
    flops: int
    batches: int
    seconds: float


def time_epoch(
    spec: ModelSpec,
    train: ImageDataset,
    *,
    budget_seconds: float = 60.0,
    config: TrainConfig = TrainConfig(epochs=1),
    device: str | torch.device = "auto",
) -> EpochTime:
    """Train ``spec`` on batches of ``train`` for about ``budget_seconds`` (at least two batches) and
    extrapolate the time of one epoch; the first batch (warm-up) is not counted."""
    info, device = train.info, resolve_device(device)
    net = build_model(spec, info.channels, info.num_classes, info.image_size)
    batch = config.batch_size
    per_epoch = -(-len(train) // batch)
    x, y = train.images[: batch * 2], train.labels[: batch * 2]
    one = TrainConfig(epochs=1, batch_size=batch, bf16=config.bf16)
    train_model(net, x[:batch], y[:batch], one, device=device)  # warm-up: allocations, kernel choice
    timed, spent = 0, 0.0
    while timed < 2 or (spent < budget_seconds and timed < per_epoch):
        start = time.perf_counter()
        train_model(net, x[:batch], y[:batch], one, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        spent += time.perf_counter() - start
        timed += 1
    arch = spec if isinstance(spec, str) else str(spec)
    return EpochTime(arch, forward_flops(spec, info), timed, spent / timed * per_epoch)


def estimate_seconds(flops: Sequence[int], small: EpochTime, large: EpochTime) -> list[float]:
    """Epoch times of architectures of these ``flops``, on the line through the two measurements
    (clamped below at the smaller measured time)."""
    if large.flops == small.flops:
        raise ValueError("the two timed architectures need different FLOPs to fit a line through them")
    slope = (large.seconds - small.seconds) / (large.flops - small.flops)
    return [max(small.seconds + slope * (f - small.flops), min(small.seconds, large.seconds)) for f in flops]


@dataclass(frozen=True)
class StageCost:
    """The estimated training seconds of one ground-truth stage: ``archs`` architectures x ``epochs`` x ``seeds``.

    The survivors of a screen are known only once it ran: ``worst`` assumes they are the most expensive
    architectures of the sample, ``typical`` that they cost the sample's mean (equal for the first stage).
    """

    archs: int
    epochs: int
    seeds: int
    worst: float
    typical: float


def plan_seconds(fidelities: Sequence[tuple[int, int, int]], epoch_seconds: Sequence[float]) -> list[StageCost]:
    """:class:`StageCost` of every stage ``(archs, epochs, seeds)`` (:meth:`GroundTruthConfig.fidelities`),
    from the epoch time of every sampled architecture."""
    ordered = sorted(epoch_seconds, reverse=True)
    mean = sum(ordered) / len(ordered)
    return [
        StageCost(n, epochs, seeds, sum(ordered[:n]) * epochs * seeds, mean * n * epochs * seeds)
        for n, epochs, seeds in fidelities
    ]


@dataclass(frozen=True)
class GroundTruthCost:
    """The estimated training time of a ground truth on this machine: the two architectures timed (the
    cheapest and the costliest of the sample by FLOPs) and every stage's :class:`StageCost`."""

    timed: tuple[EpochTime, EpochTime]
    stages: tuple[StageCost, ...]
    machine: str
    bf16: bool

    @property
    def typical(self) -> float:
        """Total seconds of one worker if every stage's survivors cost the sample's mean."""
        return sum(stage.typical for stage in self.stages)

    @property
    def worst(self) -> float:
        """Total seconds of one worker if every stage's survivors are the sample's most expensive."""
        return sum(stage.worst for stage in self.stages)


def estimate_cost(
    specs: Sequence[ModelSpec],
    train: ImageDataset,
    fidelities: Sequence[tuple[int, int, int]],
    *,
    budget_seconds: float = 60.0,
    bf16: bool = False,
    device: str | torch.device = "auto",
) -> GroundTruthCost:
    """Time one epoch on ``train`` of the cheapest and of the costliest of ``specs`` (at most about
    ``budget_seconds`` each) and estimate the stages ``(archs, epochs, seeds)`` of ``fidelities`` from every
    spec's FLOPs; trains nothing else."""
    flops = [forward_flops(spec, train.info) for spec in specs]
    cheapest, costliest = min(range(len(specs)), key=flops.__getitem__), max(range(len(specs)), key=flops.__getitem__)
    config = TrainConfig(epochs=1, bf16=bf16)
    small, large = (
        time_epoch(specs[i], train, budget_seconds=budget_seconds, config=config, device=device)
        for i in (cheapest, costliest)
    )
    stages = plan_seconds(fidelities, estimate_seconds(flops, small, large))
    return GroundTruthCost((small, large), tuple(stages), machine_description(), bf16)
