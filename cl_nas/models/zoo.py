"""The DC paper's cross-architecture models: MLP, LeNet, AlexNet, VGG11 and ResNet18.

They follow the DC reference code's layer choices; instead of hard-coded flatten sizes each
model measures its feature size once, so any image size the layers can handle works, and a
size they cannot handle fails with a clear error at build time.
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from cl_nas.models.base import ClassifierNet, feature_dim
from cl_nas.models.registry import register_model


def _fit_head(
    model: ClassifierNet, channels: int, num_classes: int, image_size: tuple[int, int], hidden: tuple[int, ...] = ()
) -> None:
    try:
        dim = feature_dim(model.features, channels, image_size)
    except RuntimeError as err:
        raise ValueError(
            f"{type(model).__name__} cannot process {image_size[0]}x{image_size[1]} images "
            f"({err}); use the ConvNet family or larger images"
        ) from err
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(dim, width), nn.ReLU(inplace=True)]
        dim = width
    model.classifier = nn.Sequential(*layers, nn.Linear(dim, num_classes))


@register_model("mlp")
class MLP(ClassifierNet):
    """Three fully connected layers (128, 128 hidden units); ``embed`` is the last hidden layer."""

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int], width: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * image_size[0] * image_size[1], width),
            nn.ReLU(inplace=True),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(width, num_classes)


@register_model("lenet")
class LeNet(ClassifierNet):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2 if channels == 1 else 0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        _fit_head(self, channels, num_classes, image_size, hidden=(120, 84))

    def embed(self, x):  # penultimate = the 84-unit layer, as in LeNet-5
        h = super().embed(x)
        return self.classifier[:-1](h)

    def forward(self, x):
        return self.classifier[-1](self.embed(x))


@register_model("alexnet")
class AlexNet(ClassifierNet):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 5, padding=4 if channels == 1 else 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(128, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(192, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 192, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(192, 192, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        _fit_head(self, channels, num_classes, image_size)


_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


@register_model("vgg11")
class VGG11(ClassifierNet):
    """VGG11 with instance norm, as the DC code's default ``VGG11``."""

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = channels
        size = min(image_size) + (6 if channels == 1 else 2)  # DC pads 28x28 to 32x32
        for i, v in enumerate(_VGG11):
            if v == "M":
                if size >= 2:  # small images keep their last pixels rather than vanish
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            pad = 3 if (i == 0 and channels == 1) else 1
            layers += [
                nn.Conv2d(in_channels, v, 3, padding=pad),
                nn.GroupNorm(v, v, affine=True),
                nn.ReLU(inplace=True),
            ]
            in_channels = v
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(planes, planes, affine=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(planes, planes, affine=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.GroupNorm(planes, planes, affine=True),
            )

    def forward(self, x):
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@register_model("resnet18")
class ResNet18(ClassifierNet):
    """ResNet18 with instance norm and a 3x3 stem, as the DC code's default ``ResNet18``."""

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False),
            nn.GroupNorm(64, 64, affine=True),
            nn.ReLU(inplace=True),
        ]
        in_planes = 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1)]
            in_planes = planes
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)
