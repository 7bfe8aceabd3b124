"""The condenser contract, shared by coreset selection and learned condensation.

Like a scikit-learn estimator, a condenser is configured by keyword settings and acts in one
method: ``condense(train_set, ipc, seed) -> SyntheticSet``. Every class declares its settings
once, in :attr:`Condenser.options` (type, range or choices, default, meaning); that declaration
drives construction, :meth:`Condenser.set_params`, the parsing of command-line text, the class's
signature, and :meth:`Condenser.get_config`, the settings that determine the result and, with
:attr:`Condenser.algorithm_version`, make its cache key. Subclasses implement
:meth:`Condenser._condense`; validation, seeding, timing and metadata live here once.
Classes register under a method name with :func:`register_condenser`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from cl_nas.data import ImageDataset
from cl_nas.models import ConvNetSpec, model_spec_string
from cl_nas.registry import Registry, did_you_mean
from cl_nas.synthetic import SyntheticMeta, SyntheticSet
from cl_nas.utils import check_positive_int, check_seed, resolve_device, seed_everything

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()  # the default of a setting every concrete condenser must give a default


def parse_bool(value: Any) -> bool:
    """A strict boolean: ``True``/``False``, the integers 1/0, or (any case) true/false, yes/no, on/off, 1/0;
    anything else raises ``ValueError``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError(f"expected a boolean ({'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)}), got {value!r}")


@dataclass(frozen=True)
class Option:
    """One declared setting of a condenser.

    ``type`` is the accepted type (or a tuple of types). ``bool``, ``int`` and ``float`` settings also
    take their command-line text; booleans strictly (:func:`parse_bool`), integers never as bools,
    and floats must be finite (an integer is converted to float). ``ge``/``gt``/``le``/``lt`` bound a
    number and ``choices`` lists the allowed values. ``optional`` allows None (its meaning is in
    ``doc``; the text ``"none"`` gives it where strings are not themselves accepted). ``runtime``
    marks a setting that changes how a result is computed but not what it is: it stays out of
    :meth:`Condenser.get_config` and cache keys. ``convert`` checks and canonicalises an accepted
    value (raising ``ValueError``), e.g. a model spec to its canonical string.
    """

    type: type | tuple[type, ...]
    default: Any
    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    runtime: bool = False
    convert: Callable[[Any], Any] | None = None

    def with_default(self, default: Any) -> Option:
        """The same declaration with another default (a subclass's own choice)."""
        return replace(self, default=default)

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def describe(self) -> str:
        """What a valid value is, in words: ``"a positive integer"``, ``"a finite number in [0, 1)"``."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.types == (int,) and self.ge == 1 and self.gt is self.le is self.lt is None:
            text = "a positive integer"
        else:
            names = {bool: "a boolean", int: "an integer", float: "a finite number", str: "a string"}
            text = " or ".join(names.get(t, f"a {t.__name__}") for t in self.types) + self._range()
        return text + (" or None" if self.optional else "")

    def _range(self) -> str:
        low = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        high = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else None
        if low and high:
            return f" in {low}, {high}"
        if low:
            return f" {'>=' if self.ge is not None else '>'} {low[1:]}"
        if high:
            return f" {'<=' if self.le is not None else '<'} {high[:-1]}"
        return ""

    def validate(self, name: str, value: Any) -> Any:
        """``value`` checked (and parsed from text, and canonicalised) for the setting ``name``;
        raises ``ValueError`` naming the setting and what it accepts."""
        if isinstance(value, str) and str not in self.types:
            value = value.strip()
            if self.optional and value.lower() == "none":
                value = None
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"{name} must be {self.describe()}, got None")
        try:
            value = self._typed(value)
        except ValueError:
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}") from None
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return self.convert(value) if self.convert is not None else value

    def _typed(self, value: Any) -> Any:
        """``value`` as the declared type (text parsed), raising ``ValueError`` when it is not one."""
        if bool in self.types:
            return parse_bool(value)
        if int in self.types:
            value = int(value) if isinstance(value, str) else value
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError
        elif float in self.types:
            value = float(value) if isinstance(value, str) else value
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError
            value = float(value)
        elif not isinstance(value, self.types):
            raise ValueError
        bounds = (
            (self.ge, lambda b: value >= b),
            (self.gt, lambda b: value > b),
            (self.le, lambda b: value <= b),
            (self.lt, lambda b: value < b),
        )
        if any(bound is not None and not holds(bound) for bound, holds in bounds):
            raise ValueError
        return value


def check_ipc(train_set: ImageDataset, ipc: int) -> None:
    """Reject an ipc that is not a positive integer or exceeds some class's sample count."""
    check_positive_int("ipc (images per class)", ipc)
    counts = train_set.class_counts()
    if not counts:
        raise ValueError("the training set is empty: nothing to condense")
    smallest = min(counts, key=counts.get)
    if ipc > counts[smallest]:
        raise ValueError(
            f"ipc={ipc} exceeds the {counts[smallest]} samples of class {smallest}; use ipc <= {counts[smallest]}"
        )


def module_fingerprint(module: nn.Module) -> str:
    """A short SHA-256 of a module's class and state: identifies a given network (a teacher, an embedder)."""
    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A JSON-safe stand-in for a config value: a network becomes its fingerprint (two networks of one class
    must not share a cache key), any other object its class name."""
    if isinstance(value, nn.Module):
        return f"sha256:{module_fingerprint(value)}"
    try:
        json.dumps(value)
        return value
    except TypeError:
        return type(value).__name__


def model_option(doc: str) -> Option:
    """A model-spec setting (default ConvNet-3), kept as its canonical string: unknown models fail at once
    and equal specs written differently share a cache key."""
    return Option((str, Mapping, ConvNetSpec), "convnet", doc, convert=model_spec_string)


def folder_option(doc: str) -> Option:
    """An optional folder (None: off), kept as a ``Path``; where a run keeps files changes how it runs, not what
    it produces, so it is a runtime setting, outside cache keys."""
    return Option((str, os.PathLike), None, doc, optional=True, runtime=True, convert=Path)


def bf16_option(doc: str) -> Option:
    """A bf16-autocast switch whose default None means "where the device has native bf16"; condensers
    resolve it on their device (:func:`cl_nas.utils.resolve_bf16`), so the cache key records the value used."""
    return Option(bool, None, f"{doc}; None: on where the device has native bf16", optional=True)


C = TypeVar("C", bound="Condenser")


class Condenser(ABC):
    """Base class: turn a labelled training set into ``ipc`` images per class.

    A subclass declares its own settings (or new defaults of inherited ones, with
    :meth:`Option.with_default`) in a class-level ``options`` mapping; they are merged with those of
    its bases and become keyword-only constructor arguments and attributes of the same names.
    """

    name: ClassVar[str]  # the method name, set by register_condenser
    # part of the cache key: raise it when a fix changes the results, so that no stale cached set is reused
    algorithm_version: ClassVar[int] = 1
    options: ClassVar[Mapping[str, Option]] = {
        "device": Option(
            (str, torch.device),
            "auto",
            "where to compute: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda', 'cuda:1', ...",
            runtime=True,
            convert=resolve_device,
        ),
        "progress": Option(bool, False, "show progress bars", runtime=True),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, Option] = {}
        for base in reversed(cls.__mro__):
            merged.update(vars(base).get("options", {}))
        cls.options = MappingProxyType(merged)
        cls.__signature__ = inspect.Signature(  # what help() and IDEs show: the declared settings
            [
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty if option.default is REQUIRED else option.default,
                )
                for name, option in merged.items()
            ]
        )

    def __init__(self, **settings: Any):
        self._settings: dict[str, Any] = {}
        missing = [name for name, option in self.options.items() if option.default is REQUIRED and name not in settings]
        if missing:
            raise TypeError(f"{type(self).__name__} needs a value for {', '.join(missing)}")
        self.set_params(**{name: option.default for name, option in self.options.items()} | settings)

    def set_params(self: C, **changes: Any) -> C:
        """Change settings, validated as at construction (together with the unchanged ones); returns self.

        A value may be given as command-line text (``"200"``, ``"yes"``, ``"none"``), parsed by its
        declared type. An unknown name or an invalid value raises ``ValueError`` and changes nothing.
        """
        for key in changes:
            if key not in self.options:
                raise ValueError(
                    f"condenser {getattr(self, 'name', type(self).__name__)!r} does not accept option {key!r}"
                    f"{did_you_mean(key, self.options) or ';'} its options: {', '.join(sorted(self.options))}"
                )
        settings = {**self._settings, **{key: self.options[key].validate(key, v) for key, v in changes.items()}}
        resolved = self._resolve(dict(settings))
        self._settings = settings
        for key, value in resolved.items():
            setattr(self, key, value)
        return self

    def _resolve(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The attribute values of ``settings`` (each already valid on its own): subclasses check rules that
        tie settings together and resolve values that depend on others (``bf16=None`` on the device)."""
        return settings

    def get_config(self) -> dict[str, Any]:
        """The resolved settings that determine the result, as plain values (sorted by name).

        Runtime settings are left out; a network becomes its fingerprint, so two networks of one class
        never share a cache key."""
        return {
            name: _plain(getattr(self, name)) for name, option in sorted(self.options.items()) if not option.runtime
        }

    def cache_key(self, train_set: ImageDataset, ipc: int, seed: int) -> str:
        """Content address of the result: (source-data hash, method, algorithm version, config, ipc, seed)."""
        blob = json.dumps(
            [train_set.content_hash(), self.name, self.algorithm_version, self.get_config(), ipc, seed], sort_keys=True
        )
        return f"{self.name}-ipc{ipc}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def validate(self, train_set: ImageDataset, ipc: int) -> None:
        """Checks before any computation; subclasses extend with method-specific ones."""
        check_ipc(train_set, ipc)

    def condense(self, train_set: ImageDataset, ipc: int, seed: int = 0) -> SyntheticSet:
        """Produce ``ipc`` images for every class present in ``train_set``."""
        check_seed("seed", seed)
        self.validate(train_set, ipc)
        generator = seed_everything(seed)
        start = time.perf_counter()
        images, labels = self._condense(train_set, ipc, seed, generator)
        meta = SyntheticMeta.from_info(
            train_set.info,
            method=self.name,
            ipc=ipc,
            seed=seed,
            config=self.get_config(),
            source_hash=train_set.content_hash(),
            wall_seconds=self.condense_seconds(start),
        )
        return self.finish(SyntheticSet(images.detach().float().cpu().contiguous(), labels.cpu().long(), meta))

    def condense_seconds(self, start: float) -> float:
        """The wall time of the condensation that just ended, recorded as ``wall_seconds``: here the time since
        ``start`` (:func:`time.perf_counter` when :meth:`condense` began); a resumable condenser adds the time
        its earlier, interrupted processes spent."""
        return time.perf_counter() - start

    def finish(self, result: SyntheticSet) -> SyntheticSet:
        """The set :meth:`condense` returns, made from the condensed images; APM adds its teacher's logits."""
        return result

    @abstractmethod
    def _condense(
        self, train_set: ImageDataset, ipc: int, seed: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(images, labels)``; inputs are already validated and RNGs seeded."""


CONDENSERS: Registry[type[Condenser]] = Registry("condensation method")


def register_condenser(name: str) -> Callable[[type[C]], type[C]]:
    """Class decorator: register a :class:`Condenser` subclass as method ``name`` (also its ``name``
    attribute); a name already taken raises ``ValueError``."""

    def add(cls: type[C]) -> type[C]:
        cls.name = name
        return CONDENSERS.register(name)(cls)

    return add
