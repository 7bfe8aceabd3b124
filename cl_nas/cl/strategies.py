"""The ways to learn a stream: Avalanche strategies, each with its memory, registered in :data:`STRATEGIES`.

Every strategy that takes a memory takes any storage policy (a condensed buffer, Avalanche's buffers, at
any precision), and all but ``avalanche-gdumb`` update it after training on the experience, so a selection
that embeds with the learner (herding) or is taught by it (APM) sees a learner trained on the experience:

* ``naive``: fine-tuning on each experience in turn (lower bound).
* ``joint``: Avalanche's ``JointTraining`` on the whole stream at once (upper bound).
* ``replay``: ``Naive`` + ``ReplayPlugin(storage_policy=memory)``: every mini-batch of the experience is
  joined by one from the memory (the ``Replay`` wrapper takes no storage policy).
* ``er-ace``: Avalanche's ER-ACE training loop and asymmetric loss on the memory (:class:`ERACE`).
* ``ewc-replay``, ``lwf-replay``: Avalanche's ``EWC`` / ``LwF`` + ``ReplayPlugin(storage_policy=memory)``.
* ``gdumb``: ``Naive`` + :class:`~cl_nas.cl.plugins.GDumbStylePlugin`: a model trained from its initial
  weights on the memory alone at every experience; memories that select with the learner are updated
  after a replay step on the experience (see the plugin).
* ``avalanche-gdumb``: Avalanche's own ``GDumbPlugin`` with the memory as its storage policy. It resets the
  model *before* updating the memory, so it takes only memories that select without the learner
  (class-balanced, reservoir, condensed at a per-class budget).

All of them train under :class:`~cl_nas.cl.plugins.TrainProtocolPlugin` (cl_nas's SGD protocol per
experience), optionally with augmented mini-batches and bf16 autocast, and report to an Avalanche
``EvaluationPlugin``: by default :class:`~cl_nas.cl.metrics.RunMetrics`' accuracy, forgetting, BWT, timing
and RAM metrics, sent to the loggers given. A strategy with settings of its own (``ewc_lambda``, ...)
declares them with their defaults in :attr:`StrategySpec.options`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.logging import BaseLogger
from avalanche.training.plugins import EvaluationPlugin, GDumbPlugin, ReplayPlugin
from avalanche.training.storage_policy import ExemplarsBuffer
from avalanche.training.supervised import ER_ACE, EWC, JointTraining, LwF, Naive
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.utils import cycle
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from cl_nas.cl.buffers import selects_with_learner
from cl_nas.cl.metrics import RunMetrics, quiet_evaluator
from cl_nas.cl.plugins import AugmentPlugin, AutocastPlugin, GDumbStylePlugin, TrainProtocolPlugin
from cl_nas.registry import Registry, did_you_mean
from cl_nas.train import Augment, TrainConfig, sgd

EVAL_BATCH = 1024


class ERACE(ER_ACE):
    """Avalanche's ER-ACE (its training loop and ``ACECriterion``) on any storage policy, updated after training.

    Avalanche's ``ER_ACE`` keeps its own class-balanced buffer and fills it with the experience *before*
    training on it, so from the second experience on its replayed mini-batches hold the current classes
    beside the earlier ones. That matters: ACE's loss on the incoming mini-batch counts only the classes
    present in it, so the current classes meet the earlier ones' logits in the replayed batches alone; a
    replay of earlier classes only teaches the network to predict none of the current ones.

    Here ``storage_policy`` is the memory given, updated when training on the experience ends, as
    ``ReplayPlugin`` does, so a selection that embeds with the learner sees one trained on the experience.
    From the second experience on, the replayed mini-batches (``batch_size_mem`` items, or all when fewer) are
    drawn from the memory together with a random class-balanced sample of the experience, as many items per
    class as the memory holds per class (:func:`current_experience_sample`), as Avalanche's buffer would hold.
    The memory's items must carry task labels, ``(x, y, t)``, as ``ER_ACE``'s replay loader expects.
    """

    def __init__(self, *, storage_policy: ExemplarsBuffer, **kwargs: Any):
        super().__init__(mem_size=storage_policy.max_size, **kwargs)
        self.storage_policy = storage_policy

    def _before_training_exp(self, **kwargs: Any) -> None:
        memory = self.storage_policy.buffer
        self.replay_loader = None
        if len(memory):
            per_class = max(1, len(memory) // len(memory.targets.uniques))
            replayed = ConcatDataset([memory, current_experience_sample(self.experience.dataset, per_class)])
            size = min(self.batch_size_mem, len(replayed))
            self.replay_loader = cycle(
                DataLoader(replayed, batch_size=size, shuffle=True, drop_last=True, collate_fn=_stack_items)
            )
        super(ER_ACE, self)._before_training_exp(**kwargs)  # the template's, without ER_ACE's early update

    def _after_training_exp(self, **kwargs: Any) -> None:
        self.storage_policy.update(self, **kwargs)
        super()._after_training_exp(**kwargs)


def _stack_items(items: list[tuple]) -> list[torch.Tensor]:
    # a buffer's labels are tensors, an experience's ints: default_collate refuses the mix
    return [torch.stack([torch.as_tensor(item[k]) for item in items]) for k in range(len(items[0]))]


def current_experience_sample(dataset: Any, per_class: int) -> Any:
    """A random subset of an Avalanche classification dataset with ``per_class`` items of each class (all of a
    class that has fewer), drawn with torch's global generator so that a seeded run repeats it."""
    by_class = dataset.targets.val_to_idx  # Avalanche's own class -> indices map, cached on the dataset
    chosen = [
        indices[i] for _, indices in sorted(by_class.items()) for i in torch.randperm(len(indices))[:per_class].tolist()
    ]
    return dataset.subset(sorted(chosen))


@dataclass(frozen=True)
class Recipe:
    """What :func:`build_strategy` hands a registered strategy's builder."""

    model: nn.Module
    config: TrainConfig
    memory: ExemplarsBuffer | None
    plugins: tuple[SupervisedPlugin, ...]  # training protocol, augmentation, autocast, then the caller's
    evaluator: EvaluationPlugin
    device: torch.device
    options: Mapping[str, Any]  # the strategy's own settings, defaults filled in
    augment: Augment | None = None
    experience_epochs: int = 1

    def arguments(self, *own_plugins: SupervisedPlugin, **extra: Any) -> dict[str, Any]:
        """Keyword arguments of an Avalanche ``SupervisedTemplate``: cl_nas's SGD and batch sizes, the plugins."""
        return {
            "model": self.model, "optimizer": sgd(self.model, self.config), "criterion": nn.CrossEntropyLoss(),
            "train_mb_size": self.config.batch_size, "train_epochs": self.config.epochs, "eval_mb_size": EVAL_BATCH,
            "device": self.device, "plugins": [*self.plugins, *own_plugins], "evaluator": self.evaluator, **extra,
        }  # fmt: skip

    def replay_plugin(self) -> ReplayPlugin:
        return ReplayPlugin(mem_size=self.memory.max_size, storage_policy=self.memory)


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy: its builder and what it needs."""

    build: Callable[[Recipe], SupervisedTemplate]
    memory: bool  # takes a storage policy
    memory_only: bool = False  # trains on the memory alone: its epochs are the memory epochs
    learner_selects: bool = True  # the memory's updates may read the learner (it has trained on the experience)
    needs_task_labels: bool = False  # its memory items must be (x, y, t)
    resumes: bool = True  # its state is all in the weights, the memory and the random state (see cl_nas.cl.resume)
    options: Mapping[str, Any] = field(default_factory=dict)  # its own settings and their defaults
    version: int = 1  # bump when a change makes its earlier runs incomparable: their run folders are not resumed


STRATEGIES: Registry[StrategySpec] = Registry("strategy")


def register_strategy(name: str, **spec: Any) -> Callable[[Callable[[Recipe], SupervisedTemplate]], Callable]:
    """Decorator: register a builder ``Recipe -> SupervisedTemplate`` as strategy ``name`` (a :class:`StrategySpec`
    with ``spec``); a name already taken raises ``ValueError``."""

    def add(build: Callable[[Recipe], SupervisedTemplate]) -> Callable[[Recipe], SupervisedTemplate]:
        STRATEGIES.register(name)(StrategySpec(build, **spec))
        return build

    return add


@register_strategy("naive", memory=False)
def _naive(r: Recipe) -> SupervisedTemplate:
    return Naive(**r.arguments())


@register_strategy("joint", memory=False)
def _joint(r: Recipe) -> SupervisedTemplate:
    return JointTraining(**r.arguments())


@register_strategy("replay", memory=True)
def _replay(r: Recipe) -> SupervisedTemplate:
    return Naive(**r.arguments(r.replay_plugin()))


# version 2: the replayed batches hold a sample of the current experience, as Avalanche's do
@register_strategy("er-ace", memory=True, needs_task_labels=True, options={"batch_size_mem": None}, version=2)
def _er_ace(r: Recipe) -> SupervisedTemplate:
    batch_size_mem = r.options["batch_size_mem"] or r.config.batch_size  # None: as many as ReplayPlugin draws
    return ERACE(**r.arguments(storage_policy=r.memory, batch_size_mem=batch_size_mem))


# EWC's importances and LwF's previous model live in their plugins, which the run files do not record
@register_strategy("ewc-replay", memory=True, resumes=False, options={"ewc_lambda": 1.0, "mode": "separate"})
def _ewc_replay(r: Recipe) -> SupervisedTemplate:
    return EWC(**r.arguments(r.replay_plugin(), **r.options))


@register_strategy("lwf-replay", memory=True, resumes=False, options={"alpha": 1.0, "temperature": 2.0})
def _lwf_replay(r: Recipe) -> SupervisedTemplate:
    return LwF(**r.arguments(r.replay_plugin(), **r.options))


@register_strategy("gdumb", memory=True, memory_only=True)
def _gdumb(r: Recipe) -> SupervisedTemplate:
    feature_learner = None
    if selects_with_learner(r.memory):  # a replay learner over the same model, silent, trained on the experience
        config = replace(r.config, epochs=r.experience_epochs)
        feature_learner = _replay(
            Recipe(r.model, config, r.memory, _protocol(config, r.augment), quiet_evaluator(), r.device, {})
        )
    return Naive(**r.arguments(GDumbStylePlugin(r.memory, r.model, feature_learner)))


@register_strategy("avalanche-gdumb", memory=True, memory_only=True, learner_selects=False)
def _avalanche_gdumb(r: Recipe) -> SupervisedTemplate:
    plugin = GDumbPlugin(mem_size=r.memory.max_size)
    plugin.storage_policy = r.memory
    plugin.init_model = copy.deepcopy(r.model)  # taken now: a resumed run loads trained weights later
    return Naive(**r.arguments(plugin))


def check_memory(name: str, memory: ExemplarsBuffer | None) -> StrategySpec:
    """Strategy ``name``'s spec, once ``memory`` (None: no memory) suits it; else ``ValueError``."""
    spec = STRATEGIES.get(name)
    if spec.memory != (memory is not None):
        raise ValueError(f"strategy {name!r} {'needs' if spec.memory else 'takes no'} memory")
    if not spec.learner_selects and selects_with_learner(memory):
        raise ValueError(
            f"strategy {name!r} updates the memory with a freshly reset model, but this memory selects with the "
            "learner (herding, a teacher, shrinking by herding): use gdumb, whose updates see a trained learner"
        )
    return spec


def strategy_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Strategy ``name``'s own settings: its declared defaults updated by ``options`` (an unknown key raises)."""
    declared = STRATEGIES.get(name).options
    for key in options or {}:
        if key not in declared:
            choices = f"its options: {', '.join(declared)}" if declared else "it has none"
            raise ValueError(f"strategy {name!r} has no option {key!r}{did_you_mean(key, declared)}; {choices}")
    return {**declared, **(options or {})}


def _protocol(config: TrainConfig, augment: Augment | None) -> tuple[SupervisedPlugin, ...]:
    plugins: list[SupervisedPlugin] = [TrainProtocolPlugin(config)]
    if augment is not None:  # before autocast: augmentation runs in float32
        plugins.append(AugmentPlugin(augment))
    if config.bf16:
        plugins.append(AutocastPlugin())
    return tuple(plugins)


def build_strategy(
    name: str,
    model: nn.Module,
    config: TrainConfig,
    *,
    memory: ExemplarsBuffer | None = None,
    augment: Augment | None = None,
    device: torch.device = torch.device("cpu"),
    evaluator: EvaluationPlugin | None = None,
    loggers: Sequence[BaseLogger] = (),
    plugins: Sequence[SupervisedPlugin] = (),
    options: Mapping[str, Any] | None = None,
    experience_epochs: int = 1,
) -> SupervisedTemplate:
    """Strategy ``name`` training ``model`` for ``config.epochs`` per experience (on the memory alone for the
    GDumb strategies), on mini-batches passed through ``augment`` when given (replayed images included).

    ``evaluator``: any Avalanche ``EvaluationPlugin``; by default :class:`~cl_nas.cl.metrics.RunMetrics`'
    metrics reporting to ``loggers`` (give loggers to your own evaluator instead). ``plugins`` are added
    after cl_nas's own. ``options`` set the strategy's own settings (see :func:`strategy_options`).
    ``experience_epochs``: epochs of ``gdumb``'s replay step on each experience, for memories that select
    with the learner.
    """
    spec = check_memory(name, memory)
    if evaluator is not None and loggers:
        raise ValueError("give the loggers to your evaluator, or no evaluator to use cl_nas's metrics with them")
    recipe = Recipe(
        model, config, memory, (*_protocol(config, augment), *plugins),
        evaluator if evaluator is not None else RunMetrics().evaluator(loggers), device,
        strategy_options(name, options), augment, experience_epochs,
    )  # fmt: skip
    return spec.build(recipe)
