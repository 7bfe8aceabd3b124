"""Search spaces: named dimensions whose values map to a model spec, as Optuna calls and as a grid.

A :class:`SearchSpace` is a list of :class:`Dimension` (a name and its choices), a function turning
a parameter dict into a model spec, and a check that a spec can process an image size. The search
loop only ever calls :meth:`SearchSpace.suggest` (Optuna ``suggest_*``) or enumerates
:meth:`SearchSpace.grid`, so adding a dimension or another model family means building another
``SearchSpace``, never touching the loop::

    space = SearchSpace("mlp", [Dimension("width", (64, 128, 256))], to_spec=lambda p: {"name": "mlp", **p})

:func:`convnet_space` is the DC paper's ConvNet family: 4 depths x 4 widths x 3 activations x
5 norms x 3 poolings = 720 architectures. Pooling halves the feature map once per block, so on
small images some are impossible (depth 4 with pooling turns 8x8 into 0x0): the grid leaves them
out, and ``suggest`` raises :class:`InfeasibleArchitecture` naming the reason. Proxy NAS searches these
spaces (:mod:`cl_nas.nas`), and condensation over a space draws its networks from the same grid
(:mod:`cl_nas.condense.model_space`).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cl_nas.models import ConvNetSpec, ModelSpec, build_model, model_spec_string
from cl_nas.models.convnet import ACTIVATIONS, DEPTHS, NORMS, POOLS, WIDTHS
from cl_nas.utils import check_positive_int

if TYPE_CHECKING:  # only the search loop needs Optuna; condensation draws from the grid without it
    import optuna

Value = int | float | str | bool
Params = dict[str, Value]


class SearchSpaceError(ValueError):
    """A search space is empty or contradictory (or holds no architecture for the images)."""


class InfeasibleArchitecture(ValueError):
    """A point of the space cannot be built for the images being searched."""


@dataclass(frozen=True)
class Dimension:
    """One named axis of a search space and its allowed values, in order.

    Consecutive integers become ``trial.suggest_int`` (the sampler may exploit their order);
    anything else is ``trial.suggest_categorical``.
    """

    name: str
    choices: tuple[Value, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.name:
            raise SearchSpaceError("a search-space dimension needs a name")
        if not self.choices:
            raise SearchSpaceError(f"dimension {self.name!r} has no choices: the search space would be empty")
        if len(set(self.choices)) != len(self.choices):
            raise SearchSpaceError(f"dimension {self.name!r} lists a choice twice: {self.choices}")

    @property
    def is_int_range(self) -> bool:
        values = self.choices
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return False
        return len(values) > 1 and list(values) == list(range(values[0], values[-1] + 1))

    def suggest(self, trial: optuna.Trial) -> Value:
        if self.is_int_range:
            return trial.suggest_int(self.name, self.choices[0], self.choices[-1])
        return trial.suggest_categorical(self.name, self.choices)


def _build_check(spec: ModelSpec, channels: int, image_size: tuple[int, int]) -> None:
    """Generic feasibility check: build the model once (correct for any family, but slow)."""
    build_model(spec, channels, 2, image_size)


@dataclass(frozen=True)
class SearchSpace:
    """Named dimensions, ``to_spec(params) -> model spec`` and ``check(spec, channels, image_size)``.

    ``check`` raises ``ValueError`` when the spec cannot process the images; the default builds
    the model, families with a cheap rule (like the ConvNet's) pass their own.
    """

    name: str
    dimensions: tuple[Dimension, ...]
    to_spec: Callable[[Params], ModelSpec]
    check: Callable[[ModelSpec, int, tuple[int, int]], None] = field(default=_build_check)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        if not self.dimensions:
            raise SearchSpaceError(f"search space {self.name!r} has no dimensions")
        names = [d.name for d in self.dimensions]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise SearchSpaceError(f"search space {self.name!r} defines dimension(s) {duplicated} more than once")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @property
    def size(self) -> int:
        """Number of grid points, feasible or not."""
        total = 1
        for d in self.dimensions:
            total *= len(d.choices)
        return total

    def key(self) -> list[Any]:
        """What identifies the space's points (part of a study's fingerprint)."""
        return [self.name, [[d.name, list(d.choices)] for d in self.dimensions]]

    def describe(self) -> str:
        return f"{self.name}: " + ", ".join(f"{d.name} {'/'.join(map(str, d.choices))}" for d in self.dimensions)

    def restrict(self, choices: Mapping[str, Sequence[Value]]) -> SearchSpace:
        """The same space with the listed dimensions' choices replaced (values are validated by the grid)."""
        unknown = sorted(set(choices) - set(self.names))
        if unknown:
            raise SearchSpaceError(
                f"search space {self.name!r} has no dimension(s) {unknown}; its dimensions are {list(self.names)}"
            )
        dims = tuple(Dimension(d.name, tuple(choices.get(d.name, d.choices))) for d in self.dimensions)
        return SearchSpace(self.name, dims, self.to_spec, self.check)

    def spec(self, params: Mapping[str, Value]) -> ModelSpec:
        """The model spec of one point; a value the family rejects raises :class:`SearchSpaceError`."""
        missing = sorted(set(self.names) - set(params))
        if missing:
            raise SearchSpaceError(f"parameters {dict(params)} lack dimension(s) {missing} of {self.name!r}")
        try:
            return self.to_spec({n: params[n] for n in self.names})
        except (ValueError, TypeError) as err:
            raise SearchSpaceError(f"search space {self.name!r} is contradictory: {dict(params)} -> {err}") from err

    def spec_string(self, params: Mapping[str, Value]) -> str:
        """Canonical string of a point (``convnet:activation=relu,depth=2,...``): the key of every table."""
        return model_spec_string(self.spec(params))

    def feasibility(self, params: Mapping[str, Value], channels: int, image_size: tuple[int, int]) -> str | None:
        """None if the point can be built for ``channels x image_size`` images, else the reason."""
        try:
            self.check(self.spec(params), channels, tuple(image_size))
        except SearchSpaceError:
            raise
        except ValueError as err:
            return str(err)
        return None

    def points(self) -> Iterator[Params]:
        """Every grid point (feasible or not), in a fixed order."""
        for values in itertools.product(*(d.choices for d in self.dimensions)):
            yield dict(zip(self.names, values, strict=True))

    def grid(self, channels: int, image_size: tuple[int, int]) -> list[Params]:
        """All points that can be built for these images; an empty result raises :class:`SearchSpaceError`."""
        feasible, reasons = [], []
        for params in self.points():
            reason = self.feasibility(params, channels, image_size)
            if reason is None:
                feasible.append(params)
            else:
                reasons.append(reason)
        if not feasible:
            raise SearchSpaceError(
                f"no architecture of {self.describe()} can process {channels}x{image_size[0]}x{image_size[1]} "
                f"images (e.g. {reasons[0]}); widen the space"
            )
        return feasible

    def sample(self, n: int, seed: int, channels: int, image_size: tuple[int, int]) -> list[Params]:
        """The first ``n`` feasible points of a seeded shuffle of the grid: a fixed, reproducible subset.

        The subset for a smaller ``n`` is a prefix of the one for a larger ``n`` (same seed).
        """
        check_positive_int("the number of architectures", n)
        grid = self.grid(channels, image_size)
        if n > len(grid):
            raise ValueError(
                f"asked for {n} architectures but only {len(grid)} of the {self.size} in {self.name!r} fit "
                f"{channels}x{image_size[0]}x{image_size[1]} images"
            )
        random.Random(seed).shuffle(grid)
        return grid[:n]

    def suggest(self, trial: optuna.Trial, channels: int, image_size: tuple[int, int]) -> ModelSpec:
        """Ask ``trial`` for one value per dimension and return the model spec.

        Raises :class:`InfeasibleArchitecture` (after the values are recorded on the trial) when
        the point cannot process the images.
        """
        params = {d.name: d.suggest(trial) for d in self.dimensions}
        reason = self.feasibility(params, channels, image_size)
        if reason is not None:
            raise InfeasibleArchitecture(f"{self.spec_string(params)} does not fit the images: {reason}")
        return self.spec(params)


def _convnet_spec(params: Params) -> ConvNetSpec:
    return ConvNetSpec(**params)


def _convnet_check(spec: ModelSpec, channels: int, image_size: tuple[int, int]) -> None:
    spec.check_fits(image_size, channels)  # the exact rule ConvNet itself applies, without building it


def convnet_space() -> SearchSpace:
    """The DC paper's ConvNet family (720 architectures), dimension names = ``ConvNetSpec`` fields."""
    choices = {"depth": DEPTHS, "width": WIDTHS, "activation": ACTIVATIONS, "norm": NORMS, "pool": POOLS}
    return SearchSpace(
        "convnet", tuple(Dimension(n, c) for n, c in choices.items()), to_spec=_convnet_spec, check=_convnet_check
    )


def parse_space_overrides(items: Sequence[str]) -> dict[str, list[Value]]:
    """``["depth=2,3", "norm=batch"]`` -> ``{"depth": [2, 3], "norm": ["batch"]}`` (numbers become ints)."""
    out: dict[str, list[Value]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SearchSpaceError(f"--space expects NAME=V1,V2,..., got {item!r}")
        if key in out:
            raise SearchSpaceError(f"--space sets dimension {key!r} twice")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not values:
            raise SearchSpaceError(f"--space {item!r} leaves dimension {key!r} without choices: the space is empty")
        out[key] = [int(v) if v.lstrip("-").isdigit() else v for v in values]
    return out
