"""cl_nas's training inside Avalanche's loop, as plugins (the loop itself is Avalanche's).

* :class:`TrainProtocolPlugin` applies a :class:`~cl_nas.train.TrainConfig` per experience: the optimizer
  starts every experience with fresh state at ``lr`` (so a resumed run, whose optimizer is new, trains
  exactly like an uninterrupted one) and ``lr`` drops x0.1 after ``decay_at`` of the experience's epochs,
  as :func:`cl_nas.train.train_model` does.
* :class:`AutocastPlugin` runs forward passes under bf16 autocast and hands float32 logits to the loss
  and metrics.
* :class:`AugmentPlugin` augments every training mini-batch (DSA, as the papers train on synthetic sets).
* :class:`GDumbStylePlugin`: GDumb-style training on a memory (the DM paper's continual-learning
  protocol), for any storage policy, with selections that see a learner trained on the experience.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from avalanche.core import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer
from avalanche.training.templates import SupervisedTemplate
from torch import nn

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
        if getattr(strategy, "mb_buffer_out", None) is not None:  # ER-ACE's replayed batch, forwarded alongside
            strategy.mb_buffer_out = strategy.mb_buffer_out.float()

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
        if getattr(strategy, "mb_buffer_x", None) is not None:  # ER-ACE's replayed batch, drawn apart
            strategy.mb_buffer_x = self.augment(strategy.mb_buffer_x)


class GDumbStylePlugin(SupervisedPlugin):
    """At every experience: update ``storage_policy`` with it, reset the model to its initial weights, and train
    on the memory alone (combine with ``Naive``: its ``train_epochs`` are the epochs on the memory).

    What Avalanche's ``GDumbPlugin`` cannot do, and why this plugin exists: that plugin keeps its own
    class-balanced buffer of random real images and updates it *after* resetting the model (it selects
    without features); this one takes any ``ExemplarsBuffer`` (a condensed buffer, herding) and gives a
    selection that embeds with the learner what iCaRL's and Avalanche's replay give theirs, a network that
    has trained on the experience's data:

    * ``feature_learner`` (for such memories): a strategy over the same model whose training on the
      experience updates the memory when it ends. :func:`~cl_nas.cl.strategies.build_strategy` passes
      experience replay (``Naive`` + ``ReplayPlugin`` on this memory), so at experience ``k`` the model is
      first trained as a replay learner would be, from the weights the memory of experiences ``< k`` gave
      it, on experience ``k`` with that memory replayed; the memory then selects ``k``'s exemplars with
      those features (herding) or that teacher (APM); then the model restarts from its initial weights.
    * without one (memories that select without the learner: class-balanced, DM, DSA, ...) the memory is
      updated directly, and nothing else trains.

    Weights are reset in place, so anything holding the model (a herding selector) keeps seeing the
    learner, and the optimizer's parameter references stay valid.
    """

    def __init__(
        self, storage_policy: ExemplarsBuffer, model: nn.Module, feature_learner: SupervisedTemplate | None = None
    ):
        super().__init__()
        self.storage_policy = storage_policy
        self.feature_learner = feature_learner
        self.initial_weights = copy.deepcopy(model.state_dict())  # taken now: a resumed run loads trained weights later

    def after_train_dataset_adaptation(self, strategy: Any, *args, **kwargs) -> None:
        if self.feature_learner is None:
            self.storage_policy.post_adapt(strategy, strategy.experience)
        else:  # its training ends with the memory update
            self.feature_learner.train(strategy.experience, eval_streams=[])
        strategy.model.load_state_dict(self.initial_weights)
        strategy.model.train()  # feature-based selection leaves the model in eval mode
        strategy.adapted_dataset = self.storage_policy.buffer
