"""The four ways to learn a stream, each an Avalanche strategy composed with plugins.

* ``naive``: fine-tuning on each experience in turn (lower bound).
* ``joint``: Avalanche's ``JointTraining`` on the whole stream at once (upper bound).
* ``replay``: ``Naive`` + ``ReplayPlugin(mem_size, storage_policy=memory)``: every mini-batch of the
  experience is joined by one from the memory (the ``Replay`` wrapper takes no storage policy).
* ``gdumb``: ``Naive`` + :class:`~cl_nas.cl.gdumb.GDumbStylePlugin`: a model trained from its initial
  weights on the memory alone at every experience.

All of them train under :class:`~cl_nas.cl.protocol.TrainProtocolPlugin` (cl_nas's SGD protocol per
experience), optionally with augmented mini-batches and bf16 autocast, and evaluate with Avalanche's
accuracy and forgetting metrics.
"""

from __future__ import annotations

import warnings

import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.storage_policy import ExemplarsBuffer
from avalanche.training.supervised import JointTraining, Naive
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from cl_nas.cl.gdumb import GDumbStylePlugin
from cl_nas.cl.protocol import AugmentPlugin, AutocastPlugin, TrainProtocolPlugin
from cl_nas.train import Augment, TrainConfig

STRATEGIES = ("naive", "joint", "replay", "gdumb")
MEMORY_STRATEGIES = ("replay", "gdumb")
EVAL_BATCH = 1024


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(STRATEGIES)}")
    return name


def evaluator() -> EvaluationPlugin:
    """Accuracy per experience and over the stream, and forgetting; no loggers (the runner reports)."""
    with warnings.catch_warnings():  # "no loggers specified" is what we want
        warnings.simplefilter("ignore", UserWarning)
        return EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True), forgetting_metrics(experience=True, stream=True), loggers=[]
        )


def build_strategy(
    name: str,
    model: nn.Module,
    config: TrainConfig,
    *,
    memory: ExemplarsBuffer | None = None,
    augment: Augment | None = None,
    device: torch.device = torch.device("cpu"),
) -> SupervisedTemplate:
    """Strategy ``name`` training ``model`` for ``config.epochs`` per experience (on the memory for ``gdumb``),
    on mini-batches passed through ``augment`` when given (replayed images included)."""
    check_strategy(name)
    if (name in MEMORY_STRATEGIES) != (memory is not None):
        raise ValueError(f"strategy {name!r} {'needs' if name in MEMORY_STRATEGIES else 'takes no'} memory")
    plugins = [TrainProtocolPlugin(config)]
    if augment is not None:  # before autocast: augmentation runs in float32
        plugins.append(AugmentPlugin(augment))
    if config.bf16:
        plugins.append(AutocastPlugin())
    if name == "replay":
        plugins.append(ReplayPlugin(mem_size=memory.max_size, storage_policy=memory))
    elif name == "gdumb":
        plugins.append(GDumbStylePlugin(memory, model))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    template = JointTraining if name == "joint" else Naive
    return template(
        model=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=config.batch_size,
        train_epochs=config.epochs,
        eval_mb_size=EVAL_BATCH,
        device=device,
        plugins=plugins,
        evaluator=evaluator(),
    )
