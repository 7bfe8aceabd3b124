"""The ConvNet family of the DC paper (Zhao, Mopuri & Bilen, ICLR 2021), also the NAS space.

Each block is conv3x3 -> norm -> activation -> pool. Every convolution pads by 1 except, as in the
reference code (``networks.py`` of DC/DSA/DM), the first one on 28x28 single-channel input, which pads
by 3: MNIST-sized images then flow through the net as 32x32 ones, and a ConvNet-3 ends with 4x4 feature
maps (2048 features at width 128) as in every MNIST and Fashion-MNIST figure of those papers.
``stem_padding=1`` keeps the plain padding-1 variant (3x3 maps, 1152 features on 28x28).

``ConvNetSpec`` is a plain, hashable, JSON-serialisable value so that Optuna trials, CSV rows and
cache keys can hold it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from cl_nas.models.base import ClassifierNet
from cl_nas.models.registry import register_model

DEPTHS = (1, 2, 3, 4)
WIDTHS = (32, 64, 128, 256)
ACTIVATIONS = ("relu", "sigmoid", "leakyrelu")
NORMS = ("none", "batch", "layer", "instance", "group")
POOLS = ("none", "avg", "max")


@dataclass(frozen=True)
class ConvNetSpec:
    """One architecture of the ConvNet family. The defaults are the DC paper's ConvNet-3."""

    depth: int = 3
    width: int = 128
    activation: str = "relu"
    norm: str = "instance"
    pool: str = "avg"
    # padding of the first convolution; None: the reference rule (3 on 28x28 one-channel input, else 1)
    stem_padding: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"ConvNet depth must be a positive integer, got {self.depth!r}")
        if not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"ConvNet width must be a positive integer, got {self.width!r}")
        if self.stem_padding is not None and (not isinstance(self.stem_padding, int) or self.stem_padding < 0):
            raise ValueError(f"ConvNet stem_padding must be None or an integer >= 0, got {self.stem_padding!r}")
        for field, value, allowed in (
            ("activation", self.activation, ACTIVATIONS),
            ("norm", self.norm, NORMS),
            ("pool", self.pool, POOLS),
        ):
            if value not in allowed:
                raise ValueError(f"ConvNet {field} {value!r} is unknown; choose one of {allowed}")

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict; ``stem_padding`` only when set, so the default spec's string form
        (``convnet:activation=relu,depth=3,...``) names the reference net without an extra key."""
        fields = asdict(self)
        if self.stem_padding is None:
            del fields["stem_padding"]
        return fields

    def first_padding(self, channels: int, image_size: tuple[int, int]) -> int:
        """Padding of the first convolution for this input (see the module docstring)."""
        if self.stem_padding is not None:
            return self.stem_padding
        return 3 if channels == 1 and tuple(image_size) == (28, 28) else 1

    def output_size(self, image_size: tuple[int, int], channels: int = 3) -> tuple[int, int]:
        """Spatial size after all blocks: the first convolution grows each side by
        ``2 * (padding - 1)``, each pooling layer halves, rounding down."""
        grow = 2 * (self.first_padding(channels, image_size) - 1)
        h, w = image_size[0] + grow, image_size[1] + grow
        if self.pool != "none":
            h, w = h >> self.depth, w >> self.depth
        return h, w

    def check_fits(self, image_size: tuple[int, int], channels: int = 3) -> None:
        """Raise a clear error if pooling shrinks ``image_size`` to nothing."""
        h, w = self.output_size(image_size, channels)
        if h < 1 or w < 1:
            max_depth = min(image_size).bit_length() - 1
            raise ValueError(
                f"ConvNet depth {self.depth} with pool={self.pool!r} shrinks "
                f"{image_size[0]}x{image_size[1]} images to {h}x{w}; use depth <= {max_depth} "
                "or pool='none'"
            )


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid(), "leakyrelu": nn.LeakyReLU(0.01)}[name]


def _norm(name: str, channels: int, size: tuple[int, int]) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return nn.LayerNorm([channels, *size])
    if name == "instance":  # the DC code's instance norm: GroupNorm with one group per channel
        return nn.GroupNorm(channels, channels, affine=True)
    if name == "group":
        return nn.GroupNorm(4, channels, affine=True)
    return nn.Identity()


class ConvNet(ClassifierNet):
    def __init__(self, spec: ConvNetSpec, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        spec.check_fits(image_size, channels)
        self.spec = spec
        layers: list[nn.Module] = []
        padding = spec.first_padding(channels, image_size)
        grow = 2 * (padding - 1)
        in_channels, size = channels, (image_size[0] + grow, image_size[1] + grow)
        for _ in range(spec.depth):
            layers.append(nn.Conv2d(in_channels, spec.width, kernel_size=3, padding=padding))
            padding = 1
            layers.append(_norm(spec.norm, spec.width, size))
            layers.append(_activation(spec.activation))
            if spec.pool != "none":
                layers.append(nn.AvgPool2d(2) if spec.pool == "avg" else nn.MaxPool2d(2))
                size = (size[0] // 2, size[1] // 2)
            in_channels = spec.width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(spec.width * size[0] * size[1], num_classes)


@register_model("convnet")  # the ConvNet family, also the NAS search space
def convnet(channels: int, num_classes: int, image_size: tuple[int, int], **params: Any) -> ConvNet:
    return ConvNet(ConvNetSpec(**params), channels, num_classes, image_size)


__all__ = ["ConvNet", "ConvNetSpec", "convnet"]
