"""The proxy registry and the probe every proxy reads: one network, one batch, shared passes.

A proxy is a function ``probe -> float`` registered with ``@PROXIES.register(name)``; higher means
"predicted better" for every proxy. Proxies that need the same pass over the network (the loss
gradient for snip, grad_norm, fisher and grasp; the input Jacobian for jacob_cov and nwot) read it
from the probe, which computes it once on its own copy of the network. Each pass runs on a fresh
deep copy in training mode, as the zero-cost proxies code gives every measure its own copy of the
same initial weights (Abdelfattah et al., 2021), so sharing passes changes no score. That is the
reference path; the fast path (fast.py) fills the same cache from one forward on the network itself.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ShapeError
from archsearch.registry import Registry

PROXIES: Registry[Callable[["Probe"], float]] = Registry("proxy")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def weight_layers(net: nn.Module) -> list[nn.Module]:
    """The layers whose weights the zero-cost proxies score: every Conv2d and Linear, in module order."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def remove_batchnorm(net: nn.Module) -> nn.Module:
    """Replace every BatchNorm by the identity, in place (the zero-cost code's ``bn=False`` copy).

    A submodule whose class sets ``keeps_batchnorm_in_bn_free_copy = True`` keeps its BatchNorms: the
    zero-cost code builds that copy with the model's own ``get_prunable_copy`` where the model has one, and
    its NAS-Bench-201 model's copy keeps the BatchNorms of the reduction blocks (``nb201_network.ResNetBasicBlock``).
    """
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        elif not getattr(child, "keeps_batchnorm_in_bn_free_copy", False):
            remove_batchnorm(child)
    return net


class Probe:
    """A network at its initial weights and one batch; caches the passes shared by several proxies."""

    def __init__(self, network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                 loss_fn: LossFn | None = None):
        if inputs.dim() < 2 or targets.shape[0] != inputs.shape[0]:
            raise ShapeError(
                f"a proxy needs a batch (inputs of shape (B, ...), targets of shape (B,)), got inputs "
                f"{tuple(inputs.shape)} and targets {tuple(targets.shape)}"
            )
        self.network = network
        self.inputs = inputs
        self.targets = targets
        self.loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
        self._cache: dict[str, object] = {}

    def copy(self) -> nn.Module:
        """A private copy of the network at its initial weights, in training mode."""
        return copy.deepcopy(self.network).train()

    def cached(self, key: str, compute: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]
