"""The one training loop and the evaluation protocol of the condensation papers.

Every model cl_nas trains outside Avalanche (evaluation of synthetic sets, herding's feature
extractor, APM's teacher, NAS candidates) goes through :func:`train_model`; CL's learners train in
Avalanche's loop with the same recipe (:mod:`cl_nas.cl.plugins`). The protocol:
SGD (lr 0.01, momentum 0.9, weight decay 5e-4), batch 256, lr x 0.1 at half the epochs, then
test once at the end, repeated over seeds. No epoch or model is ever picked by test accuracy.
The named evaluation protocols of the papers (epochs, augmentation, labels) are in
:mod:`cl_nas.protocols`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from cl_nas.data import ImageDataset
from cl_nas.models import ModelSpec, build_model
from cl_nas.utils import atomic_write, load_torch_file, mean_std, resolve_device

Augment = Callable[[torch.Tensor], torch.Tensor]
EpochCallback = Callable[[int, nn.Module], None]
# On a CPU, forward/backward passes run in chunks of this many samples whose gradients accumulate: the
# activations of a chunk stay in cache (ConvNet-3's pooling and normalisation are memory-bound), which
# measured 1.3-1.8x faster than whole 256-sample batches. GPUs take the whole batch at once.
CPU_CHUNK = 32
# the reference evaluation code's two criteria: cross-entropy on labels, and L1 between the student's and a
# teacher's logits (APM trains its evaluation networks on teacher logits)
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "l1": F.l1_loss,
}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_model`. Defaults are the papers' evaluation protocol."""

    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    decay_at: float = 0.5  # fraction of the epochs after which lr is multiplied by 0.1
    bf16: bool = False  # bf16 autocast: fast where the device multiplies bf16 natively, slow where emulated
    # "cross_entropy": labels are class indices or probabilities; "l1": labels are a teacher's logits (N, K)
    loss: str = "cross_entropy"

    def __post_init__(self) -> None:
        if not (self.epochs >= 0 and self.batch_size >= 1 and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(
                f"invalid training config {self}: epochs >= 0, batch_size >= 1 and a finite lr > 0 required"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"unknown training loss {self.loss!r}; choose one of {sorted(LOSSES)}")

    def as_dict(self) -> dict:
        return asdict(self)


def chunks(n: int, size: int | None) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, ``size`` at a time (all at once when None)."""
    size = size or max(n, 1)
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` normalises with batch statistics (then a batch cannot be split into chunks)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def gradient_chunk(model: nn.Module, device: torch.device) -> int | None:
    """Samples per forward/backward pass when training ``model`` on ``device``: :data:`CPU_CHUNK` on a CPU,
    None (the whole batch) on a GPU or when a batch-norm layer makes the batch's statistics part of the loss."""
    return None if device.type != "cpu" or has_batch_norm(model) else CPU_CHUNK


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``, else a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def sgd(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """The protocol's optimizer for ``model`` (SGD with ``config``'s lr, momentum and weight decay)."""
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


class EpochCheckpoint:
    """The state of one :func:`train_model` run after an epoch, in one file, so a killed run resumes and
    repeats the uninterrupted one exactly: the model, its optimizer, the data-order ``generator`` and torch's
    global random state (which draws the augmentations), plus ``progress``, a dict of the caller's own (epochs
    done, scores, seconds). Read with ``weights_only``; written atomically, so a kill never leaves half a file.
    """

    def __init__(
        self, path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
    ):
        self.path, self.model, self.optimizer, self.generator = Path(path), model, optimizer, generator

    def load(self) -> dict[str, Any] | None:
        """Restore the saved state into the model, optimizer and generators and return its ``progress``;
        None (and nothing restored) when there is no file."""
        if not self.path.is_file():
            return None
        state = load_torch_file(self.path, "training checkpoint")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if "rng" in state:  # files written before the global state was kept restore all but the augmentations
            torch.set_rng_state(state["rng"])
        return state["done"]

    def save(self, progress: dict[str, Any]) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "generator": self.generator.get_state(), "rng": torch.get_rng_state(), "done": progress}  # fmt: skip
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))


def train_model(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig = TrainConfig(),
    *,
    augment: Augment | None = None,
    device: str | torch.device | None = "auto",
    generator: torch.Generator | None = None,
    on_epoch_end: EpochCallback | None = None,
    progress: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
    start_epoch: int = 0,
) -> nn.Module:
    """Train ``model`` in place on ``(images, labels)`` and return it.

    ``labels`` are class indices ``(N,)`` or soft targets ``(N, K)``: probabilities under the
    cross-entropy loss, a teacher's logits under ``config.loss == "l1"``.
    ``augment`` maps a batch of images to an augmented batch (e.g. DSA). ``on_epoch_end`` is
    called as ``on_epoch_end(epoch, model)`` after every epoch: the hook for NAS pruning
    reports and checkpoint collection, so the loop itself never needs editing.

    Resuming a run: pass the :func:`sgd` optimizer of ``model`` restored from a checkpoint (its learning
    rate already decayed when the run was past the decay) and ``start_epoch``, the number of finished
    epochs (``generator`` restored to its state then): the remaining epochs repeat the uninterrupted run.
    """
    device = resolve_device(device)
    model.to(device).train()
    images, labels = images.to(device), labels.to(device)
    optimizer = optimizer if optimizer is not None else sgd(model, config)
    decay_epoch = int(config.epochs * config.decay_at)
    criterion = LOSSES[config.loss]
    if config.loss == "l1" and labels.ndim != 2:
        raise ValueError("the l1 loss trains on a teacher's logits (N, num_classes), not on class indices")
    n = images.shape[0]
    chunk = gradient_chunk(model, device)
    for epoch in tqdm(range(start_epoch, config.epochs), desc="train", disable=not progress, leave=False):
        if epoch == decay_epoch and epoch > 0:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            x, y = images[idx], labels[idx]
            if augment is not None:
                x = augment(x)
            optimizer.zero_grad(set_to_none=True)
            for part in chunks(len(idx), chunk):  # the batch-mean loss, accumulated chunk by chunk
                with autocast(device, config.bf16):
                    loss = criterion(model(x[part]).float(), y[part])
                (loss * ((part.stop - part.start) / len(idx))).backward()
            optimizer.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return model


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    *,
    features: bool = False,
    batch_size: int = 1024,
    device=None,
    bf16: bool = False,
) -> torch.Tensor:
    """Logits of ``model`` (in eval mode) for ``images``, batched, on the CPU as float32; with ``features``,
    its embeddings instead (``model.embed``: what the classifier reads)."""
    device = resolve_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(device).eval()
    forward = model.embed if features else model
    outs = []
    for start in range(0, images.shape[0], batch_size):
        with autocast(device, bf16):
            outs.append(forward(images[start : start + batch_size].to(device)).float().cpu())
    model.train(was_training)
    return torch.cat(outs)


def accuracy(model: nn.Module, data: ImageDataset, *, device=None, bf16: bool = False) -> float:
    """Top-1 accuracy of ``model`` on ``data``, in percent."""
    preds = predict_logits(model, data.images, device=device, bf16=bf16).argmax(1)
    return 100.0 * (preds == data.labels).float().mean().item()


@dataclass
class EvalResult:
    """Test accuracies (percent) of one model spec trained from scratch over several seeds, and the same
    models' validation accuracies when a validation split was given (what any selection may use)."""

    accuracies: list[float] = field(default_factory=list)
    val_accuracies: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return mean_std(self.accuracies)[0]

    @property
    def std(self) -> float:
        """The sample standard deviation over seeds (0.0 for one seed)."""
        return mean_std(self.accuracies)[1]

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f} (n={len(self.accuracies)})"


def evaluate_protocol(
    images: torch.Tensor,
    labels: torch.Tensor,
    test: ImageDataset,
    *,
    model: ModelSpec = "convnet",
    n_seeds: int = 3,
    config: TrainConfig = TrainConfig(),
    augment: Augment | None = None,
    device: str | torch.device | None = "auto",
    first_seed: int = 0,
    progress: bool = False,
    validation: ImageDataset | None = None,
) -> EvalResult:
    """Train a fresh ``model`` on ``(images, labels)`` once per seed; test each at the end (and measure it on
    ``validation`` too when given: settings are chosen on that, never on the test accuracy)."""
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    info = test.info
    if tuple(images.shape[1:]) != info.image_shape:
        raise ValueError(
            f"training images have shape {tuple(images.shape[1:])} but {info.name} models expect "
            f"{info.image_shape}; evaluate the set on the dataset it was condensed from"
        )
    result = EvalResult()
    for seed in tqdm(range(first_seed, first_seed + n_seeds), desc="eval seeds", disable=not progress, leave=False):
        torch.manual_seed(seed)
        net = build_model(model, info.channels, info.num_classes, info.image_size)
        train_model(
            net,
            images,
            labels,
            config,
            augment=augment,
            device=device,
            generator=torch.Generator().manual_seed(seed),
            progress=progress,
        )
        result.accuracies.append(accuracy(net, test, bf16=config.bf16))
        if validation is not None:
            result.val_accuracies.append(accuracy(net, validation, bf16=config.bf16))
    return result
