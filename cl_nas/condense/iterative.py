"""The engine shared by the learned condensers (DM, DC/DSA, APM): one loop, resume, divergence checks.

A learned condenser holds the synthetic images as one leaf tensor updated by SGD (momentum 0.5 in
all three papers) and runs ``iterations`` calls of its :meth:`IterativeCondenser.step`. Everything a
step needs (the images and their optimizer, the real data indexed by class, the DSA augmenter, the
random generator) travels in one :class:`CondenseRun`.

Resume: with ``checkpoint_dir`` set, every ``checkpoint_every`` iterations the images, optimizer
state, iteration count, loss history, RNG states (the explicit generator and torch's global one) and
the method's own state are written atomically to ``<checkpoint_dir>/<cache_key>.ckpt``. The name is
the result's content address (source-data hash, method, config, ipc, seed), so re-running the same
call after a crash or ``kill -9`` resumes from the last checkpoint, and any other data, config, ipc or
seed starts afresh. Every random draw comes from the saved RNG states, so a resumed run repeats the
uninterrupted one (bit for bit on the same machine and thread count). Ctrl-C (SIGINT) and SIGTERM are
held back until the current iteration ends, a checkpoint of it is written, then the signal acts (a second
one acts at once). The checkpoint keeps the condensation seconds so far, so a resumed result's
``wall_seconds`` covers every process. The file is deleted when the run completes: the result itself
belongs in :class:`~cl_nas.condense.cache.SyntheticCache`.

Snapshots: ``snapshot_at`` lists iterations after which a copy of the images (and the wall time so
far) is kept in ``snapshots_``: one run then yields the whole accuracy-vs-condensation-time curve.

Divergence: after every iteration the loss and the images must be finite, else
:class:`CondensationDiverged` is raised *before* any checkpoint is written, so the last good one
survives.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from cl_nas.augment import DSA, DSAParams, default_strategy, parse_strategy
from cl_nas.condense.base import REQUIRED, Condenser, Option, bf16_option, folder_option, model_option
from cl_nas.condense.model_space import draw_network, is_model_space
from cl_nas.data import DatasetInfo, ImageDataset
from cl_nas.models import build_model
from cl_nas.synthetic import SyntheticSet
from cl_nas.train import CPU_CHUNK, autocast
from cl_nas.utils import (
    UnreadableFileError,
    atomic_write,
    check_positive_int,
    deferred_signals,
    deliver,
    load_torch_file,
    resolve_bf16,
)

INITS = ("real", "noise")
CHECKPOINT_FORMAT = "cl_nas.condense.checkpoint"
CHECKPOINT_VERSION = 2
NetForward = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _check_strategy(strategy: str) -> str:
    if strategy.lower() != "none":
        parse_strategy(strategy)  # raises ValueError naming the unknown operation
    return strategy


def _iteration_list(value: str | Sequence[int]) -> tuple[int, ...]:
    """Iteration numbers (or their comma-separated text), sorted and without repeats."""
    items = [int(part) for part in value.split(",") if part.strip()] if isinstance(value, str) else list(value)
    for it in items:
        check_positive_int("every snapshot_at iteration", it)
    return tuple(sorted(set(items)))


def logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net(x)


def embedding(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net.embed(x)


@functools.cache
def _compiled(fn: NetForward) -> NetForward:
    # the network is an argument, so dynamo treats its weights as inputs: fresh networks reuse the graph
    return torch.compile(fn)


@dataclass(frozen=True)
class Snapshot:
    """The synthetic images after ``iteration`` iterations and ``seconds`` of condensation wall time
    (a resumed run adds the time recorded in its checkpoint); the labels are those of the final set."""

    iteration: int
    seconds: float
    images: torch.Tensor


class CondensationDiverged(RuntimeError):
    """The loss or the synthetic images became NaN or infinite in (1-based) ``iteration``.

    ``checkpoint`` is the last good checkpoint's path, or None when none was written.
    """

    def __init__(self, message: str, iteration: int, checkpoint: Path | None):
        super().__init__(message)
        self.iteration = iteration
        self.checkpoint = checkpoint


class RealData:
    """The real training set on the device, indexed by class, for per-class batch sampling.

    Classes are numbered by *group*: position ``g`` in ``classes`` (the sorted labels present),
    so a training set holding only some classes (one continual-learning task) works unchanged.
    """

    def __init__(self, train_set: ImageDataset, device: torch.device):
        self.images = train_set.images.to(device)
        self.labels = train_set.labels.to(device)
        self.classes = train_set.classes
        self.device = device
        self._indices = [train_set.class_indices(label) for label in self.classes]

    def sample(self, per_class: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(images, labels, groups)``: up to ``per_class`` images of every class without replacement,
        ordered by class (every group's samples are contiguous)."""
        picks = [idx[torch.randperm(len(idx), generator=generator)[:per_class]] for idx in self._indices]
        counts = torch.tensor([len(p) for p in picks], device=self.device)
        index = torch.cat(picks).to(self.device)
        groups = torch.repeat_interleave(torch.arange(len(picks), device=self.device), counts)
        return self.images[index], self.labels[index], groups


def group_mean(x: torch.Tensor, groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Mean of the rows of ``x`` per group: ``(num_groups, *x.shape[1:])``."""
    sums = x.new_zeros(num_groups, *x.shape[1:]).index_add_(0, groups, x)
    counts = torch.bincount(groups, minlength=num_groups).clamp_min(1).to(x.dtype)
    return sums / counts.view(-1, *([1] * (x.dim() - 1)))


def group_slices(groups: torch.Tensor, num_groups: int) -> list[slice]:
    """The contiguous row range of every group in a class-ordered batch."""
    counts = torch.bincount(groups, minlength=num_groups).tolist()
    starts = [sum(counts[:g]) for g in range(num_groups)]
    return [slice(s, s + c) for s, c in zip(starts, counts, strict=True)]


@dataclass
class CondenseRun:
    """What the iterations of one condensation share."""

    images: torch.Tensor  # (N, C, H, W) leaf being learned, class-ordered
    labels: torch.Tensor  # (N,) int64 class labels
    groups: torch.Tensor  # (N,) class position in ``real.classes``
    optimizer: torch.optim.Optimizer
    real: RealData
    info: DatasetInfo
    ipc: int
    dsa: DSA | None
    generator: torch.Generator
    device: torch.device

    @property
    def num_groups(self) -> int:
        return len(self.real.classes)

    @property
    def chunk(self) -> int | None:
        """Samples per forward pass over real data (see :data:`cl_nas.train.CPU_CHUNK`)."""
        return CPU_CHUNK if self.device.type == "cpu" else None

    def dsa_params(self) -> DSAParams | None:
        """One siamese DSA draw per class for this step (None without DSA)."""
        if self.dsa is None:
            return None
        return self.dsa.sample(self.num_groups, self.info.image_size, self.device, self.generator)

    def augment(self, x: torch.Tensor, groups: torch.Tensor, params: DSAParams | None) -> torch.Tensor:
        """Apply a class's shared draw to each of its samples: real and synthetic see the same one."""
        return x if params is None else self.dsa.apply(x, params.expand(groups))

    def augment_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Independent draws per image (DSA's non-siamese mode), for training networks."""
        return self.dsa(x, self.generator)

    def update(self, loss: torch.Tensor) -> None:
        """One SGD step of the images on ``loss``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class IterativeCondenser(Condenser):
    """Base of learned condensers: initialise, iterate :meth:`step`, checkpoint, check for divergence.

    ``init`` is ``"real"`` (random real images of each class, the papers' usual choice) or
    ``"noise"`` (standard normal in normalised space). ``dsa_strategy`` is None for the paper's
    default for the dataset (:func:`~cl_nas.augment.default_strategy`), ``"none"`` to disable DSA,
    or an explicit strategy such as ``"color_crop_cutout"``. ``bf16`` runs forward and backward
    passes under bf16 autocast (images, gradients and optimizer state stay float32); the default
    ``None`` turns it on where the device has native bf16 (:func:`cl_nas.utils.native_bf16`), and
    the resolved value enters the configuration, hence the cache key.

    ``compile=True`` runs the networks' passes through ``torch.compile`` where it can (not the
    double backward of DC's synthetic side): one graph serves every freshly drawn network of the
    architecture. The compilation itself costs tens of seconds, so it pays off for long runs only
    (``benchmarks/speed.py`` measures both); the tests and short runs leave it off. Like ``device``
    it changes how a result is computed, not what it is, and is not in cache keys.
    """

    options = {
        "iterations": Option(int, REQUIRED, "condensation iterations", ge=1),
        "lr_img": Option(float, REQUIRED, "SGD learning rate of the synthetic images", gt=0),
        "momentum": Option(float, 0.5, "SGD momentum of the synthetic images", ge=0, lt=1),
        "init": Option(
            str, "real", "initial images: random real ones of each class, or standard normal noise", choices=INITS
        ),
        "model": model_option("the networks condensation draws or trains (a model spec, see cl_nas.models)"),
        "dsa_strategy": Option(
            str,
            None,
            "DSA operations such as 'color_crop_cutout', or 'none'; None: the dataset's default strategy",
            optional=True,
            convert=_check_strategy,
        ),
        "bf16": bf16_option("bf16 autocast for network passes (images, gradients and optimizer state stay float32)"),
        "checkpoint_dir": folder_option("folder to checkpoint in, to resume after a crash"),
        "checkpoint_every": Option(int, 100, "iterations between checkpoints", ge=1, runtime=True),
        "compile": Option(bool, False, "run network passes through torch.compile", runtime=True),
        "snapshot_at": Option(
            (str, tuple, list, range),
            (),
            "iterations after which to keep a copy of the images (text: comma-separated)",
            runtime=True,
            convert=_iteration_list,
        ),
    }

    def __init__(self, **settings: Any):
        super().__init__(**settings)
        self.losses_: list[float] = []  # loss of every iteration of the last run (restored on resume)
        self.snapshots_: list[Snapshot] = []  # the images at the snapshot_at iterations of the last run
        self.checkpointed_ = 0  # iterations the last run's checkpoint holds (0: none written)

    def _resolve(self, settings: dict[str, Any]) -> dict[str, Any]:
        settings = super()._resolve(settings)
        beyond = [it for it in settings["snapshot_at"] if it > settings["iterations"]]
        if beyond:
            raise ValueError(f"snapshot_at {beyond[0]} is beyond the run's {settings['iterations']} iterations")
        settings["bf16"] = resolve_bf16(settings["bf16"], settings["device"])  # resolved: keys record it
        return settings

    # --- hooks for subclasses --------------------------------------------------------------------
    @abstractmethod
    def step(self, run: CondenseRun, iteration: int) -> float:
        """Run one iteration (updating ``run.images`` through ``run.optimizer``); return its loss."""

    def prepare(self, run: CondenseRun) -> None:
        """Set-up before the first iteration of a fresh (not resumed) run; APM trains its teacher here."""

    def method_state(self) -> dict[str, Any]:
        """State carried across iterations besides the images, as tensors and plain values."""
        return {}

    def load_method_state(self, state: dict[str, Any], run: CondenseRun) -> None:
        """Restore what :meth:`method_state` returned (called on resume instead of :meth:`prepare`)."""

    # --- shared helpers --------------------------------------------------------------------------
    def fresh_model(self, info: DatasetInfo) -> nn.Module:
        """A randomly initialised network of the condenser's ``model`` spec (of a ``space:`` model, an
        architecture drawn from that search space: :mod:`cl_nas.condense.model_space`), on the device, in
        train mode."""
        spec = draw_network(self.model, info.channels, info.image_size) if is_model_space(self.model) else self.model
        return build_model(spec, info.channels, info.num_classes, info.image_size).to(self.device).train()

    def forward_fn(self, embed: bool = False) -> NetForward:
        """``f(net, x)``: logits (or ``embed`` features) of ``net``, compiled when ``compile`` is on."""
        fn = embedding if embed else logits
        return _compiled(fn) if self.compile else fn

    def for_training(self, net: nn.Module) -> nn.Module:
        """``net`` to train with, through ``torch.compile`` when ``compile`` is on (same parameters)."""
        return torch.compile(net) if self.compile else net

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the device when the ``bf16`` option is on, else a no-op."""
        return autocast(self.device, self.bf16)

    def augmenter(self, info: DatasetInfo) -> DSA | None:
        """The DSA augmenter for ``info``'s dataset, or None when disabled."""
        strategy = self.dsa_strategy if self.dsa_strategy is not None else default_strategy(info.name)
        return None if strategy.lower() == "none" else DSA(strategy)

    def checkpoint_path(self, train_set: ImageDataset, ipc: int, seed: int) -> Path | None:
        """Where this exact run checkpoints (None when checkpointing is off)."""
        if self.checkpoint_dir is None:
            return None
        return self.checkpoint_dir / f"{self.cache_key(train_set, ipc, seed)}.ckpt"

    def validate(self, train_set: ImageDataset, ipc: int) -> None:
        if self.init == "real":
            super().validate(train_set, ipc)  # ipc real images of every class must exist
        else:
            check_positive_int("ipc (images per class)", ipc)
            if len(train_set) == 0:
                raise ValueError("the training set is empty: nothing to condense")

    # --- the loop --------------------------------------------------------------------------------
    def _condense(self, train_set, ipc, seed, generator):
        started = time.perf_counter()
        run = self.start_run(train_set, ipc, generator)
        path = self.checkpoint_path(train_set, ipc, seed)
        key = path.stem if path is not None else ""
        self.checkpointed_ = self._resume(path, key, run, started) if path is not None and path.exists() else 0
        if self.checkpointed_ == 0:
            self.losses_, self.snapshots_ = [], []
            self._clock = started  # condensation time starts here (a resume adds the earlier processes' time)
            self.prepare(run)
        bar = tqdm(
            range(self.checkpointed_, self.iterations),
            initial=self.checkpointed_,
            total=self.iterations,
            desc=self.name,
            disable=not self.progress,
        )
        signum = None
        with deferred_signals() as pending:  # Ctrl-C or SIGTERM: end the iteration, checkpoint, then stop
            for it in bar:
                loss = float(self.step(run, it))
                if not math.isfinite(loss) or not bool(torch.isfinite(run.images).all()):
                    raise self._diverged(it, loss, path, self.checkpointed_)
                self.losses_.append(loss)
                bar.set_postfix(loss=f"{loss:.4g}")
                if it + 1 in self.snapshot_at:
                    images = run.images.detach().float().cpu().clone()
                    self.snapshots_.append(Snapshot(it + 1, time.perf_counter() - self._clock, images))
                signum = pending()
                due = (it + 1) % self.checkpoint_every == 0 and it + 1 < self.iterations
                if path is not None and (due or signum is not None):
                    self._save_checkpoint(path, key, run, it + 1)
                    self.checkpointed_ = it + 1
                if signum is not None:
                    break
        bar.close()
        if signum is not None:
            deliver(signum)  # what the signal would have done: KeyboardInterrupt, Interrupted, or the end
        if path is not None:
            path.unlink(missing_ok=True)
        return run.images.detach(), run.labels

    def condense_seconds(self, start: float) -> float:
        """Condensation wall time including the interrupted processes this run resumed (kept in checkpoints)."""
        return time.perf_counter() - self._clock

    def snapshot_sets(self, result: SyntheticSet) -> list[SyntheticSet]:
        """The last run's snapshots as synthetic sets: ``result``'s labels and metadata, each snapshot's
        images and wall time, and its iteration recorded as ``config["iterations"]``."""
        return [
            self.finish(
                SyntheticSet(
                    s.images,
                    result.labels,
                    replace(
                        result.meta, wall_seconds=s.seconds, config={**result.meta.config, "iterations": s.iteration}
                    ),
                )
            )
            for s in self.snapshots_
        ]

    def start_run(self, train_set: ImageDataset, ipc: int, generator: torch.Generator) -> CondenseRun:
        """Initialise the synthetic images and their optimizer (also how benchmarks time single steps)."""
        real = RealData(train_set, self.device)
        info = train_set.info
        groups = torch.arange(len(real.classes), device=self.device).repeat_interleave(ipc)
        labels = torch.tensor(real.classes, device=self.device)[groups]
        if self.init == "real":
            images = real.sample(ipc, generator)[0].clone()
        else:
            images = torch.randn(len(groups), *info.image_shape, generator=generator).to(self.device)
        images.requires_grad_(True)
        optimizer = torch.optim.SGD([images], lr=self.lr_img, momentum=self.momentum)
        dsa = self.augmenter(info)
        return CondenseRun(images, labels, groups, optimizer, real, info, ipc, dsa, generator, self.device)

    def _diverged(self, iteration: int, loss: float, path: Path | None, last_good: int) -> CondensationDiverged:
        what = f"loss is {loss}" if not math.isfinite(loss) else "the synthetic images contain NaN or inf"
        if path is None:
            kept = "no checkpoint was kept (set checkpoint_dir to keep progress)"
        elif last_good == 0:
            kept = f"no checkpoint had been written yet (one every {self.checkpoint_every} iterations)"
        else:
            kept = f"the last good checkpoint, after iteration {last_good}, is kept at {str(path)!r}"
        return CondensationDiverged(
            f"{self.name} condensation diverged in iteration {iteration + 1} of {self.iterations}: {what}; {kept}. "
            f"Lower the image learning rate (lr_img={self.lr_img}) and run again.",
            iteration + 1,
            path if path is not None and last_good > 0 else None,
        )

    # --- checkpoints -----------------------------------------------------------------------------
    def _save_checkpoint(self, path: Path, key: str, run: CondenseRun, iteration: int) -> None:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "key": key,
            "iteration": iteration,
            "images": run.images.detach().cpu(),
            "optimizer": run.optimizer.state_dict(),
            "losses": torch.tensor(self.losses_, dtype=torch.float64),
            "seconds": time.perf_counter() - self._clock,
            "snapshots": [asdict(snapshot) for snapshot in self.snapshots_],
            "rng_generator": run.generator.get_state(),
            "rng_global": torch.get_rng_state(),
            "method": self.method_state(),
        }
        atomic_write(path, lambda tmp: torch.save(payload, tmp))  # a crash leaves the previous checkpoint intact

    def _resume(self, path: Path, key: str, run: CondenseRun, started: float) -> int:
        """Load ``path`` into ``run``; return the iterations it completed (0: unusable, start afresh).
        ``started`` is when this process began the run: the checkpoint's seconds are added before it."""
        try:
            payload = load_torch_file(path, "condensation checkpoint")
        except UnreadableFileError as err:
            warnings.warn(f"ignoring it and starting afresh: {err}", stacklevel=3)
            return 0
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or payload.get("key") != key:
            warnings.warn(f"ignoring {str(path)!r}: not a checkpoint of this run", stacklevel=3)
            return 0
        if payload.get("version") != CHECKPOINT_VERSION or payload["images"].shape != run.images.shape:
            warnings.warn(f"ignoring {str(path)!r}: written by another version of cl_nas", stacklevel=3)
            return 0
        with torch.no_grad():
            run.images.copy_(payload["images"])
        run.optimizer.load_state_dict(payload["optimizer"])
        self.losses_ = payload["losses"].tolist()
        self.snapshots_ = [Snapshot(**snapshot) for snapshot in payload["snapshots"]]
        self._clock = started - payload["seconds"]
        self.load_method_state(payload["method"], run)
        # RNG states last: restoring method state may build models, which draws from the global RNG
        run.generator.set_state(payload["rng_generator"])
        torch.set_rng_state(payload["rng_global"])
        return int(payload["iteration"])
