"""GDumb-style training on a memory (the DM paper's continual-learning protocol), for any storage policy.

At every experience the memory is first updated with the experience, then the model restarts from
its initial weights and is trained on the memory alone. Avalanche's ``GDumbPlugin`` does this with
its own class-balanced buffer of real images; this plugin takes any ``ExemplarsBuffer``, in particular
a :class:`~cl_nas.cl.condensed_buffer.CondensedBuffer`. The update sees the model of the previous
experience (GDumb updates before training), so selection strategies that embed with the learner
(herding, a condensed buffer's subselection) use a model trained on the previous memory.

Composition, not a new loop: combine with ``Naive`` (its ``train_epochs`` are the epochs on the memory).
Weights are reset in place, so anything holding the model (a herding selector) keeps seeing the
learner, and the optimizer's parameter references stay valid.
"""

from __future__ import annotations

import copy
from typing import Any

from avalanche.core import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer
from torch import nn


class GDumbStylePlugin(SupervisedPlugin):
    """Update ``storage_policy`` with each experience, reset ``model`` to its initial weights, train on the memory."""

    def __init__(self, storage_policy: ExemplarsBuffer, model: nn.Module):
        super().__init__()
        self.storage_policy = storage_policy
        self.initial_weights = copy.deepcopy(model.state_dict())  # taken now: a resumed run loads trained weights later

    def after_train_dataset_adaptation(self, strategy: Any, *args, **kwargs) -> None:
        self.storage_policy.post_adapt(strategy, strategy.experience)
        strategy.model.load_state_dict(self.initial_weights)
        strategy.model.train()  # feature-based selection leaves the model in eval mode
        strategy.adapted_dataset = self.storage_policy.buffer
