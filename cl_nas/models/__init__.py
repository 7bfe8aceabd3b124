"""The model zoo: a registry of builders and one entry point, :func:`build_model`.

A *model spec* is a plain value: a name (``"convnet"``), a name with parameters in the CLI's
string form (``"convnet:depth=2,norm=batch"``), a mapping (``{"name": "convnet", "depth": 2}``)
or a :class:`ConvNetSpec`. Register a new architecture with the :func:`register_model` decorator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cl_nas.models.base import ClassifierNet, feature_dim
from cl_nas.models.convnet import ConvNet, ConvNetSpec
from cl_nas.models.registry import MODELS, ModelBuilder, register_model
from cl_nas.models.zoo import MLP, VGG11, AlexNet, LeNet, ResNet18
from cl_nas.utils import coerce_value

ModelSpec = str | Mapping[str, Any] | ConvNetSpec


def available_models() -> list[str]:
    """The registered model names, sorted."""
    return MODELS.names()


def parse_model_spec(spec: ModelSpec) -> tuple[str, dict[str, Any]]:
    """Normalise any accepted spec form to ``(name, params)``; unknown names raise ``ValueError``."""
    if isinstance(spec, ConvNetSpec):
        name, params = "convnet", spec.as_dict()
    elif isinstance(spec, Mapping):
        params = dict(spec)
        name = str(params.pop("name", "convnet"))
    elif isinstance(spec, str):
        name, _, rest = spec.partition(":")
        params = {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"model spec {spec!r}: expected key=value, got {item!r}")
            params[key.strip()] = coerce_value(value.strip())
    else:
        raise TypeError(f"a model spec is a name, a mapping or a ConvNetSpec, not {type(spec).__name__}")
    name = name.strip().lower()
    MODELS.get(name)  # an unknown name raises here, naming the available ones
    return name, params


def model_spec_string(spec: ModelSpec) -> str:
    """The canonical string form of a spec (stable, usable as a CSV cell or cache key)."""
    name, params = parse_model_spec(spec)
    return name + (":" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) if params else "")


def build_model(spec: ModelSpec, channels: int, num_classes: int, image_size: tuple[int, int]) -> ClassifierNet:
    """Build a freshly initialised model; raises ``ValueError`` for an unknown or impossible spec."""
    name, params = parse_model_spec(spec)
    if not (isinstance(image_size, (tuple, list)) and len(image_size) == 2):
        raise ValueError(f"image_size is (height, width), e.g. (28, 28), not {image_size!r}")
    try:
        return MODELS.build(name, channels, num_classes, tuple(image_size), **params)
    except TypeError as err:
        raise ValueError(f"model {name!r} does not accept parameters {params}: {err}") from err


__all__ = [
    "MLP",
    "MODELS",
    "VGG11",
    "AlexNet",
    "ClassifierNet",
    "ConvNet",
    "ConvNetSpec",
    "LeNet",
    "ModelBuilder",
    "ModelSpec",
    "ResNet18",
    "available_models",
    "build_model",
    "feature_dim",
    "model_spec_string",
    "parse_model_spec",
    "register_model",
]
