"""Search-space-aware condensation: networks drawn from the NAS search space instead of one fixed ConvNet.

A learned condenser's ``model`` setting may name a *space* instead of one network:
``"space:convnet"`` is the whole ConvNet family that proxy NAS searches (depth, width, activation,
normalisation, pooling: the choices of :mod:`cl_nas.models.convnet`, the same ones
:func:`cl_nas.nas.convnet_space` enumerates), and ``"space:convnet:depth=1|2|3,norm=batch|instance"``
restricts some dimensions, as ``cl-nas nas --space`` does. Each freshly drawn network is then a
uniform draw among the space's architectures that fit the images (torch's global generator, which
condensation seeds and checkpoints), so the synthetic set is matched against the whole space rather
than one architecture. The canonical text (dimensions sorted, values in the family's order) is what
enters the condenser's configuration, hence its cache key.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import torch

from cl_nas.models import ConvNetSpec, model_spec_string
from cl_nas.models.convnet import ACTIVATIONS, DEPTHS, NORMS, POOLS, WIDTHS

SPACE_PREFIX = "space:"
SPACES: dict[str, dict[str, tuple[Any, ...]]] = {
    "convnet": {"depth": DEPTHS, "width": WIDTHS, "activation": ACTIVATIONS, "norm": NORMS, "pool": POOLS}
}


def is_model_space(model: Any) -> bool:
    return isinstance(model, str) and model.startswith(SPACE_PREFIX)


def space_choices(text: str) -> dict[str, tuple[Any, ...]]:
    """The choices of every dimension of a ``space:`` text; ``ValueError`` for an unknown space, dimension
    or value."""
    family, _, restriction = text[len(SPACE_PREFIX) :].partition(":")
    if family not in SPACES:
        raise ValueError(f"unknown model space {family!r} in {text!r}; known: {', '.join(SPACES)}")
    choices = dict(SPACES[family])
    for item in filter(None, restriction.split(",")):
        name, _, values = item.partition("=")
        if name not in choices:
            raise ValueError(f"model space {family!r} has no dimension {name!r}; its dimensions: {', '.join(choices)}")
        wanted = [int(v) if v.isdigit() else v for v in values.split("|") if v]
        unknown = [v for v in wanted if v not in choices[name]]
        if unknown or not wanted:
            raise ValueError(f"{text!r}: {name} must list values among {list(choices[name])}, got {values!r}")
        choices[name] = tuple(v for v in choices[name] if v in wanted)
    return choices


def model_or_space(value: Any) -> str:
    """A model setting's canonical text: a ``space:`` text with sorted dimensions and restricted ones only,
    else the model spec's canonical string."""
    if not is_model_space(value):
        return model_spec_string(value)
    family = value[len(SPACE_PREFIX) :].partition(":")[0]
    choices = space_choices(value)
    restricted = [f"{n}={'|'.join(map(str, v))}" for n, v in sorted(choices.items()) if v != SPACES[family][n]]
    return SPACE_PREFIX + family + (":" + ",".join(restricted) if restricted else "")


@functools.cache
def _feasible(text: str, channels: int, image_size: tuple[int, int]) -> tuple[ConvNetSpec, ...]:
    choices = space_choices(text)
    specs = [ConvNetSpec(**dict(zip(choices, values, strict=True))) for values in itertools.product(*choices.values())]
    fitting = []
    for spec in specs:
        try:
            spec.check_fits(image_size, channels)
        except ValueError:
            continue
        fitting.append(spec)
    if not fitting:
        raise ValueError(f"no architecture of {text!r} can process {channels}x{image_size[0]}x{image_size[1]} images")
    return tuple(fitting)


def draw_network(text: str, channels: int, image_size: tuple[int, int]) -> ConvNetSpec:
    """One architecture of the ``space:`` text that fits the images, uniformly, from torch's global generator."""
    feasible = _feasible(text, channels, tuple(image_size))
    return feasible[int(torch.randint(len(feasible), ()))]
