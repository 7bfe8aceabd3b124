"""DC: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021), and DSA.

One iteration (an "outer loop" in the paper's terms, ``iterations`` of them) draws a fresh network
and alternates ``outer_loop`` times between

* a synthetic update: for every class, the gradient of the cross-entropy on a real batch and on
  the class's synthetic images are compared layer by layer (:func:`gradient_distance`) and the
  images descend the summed distance;
* a network update: ``inner_loop`` epochs of SGD (lr ``lr_net``) on the current synthetic set,
  through :func:`cl_nas.train.train_model`.

With DSA (Zhao & Bilen, ICML 2021; registered as ``"dsa"``) each class's real and synthetic batch
share one augmentation draw in the matching step, and the network updates see augmented images.
Plain ``"dc"`` uses no augmentation, as the DC paper.

Reference behaviour kept: the ``get_loops`` table (outer, inner) = (1, 1), (10, 50), (20, 25),
(30, 20), (40, 15), (50, 10) for ipc 1, 10, ..., 50; batch-norm networks get the reference's trick
(statistics from a mixed real batch of 16 per class, then frozen) so per-class passes stay exact.

Departures: other ipc values do not exit but interpolate the table linearly (ipc > 50 uses
(50, 10)); ``init`` defaults to ``"real"`` like DM (the reference DC defaults to noise and notes
both reach similar accuracy; real images start closer, which matters for the short runs a CPU
allows); the network updates use ``train_model``'s SGD, a fresh momentum-free optimizer per update
(the same updates as the reference's persistent momentum-free one). Speed: the real side's
per-class gradients run in cache-sized chunks under bf16 autocast (and ``torch.compile`` when on),
the synthetic side in float32 (see :meth:`DCCondenser.match_step`). A loop over classes computes
them: vectorising across classes with ``torch.func.vmap(grad(...))`` measured 3-5x *slower* on a
CPU (its batching rule for convolution weight-gradients), and ``is_grads_batched`` would repeat
the backward of the whole batch once per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from cl_nas.condense.base import Option, register_condenser
from cl_nas.condense.iterative import (
    CondenseRun,
    IterativeCondenser,
    NetForward,
    group_slices,
    logits,
)
from cl_nas.train import TrainConfig, autocast, chunks, train_model

_REFERENCE_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
_BN_SAMPLES_PER_CLASS = 16  # the reference's BNSizePC


def dc_loops(ipc: int) -> tuple[int, int]:
    """(outer_loop, inner_loop) for ``ipc``: the reference table, linearly interpolated between its rows."""
    if ipc in _REFERENCE_LOOPS:
        return _REFERENCE_LOOPS[ipc]
    if ipc > 50:
        return _REFERENCE_LOOPS[50]
    lo = max(k for k in _REFERENCE_LOOPS if k < ipc)
    hi = min(k for k in _REFERENCE_LOOPS if k > ipc)
    w = (ipc - lo) / (hi - lo)
    (o1, i1), (o2, i2) = _REFERENCE_LOOPS[lo], _REFERENCE_LOOPS[hi]
    return round(o1 + w * (o2 - o1)), max(1, round(i1 + w * (i2 - i1)))


def gradient_distance(syn: Sequence[torch.Tensor], real: Sequence[torch.Tensor]) -> torch.Tensor:
    """DC's matching distance, summed over classes and layers.

    Each tensor is one parameter's gradient with a leading class dimension: ``(classes, *shape)``.
    A layer contributes ``sum over output units of 1 - cos(g_syn[unit], g_real[unit])``, a unit's
    gradient being its slice over the remaining dimensions (conv ``(out, in*k*k)``, linear
    ``(out, in)``); 1-D parameters (biases, normalisation affine) contribute 0, as the reference's
    ``distance_wb``, with its 1e-6 in the denominator.
    """
    total = syn[0].new_zeros(())
    for gs, gr in zip(syn, real, strict=True):
        if gs.dim() <= 2:  # (classes, n): a bias or norm parameter
            continue
        gs, gr = gs.flatten(2), gr.flatten(2)
        cos = (gs * gr).sum(-1) / (gs.norm(dim=-1) * gr.norm(dim=-1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


@register_condenser("dc")
class DCCondenser(IterativeCondenser):
    """Gradient matching without augmentation. Defaults are the reference's (1000 iterations)."""

    options = {
        "iterations": IterativeCondenser.options["iterations"].with_default(1000),
        "lr_img": IterativeCondenser.options["lr_img"].with_default(0.1),
        "lr_net": Option(float, 0.01, "SGD learning rate of the network updates", gt=0),
        "batch_real": Option(int, 256, "real images per class in each matching step", ge=1),
        "outer_loop": Option(int, None, "matching steps per iteration; None: the reference table", ge=1, optional=True),
        "inner_loop": Option(int, None, "epochs per network update; None: the reference table", ge=1, optional=True),
        "dsa_strategy": IterativeCondenser.options["dsa_strategy"].with_default("none"),
        "checkpoint_every": IterativeCondenser.options["checkpoint_every"].with_default(10),
    }

    def loops(self, ipc: int) -> tuple[int, int]:
        """(outer_loop, inner_loop) for this ipc: the explicit settings, else :func:`dc_loops`."""
        outer, inner = dc_loops(ipc)
        return self.outer_loop or outer, self.inner_loop or inner

    def step(self, run: CondenseRun, iteration: int) -> float:
        """One outer loop; returns the class-summed matching distance averaged over its updates."""
        net = self.fresh_model(run.info)
        outer, inner = self.loops(run.ipc)
        total = 0.0
        for ol in range(outer):
            total += self.match_step(net, run)
            if ol < outer - 1:  # the reference skips the network update after the last matching step
                self.train_network(net, run, inner)
        return total / outer

    def match_step(self, net: nn.Module, run: CondenseRun) -> float:
        """One synthetic update: per-class gradient matching on a fresh real batch; returns the distance."""
        params = [p for p in net.parameters() if p.requires_grad]
        self._freeze_batch_norm(net, run)
        real, real_labels, real_groups = run.real.sample(self.batch_real, run.generator)
        params_dsa = run.dsa_params()
        real = run.augment(real, real_groups, params_dsa)
        syn = run.augment(run.images, run.groups, params_dsa)
        real_slices = group_slices(real_groups, run.num_groups)
        syn_slices = group_slices(run.groups, run.num_groups)
        g_real = self._class_gradients(net, params, real, real_labels, real_slices, run.chunk, self.forward_fn())
        # the synthetic side is differentiated twice: eager (torch.compile cannot) and float32 (under
        # bf16 the image gradient's cosine to the float32 one drops to ~0.975, vs 0.9997 for bf16 on
        # the real side), at little cost: 100 synthetic images against 2560 real ones at ipc 10
        g_syn = self._class_gradients(net, params, syn, run.labels, syn_slices, None, logits, create_graph=True)
        loss = gradient_distance(g_syn, g_real)
        run.update(loss)
        return loss.item()

    def train_network(self, net: nn.Module, run: CondenseRun, epochs: int) -> None:
        """The network update: ``epochs`` of momentum-free SGD on the current synthetic set (DSA if on)."""
        config = TrainConfig(
            epochs=epochs, lr=self.lr_net, momentum=0.0, weight_decay=0.0, decay_at=1.0, bf16=self.bf16
        )
        augment = run.augment_batch if run.dsa is not None else None
        train_model(
            self.for_training(net),
            run.images.detach(),
            run.labels,
            config,
            augment=augment,
            device=self.device,
            generator=run.generator,
        )

    def _class_gradients(
        self,
        net: nn.Module,
        params: list[torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        slices: list[slice],
        chunk: int | None,
        forward: NetForward,
        create_graph: bool = False,
    ) -> list[torch.Tensor]:
        """Per-class gradients of the mean cross-entropy: one ``(classes, *shape)`` tensor per parameter.

        ``create_graph`` keeps them differentiable (the synthetic side), and computes in float32.
        """
        per_class = []
        for sl in slices:
            xc, yc = x[sl], y[sl]
            total: list[torch.Tensor] | None = None
            for part in chunks(len(xc), chunk):
                with autocast(self.device, self.bf16 and not create_graph):
                    loss = F.cross_entropy(forward(net, xc[part]), yc[part], reduction="sum") / len(xc)
                grads = torch.autograd.grad(loss, params, create_graph=create_graph)
                total = list(grads) if total is None else [t + g for t, g in zip(total, grads, strict=True)]
            per_class.append(total)
        return [torch.stack(layer) for layer in zip(*per_class, strict=True)]

    def _freeze_batch_norm(self, net: nn.Module, run: CondenseRun) -> None:
        """Batch-norm networks: statistics from a mixed real batch, then eval mode (the reference's trick)."""
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        net.train()
        with torch.no_grad(), self.autocast():
            net(run.real.sample(_BN_SAMPLES_PER_CLASS, run.generator)[0])
        for m in norms:
            m.eval()


@register_condenser("dsa")
class DSACondenser(DCCondenser):
    """DC with differentiable siamese augmentation (Zhao & Bilen, ICML 2021): the dataset's DSA strategy."""

    options = {"dsa_strategy": DCCondenser.options["dsa_strategy"].with_default(None)}
