"""DSA: differentiable siamese augmentation (Zhao & Bilen, ICML 2021), vectorised.

Every operation is differentiable with respect to the images, so gradients flow through the
augmentation into synthetic pixels. Parameters are sampled per *group*: one group per image
for ordinary training (each image its own draw), or one group per class for siamese use in
condensation (a class's real and synthetic images share one draw within a step, as the paper
prescribes). One call augments the whole batch.

As in the reference ``aug_mode='S'``, each call applies one operation drawn uniformly from the
strategy (``color`` is brightness, saturation and contrast together). Departure, for speed:
when a batch holds several groups (classes) the *operation* is shared by all of them in that
call while the *parameters* differ per group; the reference loops over classes and draws the
operation per class. Each class still sees every operation equally often in expectation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

OPERATIONS = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
DIGITS_STRATEGY = "color_crop_cutout_scale_rotate"  # no flip: a mirrored digit is another symbol


def default_strategy(dataset: str) -> str:
    """The paper's choice: no flip for digit datasets."""
    return DIGITS_STRATEGY if dataset in ("mnist", "usps", "svhn", "digits") else DEFAULT_STRATEGY


def resolve_strategy(spec: str | None, dataset: str) -> str | None:
    """The strategy string a user option names: None for ``None``/"none", the dataset's default for "dsa",
    else ``spec`` itself, validated (an unknown operation raises ``ValueError``)."""
    if spec is None or spec == "none":
        return None
    strategy = default_strategy(dataset) if spec == "dsa" else spec
    parse_strategy(strategy)
    return strategy


def parse_strategy(strategy: str) -> tuple[str, ...]:
    ops = tuple(op for op in strategy.split("_") if op)
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown or not ops:
        raise ValueError(
            f"unknown DSA operation(s) {unknown or strategy!r} in {strategy!r}; allowed: {'_'.join(OPERATIONS)}"
        )
    return ops


@dataclass
class DSAParams:
    """One sampled operation and its per-group parameters (tensors of length ``groups``)."""

    op: str
    values: dict[str, torch.Tensor]

    def expand(self, group_index: torch.Tensor) -> DSAParams:
        """Per-sample parameters from per-group ones: sample ``i`` uses group ``group_index[i]``."""
        return DSAParams(self.op, {k: v[group_index] for k, v in self.values.items()})


class DSA:
    """Differentiable siamese augmentation with the reference ratios."""

    def __init__(
        self,
        strategy: str = DEFAULT_STRATEGY,
        *,
        prob_flip: float = 0.5,
        ratio_scale: float = 1.2,
        ratio_rotate: float = 15.0,
        ratio_crop_pad: float = 0.125,
        ratio_cutout: float = 0.5,
        brightness: float = 1.0,
        saturation: float = 2.0,
        contrast: float = 0.5,
    ):
        self.ops = parse_strategy(strategy)
        self.strategy = strategy
        self.prob_flip, self.ratio_scale, self.ratio_rotate = prob_flip, ratio_scale, ratio_rotate
        self.ratio_crop_pad, self.ratio_cutout = ratio_crop_pad, ratio_cutout
        self.brightness, self.saturation, self.contrast = brightness, saturation, contrast

    def sample(
        self,
        groups: int,
        image_size: tuple[int, int],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> DSAParams:
        """Draw one operation and ``groups`` parameter sets for it."""
        op = self.ops[int(torch.randint(len(self.ops), (1,), generator=generator))]

        def rand() -> torch.Tensor:
            return torch.rand(groups, generator=generator).to(device)

        h, w = image_size
        if op == "color":
            values = {"brightness": rand(), "saturation": rand(), "contrast": rand()}
        elif op == "crop":
            sh, sw = int(h * self.ratio_crop_pad + 0.5), int(w * self.ratio_crop_pad + 0.5)
            values = {
                "dy": torch.randint(-sh, sh + 1, (groups,), generator=generator).to(device),
                "dx": torch.randint(-sw, sw + 1, (groups,), generator=generator).to(device),
            }
        elif op == "cutout":
            ch, cw = int(h * self.ratio_cutout + 0.5), int(w * self.ratio_cutout + 0.5)
            values = {
                "cy": torch.randint(0, h + (1 - ch % 2), (groups,), generator=generator).to(device),
                "cx": torch.randint(0, w + (1 - cw % 2), (groups,), generator=generator).to(device),
            }
        elif op == "flip":
            values = {"flip": rand()}
        elif op == "scale":
            values = {"sx": rand(), "sy": rand()}
        else:  # rotate
            values = {"theta": rand()}
        return DSAParams(op, values)

    def apply(self, x: torch.Tensor, params: DSAParams) -> torch.Tensor:
        """Apply ``params`` (one entry per sample of ``x``) differentiably."""
        return getattr(self, f"_{params.op}")(x, params.values)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment each image with its own draw (the non-siamese mode used to train models)."""
        return self.apply(x, self.sample(x.shape[0], tuple(x.shape[-2:]), x.device, generator))

    def siamese(
        self,
        batches: list[torch.Tensor],
        group_index: list[torch.Tensor],
        groups: int,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """Augment several batches with shared per-group draws (real and synthetic alike)."""
        params = self.sample(groups, tuple(batches[0].shape[-2:]), batches[0].device, generator)
        return [self.apply(x, params.expand(g)) for x, g in zip(batches, group_index, strict=True)]

    # --- operations: x is (N, C, H, W); v holds per-sample parameters -------------------------
    def _color(self, x, v):
        x = x + (v["brightness"].view(-1, 1, 1, 1) - 0.5) * self.brightness
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (v["saturation"].view(-1, 1, 1, 1) * self.saturation) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (v["contrast"].view(-1, 1, 1, 1) + self.contrast) + mean

    def _affine(self, x, theta):
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, align_corners=True)

    def _scale(self, x, v):
        sx = v["sx"] * (self.ratio_scale - 1.0 / self.ratio_scale) + 1.0 / self.ratio_scale
        sy = v["sy"] * (self.ratio_scale - 1.0 / self.ratio_scale) + 1.0 / self.ratio_scale
        zero = torch.zeros_like(sx)
        theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
        return self._affine(x, theta)

    def _rotate(self, x, v):
        angle = (v["theta"] - 0.5) * 2 * self.ratio_rotate / 180 * math.pi
        cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1)
        return self._affine(x, theta)

    def _flip(self, x, v):
        return torch.where(v["flip"].view(-1, 1, 1, 1) < self.prob_flip, x.flip(3), x)

    def _crop(self, x, v):
        # translate by (dy, dx) with zero fill, as the reference's pad-and-gather
        n, c, h, w = x.shape
        padded = F.pad(x, (1, 1, 1, 1))
        rows = (torch.arange(h, device=x.device).view(1, h) + v["dy"].view(n, 1) + 1).clamp(0, h + 1)
        cols = (torch.arange(w, device=x.device).view(1, w) + v["dx"].view(n, 1) + 1).clamp(0, w + 1)
        flat = rows.view(n, h, 1) * (w + 2) + cols.view(n, 1, w)  # (n, h, w) into the padded plane
        gathered = padded.flatten(2).gather(2, flat.view(n, 1, h * w).expand(n, c, h * w))
        return gathered.view(n, c, h, w)

    def _cutout(self, x, v):
        n, _, h, w = x.shape
        ch, cw = int(h * self.ratio_cutout + 0.5), int(w * self.ratio_cutout + 0.5)
        rows = torch.arange(h, device=x.device).view(1, h)
        cols = torch.arange(w, device=x.device).view(1, w)
        top = (v["cy"] - ch // 2).view(n, 1)
        left = (v["cx"] - cw // 2).view(n, 1)
        in_rows = (rows >= top) & (rows < top + ch)
        in_cols = (cols >= left) & (cols < left + cw)
        mask = ~(in_rows.view(n, h, 1) & in_cols.view(n, 1, w))
        return x * mask.unsqueeze(1).to(x.dtype)


DC_STRATEGIES = ("crop_scale_rotate", "crop_noise")


class DCAugment:
    """The DC paper's evaluation augmentation (``augment()`` with ``dc_aug_param`` in the reference ``utils.py``).

    Each image gets one operation drawn uniformly from ``strategy``:

    * ``crop``: translate by an integer offset in ``[-crop, crop - 1]`` pixels per axis, filling with
      the batch's per-channel mean (the reference pads by ``crop`` with the mean and crops at a random
      offset);
    * ``scale``: resize each axis by a factor in ``[1 - scale, 1 + scale]`` about the centre, filling
      with 0 (nearest-neighbour, as the reference's ``F.interpolate`` default);
    * ``rotate``: rotate by an integer angle in ``[-rotate, rotate - 1]`` degrees about the centre,
      filling with the mean of the channel means;
    * ``noise``: add ``noise`` times standard Gaussian noise.

    The reference uses ``crop_scale_rotate`` on MNIST, ``crop_noise`` for batch-norm ConvNets and
    nothing otherwise. Departure: rotation samples bilinearly (the reference uses scipy's cubic spline),
    and the three geometric operations run as one batched affine resampling instead of a loop per image.
    """

    def __init__(
        self,
        strategy: str = "crop_scale_rotate",
        *,
        crop: int = 4,
        scale: float = 0.2,
        rotate: int = 45,
        noise: float = 0.001,
    ):
        ops = tuple(op for op in strategy.split("_") if op)
        unknown = [op for op in ops if op not in ("crop", "scale", "rotate", "noise")]
        if unknown or not ops:
            raise ValueError(f"unknown DC augmentation {strategy!r}; use one of {', '.join(DC_STRATEGIES)}")
        self.strategy, self.ops = strategy, ops
        self.crop, self.scale, self.rotate, self.noise = crop, scale, rotate, noise

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        choice = torch.randint(len(self.ops), (n,), generator=generator)
        channel_mean = x.mean(dim=(0, 2, 3)).view(1, c, 1, 1)
        out = x.clone()
        for index, op in enumerate(self.ops):
            rows = (choice == index).nonzero().flatten().to(x.device)
            if len(rows) == 0:
                continue
            k = len(rows)
            if op == "noise":
                out[rows] = x[rows] + self.noise * torch.randn(k, c, h, w, generator=generator).to(x.device)
                continue
            eye = torch.eye(2).repeat(k, 1, 1)
            shift = torch.zeros(k, 2)
            if op == "crop":  # pixel offsets as normalised coordinates (align_corners=False: 2/size per pixel)
                offsets = torch.randint(-self.crop, self.crop, (k, 2), generator=generator).float()
                shift = offsets * torch.tensor([2.0 / w, 2.0 / h])
                fill = channel_mean.expand(k, c, 1, 1)
            elif op == "scale":  # sample at (p - centre) / factor: an image resized by factor, centred
                size = torch.tensor([float(w), float(h)])
                factor = (torch.rand(k, 2, generator=generator) * 2 * self.scale + 1 - self.scale) * h
                factor = factor.floor() / size  # the reference truncates the new size to whole pixels
                eye = torch.diag_embed(1.0 / factor)
                fill = torch.zeros(k, c, 1, 1)
            else:  # rotate
                degrees = torch.randint(-self.rotate, self.rotate, (k,), generator=generator).float()
                angle = degrees * math.pi / 180
                cos, sin = torch.cos(angle), torch.sin(angle)
                eye = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
                fill = channel_mean.mean().expand(k, c, 1, 1)
            theta = torch.cat([eye, shift.unsqueeze(2)], 2).to(x.device, x.dtype)
            fill = fill.to(x.device, x.dtype)
            grid = F.affine_grid(theta, [k, c, h, w], align_corners=False)
            mode = "bilinear" if op == "rotate" else "nearest"
            out[rows] = F.grid_sample(x[rows] - fill, grid, mode=mode, align_corners=False) + fill
        return out
