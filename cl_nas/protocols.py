"""Named evaluation protocols: how each paper judges a synthetic set.

A protocol fixes what a synthetic set is trained with before the test: the epochs (with the shared
schedule of :mod:`cl_nas.train`: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, lr x 0.1 at
half), the augmentation, and the labels. Every results row records the protocol it used.

========  =========================================  ============================  =========================
name      epochs                                     augmentation                  labels
========  =========================================  ============================  =========================
``dc``    1000 with augmentation, else 300           DC's: crop/scale/rotate on    hard, cross-entropy
                                                     MNIST, crop/noise for
                                                     batch-norm ConvNets, else none
``dsa``   1000                                       DSA, no flip on digit data    hard, cross-entropy
``dm``    1000                                       DSA with flip on every        hard, cross-entropy
                                                     dataset (DM's reference code)
``apm``   1000                                       DSA, no flip on digit data    a teacher's logits, L1
``fast``  300                                        DSA, no flip on digit data    hard, cross-entropy
========  =========================================  ============================  =========================

Sources: ``dc`` is ``get_daparam`` and the epoch rule of the DC/DSA reference ``main.py`` (augmented
training 1000 epochs, plain 300); ``dsa`` the DSA paper, which drops flip for digits; ``dm`` DM's
``main_DM.py``, whose strategy keeps flip for every dataset (the DM paper's figures came from that
code); ``apm`` the APM paper, whose evaluation networks fit the teacher's logits under an L1 loss;
``fast`` is a shorter budget for continual-learning and NAS studies, no paper's. Model selection
never uses the test set: there is none to make, every model is tested once, after its last epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from cl_nas.augment import DEFAULT_STRATEGY, DSA, DCAugment, default_strategy
from cl_nas.data import ImageDataset
from cl_nas.models import ModelSpec, model_spec_string, parse_model_spec
from cl_nas.registry import Registry
from cl_nas.synthetic import SyntheticSet
from cl_nas.train import Augment, EvalResult, TrainConfig, evaluate_protocol
from cl_nas.utils import Interrupted, atomic_write, check_positive_int

HARD = "hard"
TEACHER_LOGITS = "teacher-logits"


@dataclass(frozen=True)
class EvalSettings:
    """What a protocol prescribes for one dataset and evaluation model."""

    protocol: str
    epochs: int
    augment: str  # "none", "dsa:<strategy>" or "dc:<strategy>": recorded in results rows
    labels: str = HARD  # HARD (cross-entropy on class labels) or TEACHER_LOGITS (L1 on a teacher's logits)

    def augmenter(self) -> Augment | None:
        """The augmentation callable for :func:`cl_nas.train.train_model`, or None."""
        kind, _, strategy = self.augment.partition(":")
        if kind == "dsa":
            return DSA(strategy)
        if kind == "dc":
            return DCAugment(strategy)
        return None

    def train_config(self, *, bf16: bool = False) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs, bf16=bf16, loss="l1" if self.labels == TEACHER_LOGITS else "cross_entropy"
        )


ProtocolBuilder = Callable[[str, ModelSpec], EvalSettings]
PROTOCOLS: Registry[ProtocolBuilder] = Registry("evaluation protocol")


def _dsa(dataset: str) -> str:
    return f"dsa:{default_strategy(dataset)}"


@PROTOCOLS.register("dc")
def dc_protocol(dataset: str, model: ModelSpec) -> EvalSettings:
    name, params = parse_model_spec(model)
    if name == "convnet" and params.get("norm") == "batch":
        augment = "dc:crop_noise"  # the reference: augmentation makes batch-norm training easier
    elif dataset == "mnist":
        augment = "dc:crop_scale_rotate"
    else:
        augment = "none"
    return EvalSettings("dc", 300 if augment == "none" else 1000, augment)


@PROTOCOLS.register("dsa")
def dsa_protocol(dataset: str, model: ModelSpec) -> EvalSettings:
    return EvalSettings("dsa", 1000, _dsa(dataset))


@PROTOCOLS.register("dm")
def dm_protocol(dataset: str, model: ModelSpec) -> EvalSettings:
    return EvalSettings("dm", 1000, f"dsa:{DEFAULT_STRATEGY}")


@PROTOCOLS.register("apm")
def apm_protocol(dataset: str, model: ModelSpec) -> EvalSettings:
    return EvalSettings("apm", 1000, _dsa(dataset), TEACHER_LOGITS)


@PROTOCOLS.register("fast")
def fast_protocol(dataset: str, model: ModelSpec) -> EvalSettings:
    return EvalSettings("fast", 300, _dsa(dataset))


def protocol_names() -> list[str]:
    return PROTOCOLS.names()


def resolve_protocol(
    name: str, dataset: str, model: ModelSpec = "convnet", *, epochs: int | None = None
) -> EvalSettings:
    """The settings of protocol ``name`` for ``dataset`` and ``model``; ``epochs`` overrides its epochs
    (the row then records the protocol as ``<name>@<epochs>ep``, a different protocol)."""
    settings = PROTOCOLS.get(name)(dataset, model)
    if epochs is None or epochs == settings.epochs:
        return settings
    check_positive_int("epochs", epochs)
    return EvalSettings(f"{settings.protocol}@{epochs}ep", epochs, settings.augment, settings.labels)


def training_targets(syn: SyntheticSet, settings: EvalSettings) -> torch.Tensor:
    """The labels a protocol trains ``syn`` on: its class labels, or its teacher's logits."""
    if settings.labels == HARD:
        return syn.labels
    if syn.teacher_logits is None:
        raise ValueError(
            f"the {settings.protocol!r} protocol trains on a teacher's logits and this {syn.meta.method} set has "
            "none; label it with a teacher (SyntheticSet.with_teacher_logits) or pick a protocol with hard labels"
        )
    return syn.teacher_logits


def evaluate_synthetic(
    syn: SyntheticSet,
    test: ImageDataset,
    settings: EvalSettings,
    *,
    model: ModelSpec = "convnet",
    n_seeds: int = 3,
    bf16: bool = False,
    device: str | torch.device | None = "auto",
    first_seed: int = 0,
    progress: bool = False,
    validation: ImageDataset | None = None,
) -> EvalResult:
    """Train ``n_seeds`` fresh ``model`` on ``syn`` as ``settings`` prescribe; test each once at the end
    (and measure each on ``validation`` when given, for selections)."""
    if len(syn) == 0:
        raise ValueError("the synthetic set holds no images: there is nothing to train on")
    return evaluate_protocol(
        syn.images,
        training_targets(syn, settings),
        test,
        model=model,
        n_seeds=n_seeds,
        config=settings.train_config(bf16=bf16),
        augment=settings.augmenter(),
        device=device,
        first_seed=first_seed,
        progress=progress,
        validation=validation,
    )


def evaluation_checkpoint(
    syn: SyntheticSet, settings: EvalSettings, model: ModelSpec, bf16: bool, device: str, folder: str | os.PathLike
) -> Path:
    """The file under ``folder`` where :func:`evaluate_resumably` keeps the finished seeds of this evaluation:
    named by everything that determines their accuracies (images, labels, teacher logits, model, protocol,
    precision, device type)."""
    digest = hashlib.sha256()
    for tensor in (syn.images, syn.labels, syn.teacher_logits):
        if tensor is not None:
            digest.update(tensor.contiguous().numpy().tobytes())
    digest.update(json.dumps([model_spec_string(model), asdict(settings), bf16, device], sort_keys=True).encode())
    return Path(folder) / f"{syn.meta.method}-{syn.meta.dataset}-ipc{syn.meta.ipc}-{digest.hexdigest()[:16]}.json"


def evaluate_resumably(
    syn: SyntheticSet,
    test: ImageDataset,
    settings: EvalSettings,
    *,
    checkpoint: str | os.PathLike | None,
    model: ModelSpec = "convnet",
    n_seeds: int = 3,
    bf16: bool = False,
    device: str | torch.device | None = "auto",
    progress: bool = False,
) -> EvalResult:
    """:func:`evaluate_synthetic` one seed at a time, each finished seed's accuracy kept in ``checkpoint`` (a
    JSON file; None keeps nothing), so a rerun after a kill starts at the first unfinished seed; the file is
    deleted once all ``n_seeds`` have run. Ctrl-C or SIGTERM raises :class:`~cl_nas.utils.Interrupted` saying
    how many seeds finished and where they are kept."""
    path = Path(checkpoint) if checkpoint is not None else None
    accuracies = _finished_seeds(path)[:n_seeds]
    try:
        for seed in range(len(accuracies), n_seeds):
            one = evaluate_synthetic(
                syn, test, settings, model=model, n_seeds=1, first_seed=seed, bf16=bf16, device=device,
                progress=progress,
            )  # fmt: skip
            accuracies += one.accuracies
            if path is not None:
                text = json.dumps({"accuracies": accuracies})
                atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text))
    except KeyboardInterrupt as err:
        where = f"kept in {path}; rerun the same command to resume" if path else "not kept (no checkpoint)"
        detail = f"{len(accuracies)} of {n_seeds} seeds finished, {where}"
        raise Interrupted(getattr(err, "signum", signal.SIGINT), detail) from None
    if path is not None:
        path.unlink(missing_ok=True)
    return EvalResult(accuracies)


def _finished_seeds(path: Path | None) -> list[float]:
    """The accuracies an interrupted evaluation kept in ``path`` (none when absent or unreadable)."""
    if path is None or not path.is_file():
        return []
    try:
        return [float(a) for a in json.loads(path.read_text())["accuracies"]]
    except (ValueError, KeyError, TypeError) as err:
        warnings.warn(f"ignoring the unreadable evaluation checkpoint {str(path)!r} ({err})", stacklevel=2)
        return []
