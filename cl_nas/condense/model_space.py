"""Search-space-aware condensation: networks drawn from the NAS search space instead of one fixed ConvNet.

A learned condenser's ``model`` setting may name a *space* instead of one network:
``"space:convnet"`` is the whole ConvNet family that proxy NAS searches (depth, width, activation,
normalisation, pooling: :func:`cl_nas.models.space.convnet_space`, the one definition both use), and
``"space:convnet:depth=1|2|3,norm=batch|instance"`` restricts some dimensions, as ``cl-nas nas --space``
does. Each freshly drawn network is then a uniform draw among the space's architectures that fit the
images (torch's global generator, which condensation seeds and checkpoints), so the synthetic set is
matched against the whole space rather than one architecture. The canonical text (dimensions sorted,
values in the family's order) is what enters the condenser's configuration, hence its cache key.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from cl_nas.models import ConvNetSpec, model_spec_string
from cl_nas.models.space import SearchSpace, convnet_space

SPACE_PREFIX = "space:"
SPACES: dict[str, Callable[[], SearchSpace]] = {"convnet": convnet_space}


def is_model_space(model: Any) -> bool:
    return isinstance(model, str) and model.startswith(SPACE_PREFIX)


@functools.cache
def search_space(text: str) -> SearchSpace:
    """The :class:`~cl_nas.models.space.SearchSpace` a ``space:`` text names, restricted as it says;
    ``ValueError`` for an unknown space, dimension or value."""
    family, _, restriction = text[len(SPACE_PREFIX) :].partition(":")
    if family not in SPACES:
        raise ValueError(f"unknown model space {family!r} in {text!r}; known: {', '.join(SPACES)}")
    space = SPACES[family]()
    choices = {d.name: d.choices for d in space.dimensions}
    restricted: dict[str, tuple[Any, ...]] = {}
    for item in filter(None, restriction.split(",")):
        name, _, values = item.partition("=")
        if name not in choices:
            raise ValueError(f"model space {family!r} has no dimension {name!r}; its dimensions: {', '.join(choices)}")
        wanted = [int(v) if v.isdigit() else v for v in values.split("|") if v]
        unknown = [v for v in wanted if v not in choices[name]]
        if unknown or not wanted:
            raise ValueError(f"{text!r}: {name} must list values among {list(choices[name])}, got {values!r}")
        restricted[name] = tuple(v for v in choices[name] if v in wanted)  # the family's order
    return space.restrict(restricted)


def space_choices(text: str) -> dict[str, tuple[Any, ...]]:
    """The choices of every dimension of a ``space:`` text."""
    return {d.name: d.choices for d in search_space(text).dimensions}


def model_or_space(value: Any) -> str:
    """A model setting's canonical text: a ``space:`` text with sorted dimensions and restricted ones only,
    else the model spec's canonical string."""
    if not is_model_space(value):
        return model_spec_string(value)
    family = value[len(SPACE_PREFIX) :].partition(":")[0]
    whole = space_choices(SPACE_PREFIX + family)
    restricted = [f"{n}={'|'.join(map(str, v))}" for n, v in sorted(space_choices(value).items()) if v != whole[n]]
    return SPACE_PREFIX + family + (":" + ",".join(restricted) if restricted else "")


@functools.cache
def _feasible(text: str, channels: int, image_size: tuple[int, int]) -> tuple[ConvNetSpec, ...]:
    space = search_space(text)
    return tuple(space.spec(params) for params in space.grid(channels, image_size))


def draw_network(text: str, channels: int, image_size: tuple[int, int]) -> ConvNetSpec:
    """One architecture of the ``space:`` text that fits the images, uniformly, from torch's global generator."""
    feasible = _feasible(text, channels, tuple(image_size))
    return feasible[int(torch.randint(len(feasible), ()))]
