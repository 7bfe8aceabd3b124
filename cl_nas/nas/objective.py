"""The score of one architecture: train it with the standard loop, score it on the validation split.

:class:`ArchitectureObjective` is an Optuna objective. For each trial it asks the search space for
an architecture, builds it with the trial's seed, trains it on its :class:`TrainingData` with
:func:`cl_nas.train.train_model` (the papers' protocol, shortened to ``data.epochs`` epochs, with the
objective's learning rate and augmentation) and returns its top-1 accuracy (percent) on the
*validation* split, held out from the real training data: the test split never takes part in a search.
A zero-cost proxy's data (``data.score_at_init``) is not trained on: the trial's score is that
function of the untrained network and the data's images.

Every ``report_every`` epochs (and after the last) the validation accuracy is reported to the
trial, so a pruner (median, successive halving) can stop a poor candidate; a pruned trial keeps
its last reported value. Each trial records user attributes ``arch`` (the canonical spec string),
``train_seconds`` (training only), ``eval_seconds`` (validation passes) and ``machine``
(:func:`~cl_nas.utils.machine_description` of the process that timed it): a study resumed or shared
by workers on other machines holds trials timed on each, and a ratio of times is only meaningful
within one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from cl_nas.augment import DSA, resolve_strategy
from cl_nas.data import ImageDataset
from cl_nas.models import build_model, model_spec_string
from cl_nas.models.space import Params, SearchSpace
from cl_nas.nas.proxy import TrainingData
from cl_nas.train import TrainConfig, accuracy, train_model
from cl_nas.utils import machine_description, resolve_device


class ArchitectureObjective:
    """Optuna objective: validation accuracy of a space's architecture trained on ``data``.

    ``lr`` is the SGD learning rate (the protocol's 0.01 by default; x 0.1 at half the epochs) and
    ``augment`` the training augmentation: None or ``"none"``, ``"dsa"`` (the dataset's DSA strategy) or a
    DSA strategy such as ``"crop_scale"``. The training and validation images move to the device once.
    """

    def __init__(
        self,
        space: SearchSpace,
        data: TrainingData,
        val: ImageDataset,
        *,
        seed: int = 0,
        report_every: int | None = None,
        lr: float = TrainConfig.lr,
        augment: str | None = None,
        bf16: bool = False,
        device: str | torch.device = "auto",
    ):
        info = val.info
        if tuple(data.images.shape[1:]) != info.image_shape:
            raise ValueError(
                f"the {data.name} training set has images of shape {tuple(data.images.shape[1:])} but the "
                f"{info.name} validation split has {info.image_shape}: candidates must train and be scored on "
                "the same kind of images"
            )
        space.grid(info.channels, info.image_size)  # raises when no architecture of the space fits the images
        if report_every is not None and report_every < 1:
            raise ValueError(f"report_every must be a positive number of epochs or None, got {report_every}")
        self.space, self.data, self.seed = space, data, seed
        self.device = resolve_device(device)
        self.report_every = report_every or max(data.epochs, 1)
        self.config = TrainConfig(epochs=data.epochs, lr=lr, bf16=bf16)
        self.augment = resolve_strategy(augment, info.name)
        self.images, self.labels = data.images.to(self.device), data.labels.to(self.device)
        self.val = ImageDataset(val.images.to(self.device), val.labels, info)  # labels stay where predictions land

    def build(self, trial: optuna.Trial, seed: int) -> nn.Module:
        """The trial's architecture, freshly initialised from ``seed``."""
        info = self.val.info
        spec = self.space.suggest(trial, info.channels, info.image_size)
        trial.set_user_attr("arch", model_spec_string(spec))
        torch.manual_seed(seed)
        return build_model(spec, info.channels, info.num_classes, info.image_size)

    def __call__(self, trial: optuna.Trial) -> float:
        net = self.build(trial, self.seed)
        if self.data.score_at_init is not None:
            return self._score_at_init(trial, net)
        epochs, scores, eval_seconds = self.config.epochs, [], 0.0

        def report(epoch: int, model: nn.Module) -> None:
            nonlocal eval_seconds
            step = epoch + 1
            if step % self.report_every and step != epochs:
                return
            start = time.perf_counter()
            scores.append(accuracy(model, self.val, bf16=self.config.bf16))
            eval_seconds += time.perf_counter() - start
            trial.report(scores[-1], step)
            if step != epochs and trial.should_prune():
                raise optuna.TrialPruned(f"validation accuracy {scores[-1]:.2f} % after {step} epochs")

        start = time.perf_counter()
        try:
            train_model(
                net,
                self.images,
                self.labels,
                self.config,
                augment=DSA(self.augment) if self.augment else None,
                device=self.device,
                generator=torch.Generator().manual_seed(self.seed),
                on_epoch_end=report,
            )
        finally:  # pruned trials keep their cost too: the speed-up counts every candidate
            record_cost(trial, time.perf_counter() - start - eval_seconds, eval_seconds)
        return scores[-1]

    def _score_at_init(self, trial: optuna.Trial, net: nn.Module) -> float:
        start = time.perf_counter()
        try:
            return self.data.score_at_init(net.to(self.device), self.images)
        finally:
            record_cost(trial, time.perf_counter() - start, 0.0)


def record_cost(trial: optuna.Trial, train_seconds: float, eval_seconds: float, machine: str | None = None) -> None:
    """Record a trial's cost: training (or scoring) and validation seconds, and the machine that timed them."""
    trial.set_user_attr("train_seconds", train_seconds)
    trial.set_user_attr("eval_seconds", eval_seconds)
    trial.set_user_attr("machine", machine or machine_description())


@dataclass(frozen=True)
class ArchScore:
    """One architecture's result in a study."""

    arch: str
    params: Params
    value: float
    pruned: bool
    epochs: int  # epochs trained before the final (or pruning) report
    train_seconds: float
    eval_seconds: float
    trial: int
    machine: str  # where it was timed; "" if unknown (a trial from before machines were recorded)
    # the ground truth: the accuracy of each training seed (``value`` is their mean); empty for a proxy
    seed_values: tuple[float, ...] = ()

    @property
    def fidelity(self) -> tuple[int, int]:
        """``(epochs, training seeds)`` behind the score: a ground truth ranks higher fidelities first."""
        return self.epochs, max(len(self.seed_values), 1)


def read_scores(study: optuna.Study) -> dict[str, ArchScore]:
    """Scores of the finished trials by architecture; a pruned one scores its last reported value.

    An architecture evaluated twice (a sampler may propose it again) keeps its first result.
    """
    scores: dict[str, ArchScore] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if t.state == TrialState.PRUNED and not t.intermediate_values:
            continue  # pruned before any report: nothing to rank it by
        step = max(t.intermediate_values) if t.intermediate_values else None
        value = t.value if t.state == TrialState.COMPLETE else t.intermediate_values[step]
        arch = t.user_attrs["arch"]
        if arch not in scores:
            scores[arch] = ArchScore(
                arch,
                dict(t.params),
                float(value),
                t.state == TrialState.PRUNED,
                step or 0,
                float(t.user_attrs.get("train_seconds", float("nan"))),
                float(t.user_attrs.get("eval_seconds", float("nan"))),
                t.number,
                str(t.user_attrs.get("machine", "")),
            )
    return scores
