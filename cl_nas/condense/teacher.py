"""Teachers: networks trained on the real data whose logits label synthetic images.

APM condenses against a teacher, and its sets are judged by training on that teacher's logits. A fair
baseline (random real images, a DM set) must be labelled by the *same* teacher, so teachers are
content-addressed like synthetic sets: a :class:`TeacherRecipe` and the training data's hash name a
file under ``<cache root>/teachers``, and :meth:`TeacherStore.get_or_train` trains each one once
(resuming an interrupted training from its last finished epoch).
Files hold a state dict and a JSON description, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cl_nas.augment import DSA, resolve_strategy
from cl_nas.data import ImageDataset
from cl_nas.models import ClassifierNet, build_model
from cl_nas.train import EpochCheckpoint, TrainConfig, predict_logits, sgd, train_model
from cl_nas.utils import atomic_write, load_torch_file, resolve_device

TEACHER_FORMAT = "cl_nas.Teacher"


@dataclass(frozen=True)
class TeacherRecipe:
    """How a teacher is trained on the real training split: ``model`` for ``epochs`` epochs of SGD at ``lr``
    (the shared schedule of :func:`cl_nas.train.train_model`) with ``augment`` ("dsa": the dataset's DSA
    strategy, "none", or a DSA strategy string), from seed ``seed``."""

    model: str = "convnet"
    epochs: int = 100
    lr: float = 0.05
    augment: str = "dsa"
    seed: int = 0

    def key(self, train_set: ImageDataset) -> str:
        blob = json.dumps([train_set.content_hash(), asdict(self)], sort_keys=True)
        return f"teacher-{train_set.info.name}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def train_teacher(
    train_set: ImageDataset,
    recipe: TeacherRecipe,
    *,
    device: str | torch.device = "auto",
    bf16: bool = False,
    progress: bool = False,
    checkpoint: str | os.PathLike | None = None,
) -> tuple[ClassifierNet, float]:
    """``(teacher, train_seconds)``: a fresh ``recipe.model`` trained on ``train_set`` as ``recipe`` says, in
    eval mode, and its training wall time. With ``checkpoint`` (a file path) the state is saved there after
    every epoch and a run finds it there resumes, repeating the uninterrupted run; ``train_seconds`` then
    sums every run's. A teacher can take hours on a CPU (100 epochs of the real training split)."""
    info = train_set.info
    torch.manual_seed(recipe.seed)
    net = build_model(recipe.model, info.channels, info.num_classes, info.image_size)
    strategy = resolve_strategy(recipe.augment, info.name)
    config = TrainConfig(epochs=recipe.epochs, lr=recipe.lr, bf16=bf16)
    net.to(resolve_device(device))  # the optimizer's state must live where the parameters do
    optimizer, generator = sgd(net, config), torch.Generator().manual_seed(recipe.seed)
    saved = EpochCheckpoint(checkpoint, net, optimizer, generator) if checkpoint is not None else None
    done = (saved.load() if saved is not None else None) or {"epochs": 0, "train_seconds": 0.0}
    mark = time.perf_counter()

    def save(epoch: int, model: nn.Module) -> None:
        nonlocal mark
        done["epochs"], done["train_seconds"] = epoch + 1, done["train_seconds"] + time.perf_counter() - mark
        if saved is not None:
            saved.save(done)
        mark = time.perf_counter()

    train_model(
        net,
        train_set.images,
        train_set.labels,
        config,
        augment=DSA(strategy) if strategy else None,
        device=device,
        generator=generator,
        on_epoch_end=save,
        progress=progress,
        optimizer=optimizer,
        start_epoch=done["epochs"],
    )
    return net.eval(), done["train_seconds"]


def describe(net: nn.Module, recipe: TeacherRecipe, train_seconds: float) -> dict[str, Any]:
    """The metadata a set labelled by ``net`` records about its teacher."""
    from cl_nas.condense.base import module_fingerprint

    return {**asdict(recipe), "fingerprint": module_fingerprint(net), "train_seconds": round(train_seconds, 1)}


class TeacherStore:
    """Trained teachers on disk under ``root`` (one ``<key>.pt`` each), trained on first use."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    def path(self, train_set: ImageDataset, recipe: TeacherRecipe) -> Path:
        return self.root / f"{recipe.key(train_set)}.pt"

    def get_or_train(
        self,
        train_set: ImageDataset,
        recipe: TeacherRecipe,
        *,
        device: str | torch.device = "auto",
        bf16: bool = False,
        progress: bool = False,
    ) -> tuple[ClassifierNet, dict[str, Any]]:
        """``(teacher, description)``: the stored teacher of ``recipe`` on ``train_set``, trained once; an
        interrupted training resumes from its last finished epoch."""
        info = train_set.info
        path = self.path(train_set, recipe)
        if path.is_file():
            net = build_model(recipe.model, info.channels, info.num_classes, info.image_size)
            payload = load_torch_file(path, "teacher file")
            if not isinstance(payload, dict) or payload.get("format") != TEACHER_FORMAT:
                raise ValueError(f"{str(path)!r} is not a cl_nas teacher file; delete it to train the teacher again")
            net.load_state_dict(payload["state_dict"])
            return net.eval(), json.loads(payload["meta_json"])
        partial = path.with_name(path.stem + ".partial.pt")  # epochs of an unfinished training, resumed from
        net, seconds = train_teacher(train_set, recipe, device=device, bf16=bf16, progress=progress, checkpoint=partial)
        meta = describe(net, recipe, seconds)
        payload = {
            "format": TEACHER_FORMAT,
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "meta_json": json.dumps(meta),
        }
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
        partial.unlink(missing_ok=True)
        return net, meta


def teacher_logits(teachers: list[nn.Module], images: torch.Tensor) -> torch.Tensor:
    """The teachers' mean logits for ``images`` (N, num_classes), float32 on the CPU."""
    return torch.stack([predict_logits(t, images) for t in teachers]).mean(0)


__all__ = ["TeacherRecipe", "TeacherStore", "describe", "teacher_logits", "train_teacher"]
