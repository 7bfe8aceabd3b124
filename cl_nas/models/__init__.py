"""The model zoo: a registry of builders and one entry point, :func:`build_model`.

A *model spec* is a plain value: a name (``"convnet"``), a name with parameters in the CLI's
string form (``"convnet:depth=2,norm=batch"``), a mapping (``{"name": "convnet", "depth": 2}``)
or a :class:`ConvNetSpec`. Register a new architecture with :func:`register_model`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cl_nas.models.base import ClassifierNet, feature_dim
from cl_nas.models.convnet import ConvNet, ConvNetSpec, convnet
from cl_nas.models.zoo import MLP, VGG11, AlexNet, LeNet, ResNet18
from cl_nas.utils import coerce_value

ModelSpec = str | Mapping[str, Any] | ConvNetSpec
ModelBuilder = Callable[..., ClassifierNet]

_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str, builder: ModelBuilder) -> None:
    """Register ``builder(channels, num_classes, image_size, **params) -> ClassifierNet``."""
    _REGISTRY[name.lower()] = builder


def available_models() -> list[str]:
    return sorted(_REGISTRY)


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
            params[key.strip()] = coerce_value(value.strip(), keywords=False)
    else:
        raise TypeError(f"a model spec is a name, a mapping or a ConvNetSpec, not {type(spec).__name__}")
    name = name.strip().lower()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return name, params


def model_spec_string(spec: ModelSpec) -> str:
    """The canonical string form of a spec (stable, usable as a CSV cell or cache key)."""
    name, params = parse_model_spec(spec)
    return name + (":" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) if params else "")


def build_model(spec: ModelSpec, channels: int, num_classes: int, image_size: tuple[int, int]) -> ClassifierNet:
    """Build a freshly initialised model; raises ``ValueError`` for an unknown or impossible spec."""
    name, params = parse_model_spec(spec)
    try:
        return _REGISTRY[name](channels, num_classes, tuple(image_size), **params)
    except TypeError as err:
        raise ValueError(f"model {name!r} does not accept parameters {params}: {err}") from err


register_model("convnet", convnet)
register_model("mlp", MLP)
register_model("lenet", LeNet)
register_model("alexnet", AlexNet)
register_model("vgg11", VGG11)
register_model("resnet18", ResNet18)

__all__ = [
    "ClassifierNet",
    "ConvNet",
    "ConvNetSpec",
    "ModelSpec",
    "available_models",
    "build_model",
    "feature_dim",
    "model_spec_string",
    "parse_model_spec",
    "register_model",
]
