"""Coreset baselines: random, herding and k-center greedy selection of real images.

Every claim of a learned condenser is judged against these, at the same images per class.
Herding and k-center select on the ``embed`` features of a model: by default a ConvNet
trained briefly on the real training data (the DC paper's baseline setting); pass
``embedder`` to select with another model (the CL buffer passes the current learner).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cl_nas.condense.base import Condenser, Option, bf16_option, model_option, register_condenser
from cl_nas.data import ImageDataset
from cl_nas.models import build_model
from cl_nas.train import TrainConfig, predict_logits, train_model
from cl_nas.utils import resolve_bf16


@register_condenser("random")
class RandomCoreset(Condenser):
    """``ipc`` real images drawn uniformly at random from each class."""

    def _condense(self, train_set, ipc, seed, generator):
        chosen = []
        for label in train_set.classes:
            idx = train_set.class_indices(label)
            chosen.append(idx[torch.randperm(len(idx), generator=generator)[:ipc]])
        idx = torch.cat(chosen)
        return train_set.images[idx].clone(), train_set.labels[idx].clone()


class _FeatureCoreset(Condenser):
    """Shared machinery: embed every training image, then select per class on the features."""

    options = {
        "model": model_option("the feature network (a model spec, see cl_nas.models)"),
        "train_epochs": Option(int, 1, "epochs the feature network trains on real data (0: random features)", ge=0),
        "train_samples": Option(int, 10000, "real images it trains on, drawn at random", ge=1),
        "embedder": Option(nn.Module, None, "a network to embed with instead (used as given)", optional=True),
        "bf16": bf16_option("bf16 autocast while training the feature network and embedding"),
    }

    def _resolve(self, settings: dict[str, Any]) -> dict[str, Any]:
        settings = super()._resolve(settings)
        settings["bf16"] = resolve_bf16(settings["bf16"], settings["device"])  # resolved: keys record it
        return settings

    def _feature_model(self, train_set: ImageDataset, generator: torch.Generator) -> nn.Module:
        if self.embedder is not None:
            return self.embedder
        info = train_set.info
        net = build_model(self.model, info.channels, info.num_classes, info.image_size)
        if self.train_epochs:
            idx = torch.randperm(len(train_set), generator=generator)[: self.train_samples]
            config = TrainConfig(epochs=self.train_epochs, bf16=self.bf16)
            train_model(
                net,
                train_set.images[idx],
                train_set.labels[idx],
                config,
                device=self.device,
                generator=generator,
                progress=self.progress,
            )
        return net

    def _embed(self, net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        features = predict_logits(net, images, features=True, device=self.device, bf16=self.bf16)
        return F.normalize(features, dim=1)  # unit norm, as iCaRL's herding

    def _condense(self, train_set, ipc, seed, generator):
        net = self._feature_model(train_set, generator)
        chosen = []
        for label in train_set.classes:
            idx = train_set.class_indices(label)
            picks = self._select(self._embed(net, train_set.images[idx]), ipc)
            chosen.append(idx[picks.cpu()])
        idx = torch.cat(chosen)
        return train_set.images[idx].clone(), train_set.labels[idx].clone()

    def _select(self, features: torch.Tensor, k: int) -> torch.Tensor:
        raise NotImplementedError


@register_condenser("herding")
class HerdingCoreset(_FeatureCoreset):
    """Greedy herding (Welling 2009): each pick keeps the selected mean closest to the class mean."""

    def _select(self, features, k):
        target = features.mean(0)
        running = torch.zeros_like(target)
        available = torch.ones(features.shape[0], dtype=torch.bool, device=features.device)
        picks = []
        for step in range(1, k + 1):
            dist = ((target - (running + features) / step) ** 2).sum(1)
            dist[~available] = float("inf")
            i = int(dist.argmin())
            picks.append(i)
            available[i] = False
            running += features[i]
        return torch.tensor(picks)


@register_condenser("kcenter")
class KCenterCoreset(_FeatureCoreset):
    """k-center greedy (Sener & Savarese 2018): start at the class mean, add the farthest point."""

    def _select(self, features, k):
        first = int(((features - features.mean(0)) ** 2).sum(1).argmin())
        picks = [first]
        min_dist = ((features - features[first]) ** 2).sum(1)
        for _ in range(k - 1):
            i = int(min_dist.argmax())
            picks.append(i)
            min_dist = torch.minimum(min_dist, ((features - features[i]) ** 2).sum(1))
        return torch.tensor(picks)
