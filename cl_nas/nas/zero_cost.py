"""The training-free control: NASWOT (Mellor et al., ICML 2021), a score of the untrained network.

For a batch of ``N`` training images, every activation unit of the network splits the batch into
the images that switch it on (input > 0) and those that do not. ``K[i, j]`` counts the units on
which images ``i`` and ``j`` agree, over every activation layer (ReLU, LeakyReLU and sigmoid, whose
"on" side is also input > 0); the score is ``log |det K|``: a network that already tells the images
apart at initialisation, with the binary codes of different images far apart, scores higher. No
gradient and no label is used.

``naswot`` is registered as a proxy (:data:`~cl_nas.nas.proxy.PROXIES`): its images are the first
``ipc x classes`` of a seeded pass over the training split (the candidates' budget of the other
proxies, one forward pass each), and the network is initialised from the study's seed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cl_nas.nas.proxy import PROXIES, SubsetProxy

NASWOT = "naswot"
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid)


@torch.no_grad()
def naswot_score(net: nn.Module, images: torch.Tensor) -> float:
    """``log |det K|`` of the activation-pattern kernel of ``net`` on ``images`` (see the module docstring);
    ``-inf`` when two images share every pattern. The network runs once, in training mode, as initialised."""
    n = images.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=images.device)

    def add_codes(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        # an in-place ReLU has overwritten its input with the output: the same sign pattern (x > 0 iff relu(x) > 0)
        codes = (inputs[0] > 0).flatten(1).float()
        # per-layer counts stay below 2**24, exact in float32; the sum over layers is float64
        kernel.add_((codes @ codes.T + (1 - codes) @ (1 - codes).T).double())

    hooks = [m.register_forward_hook(add_codes) for m in net.modules() if isinstance(m, ACTIVATIONS)]
    if not hooks:
        raise ValueError(f"NASWOT needs ReLU, LeakyReLU or sigmoid activations; {type(net).__name__} has none")
    try:
        net.train()(images)
    finally:
        for hook in hooks:
            hook.remove()
    logdet = torch.linalg.slogdet(kernel).logabsdet.item()
    return logdet if math.isfinite(logdet) else -math.inf


@PROXIES.register(NASWOT)
class NASWOTProxy(SubsetProxy):
    """The NASWOT score on the first ``ipc x classes`` images of a seeded pass over the training split."""

    fixed_epochs = 0
    score_at_init = staticmethod(naswot_score)
