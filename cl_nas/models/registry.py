"""The model registry: architectures by name, each a builder ``(channels, num_classes, image_size, **params)``."""

from __future__ import annotations

from collections.abc import Callable

from cl_nas.models.base import ClassifierNet
from cl_nas.registry import Registry

ModelBuilder = Callable[..., ClassifierNet]

MODELS: Registry[ModelBuilder] = Registry("model")


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register a model class or builder function as ``name``; a name already taken raises."""
    return MODELS.register(name)
