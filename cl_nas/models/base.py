"""The contract every model in the zoo keeps."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierNet(nn.Module):
    """An image classifier split into a feature extractor and a linear head.

    ``embed(x)`` returns the penultimate features (what DM matches and herding selects on);
    ``forward(x)`` returns logits. Subclasses set ``self.features`` (images -> feature map or
    vector) and ``self.classifier`` (flattened features -> logits).
    """

    features: nn.Module
    classifier: nn.Module

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def feature_dim(features: nn.Module, channels: int, image_size: tuple[int, int]) -> int:
    """Flattened size of ``features`` applied to one image, found by running it once."""
    was_training = features.training
    features.eval()  # a batch-norm layer must not see (or record stats of) the probe
    with torch.no_grad():
        out = features(torch.zeros(1, channels, *image_size))
    features.train(was_training)
    return out[0].numel()
