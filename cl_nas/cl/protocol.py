"""cl_nas's training protocol inside Avalanche's loop, as plugins (the loop itself is Avalanche's).

:class:`TrainProtocolPlugin` applies a :class:`~cl_nas.train.TrainConfig` per experience: the optimizer
starts every experience with fresh state at ``lr`` (so a resumed run, whose optimizer is new, trains
exactly like an uninterrupted one) and ``lr`` drops x0.1 after ``decay_at`` of the experience's epochs,
as :func:`cl_nas.train.train_model` does. :class:`AutocastPlugin` runs forward passes under bf16
autocast, about 2x faster on CPUs with AVX-512-BF16, and hands float32 logits to the loss and metrics.
:class:`AugmentPlugin` augments every training mini-batch (DSA, as the papers train on synthetic sets).
"""

from __future__ import annotations

import contextlib
from typing import Any

from avalanche.core import SupervisedPlugin

from cl_nas.train import Augment, TrainConfig, autocast


class TrainProtocolPlugin(SupervisedPlugin):
    """Fresh optimizer state and ``config.lr`` at every experience; lr x 0.1 at ``config.decay_at``."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config

    def before_training_exp(self, strategy: Any, *args, **kwargs) -> None:
        strategy.optimizer.state.clear()
        for group in strategy.optimizer.param_groups:
            group["lr"] = self.config.lr

    def before_training_epoch(self, strategy: Any, *args, **kwargs) -> None:
        epoch = strategy.clock.train_exp_epochs
        if epoch > 0 and epoch == int(strategy.train_epochs * self.config.decay_at):
            for group in strategy.optimizer.param_groups:
                group["lr"] *= 0.1


class AutocastPlugin(SupervisedPlugin):
    """bf16 autocast around every training and evaluation forward pass; outputs are cast back to float32."""

    def __init__(self) -> None:
        super().__init__()
        self._context: contextlib.AbstractContextManager | None = None

    def _enter(self, strategy: Any) -> None:
        self._context = autocast(strategy.device, True)
        self._context.__enter__()

    def _exit(self, strategy: Any) -> None:
        self._context.__exit__(None, None, None)
        self._context = None
        strategy.mb_output = strategy.mb_output.float()

    def before_forward(self, strategy: Any, *args, **kwargs) -> None:
        self._enter(strategy)

    def after_forward(self, strategy: Any, *args, **kwargs) -> None:
        self._exit(strategy)

    def before_eval_forward(self, strategy: Any, *args, **kwargs) -> None:
        self._enter(strategy)

    def after_eval_forward(self, strategy: Any, *args, **kwargs) -> None:
        self._exit(strategy)


class AugmentPlugin(SupervisedPlugin):
    """Replace every training mini-batch's images by ``augment(images)`` (each image its own draw).

    The papers evaluate condensed sets with DSA on every batch (for 1000 epochs: with fewer it can cost
    accuracy, see ``benchmarks/results/cl_ablation.csv``). Evaluation batches are left alone.
    """

    def __init__(self, augment: Augment):
        super().__init__()
        self.augment = augment

    def before_forward(self, strategy: Any, *args, **kwargs) -> None:
        strategy.mbatch[0] = self.augment(strategy.mbatch[0])
