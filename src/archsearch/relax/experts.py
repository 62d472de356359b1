"""XNAS' relaxation (Nayman et al., NeurIPS 2019): the op weights of an edge are a forecaster's
prediction p = softmax(alpha) over the experts still alive, and each expert's loss is the
derivative of the validation loss with respect to its own weight, dL/dp_i.

So the forward pass computes p (removed experts weigh exactly 0, the others are renormalised),
and the backward pass hands dL/dp to alpha unchanged (p + alpha - stop_grad(alpha) has value p and
Jacobian identity): the architecture optimizer (ExpGrad) then sees the experts' linearised losses,
which is what its regret bound and wipeout rule are about. The alive masks are read from the
optimizer, which owns them (``attach``); the supernet reads them through ``alive`` and stops
computing removed ops.
"""

from __future__ import annotations

import torch

from archsearch.errors import ConfigError
from archsearch.relax.base import RELAXATIONS, Relaxation


@RELAXATIONS.register("experts")
class Experts(Relaxation):
    def __init__(self):
        self._optimizer = None
        self._host_masks: dict[int, torch.Tensor] = {}
        self._version = -1

    def attach(self, optimizer) -> None:
        if not hasattr(optimizer, "alive_mask"):
            raise ConfigError("the experts relaxation needs an architecture optimizer that removes experts "
                              "(arch_optimizer: expgrad)")
        self._optimizer = optimizer

    def _alive_on_device(self, alpha: torch.Tensor) -> torch.Tensor | None:
        if self._optimizer is None or alpha not in self._optimizer.state:
            return None
        return self._optimizer.alive_mask(alpha)

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        alive = self._alive_on_device(alpha)
        logits = alpha if alive is None else alpha.masked_fill(~alive, float("-inf"))
        p = torch.softmax(logits.detach(), dim=-1)
        return p + (alpha - alpha.detach())  # value p; d/d alpha = identity: alpha.grad = dL/dp

    def deterministic_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        alive = self._alive_on_device(alpha)
        logits = alpha.detach() if alive is None else alpha.detach().masked_fill(~alive, float("-inf"))
        return torch.softmax(logits, dim=-1)

    def alive(self, alpha: torch.Tensor) -> torch.Tensor | None:
        """The alive mask of ``alpha`` on the host, refreshed only after a removal (one copy per removal)."""
        if self._optimizer is None:
            return None
        if self._version != self._optimizer.removals:
            self._host_masks.clear()
            self._version = self._optimizer.removals
        key = id(alpha)
        if key not in self._host_masks:
            mask = self._alive_on_device(alpha)
            if mask is None:
                return None
            self._host_masks[key] = mask.detach().cpu().clone()
        return self._host_masks[key]

    def describe(self, view) -> dict:
        """Number of alive ops on each edge, per cell type."""
        out = {}
        for name, alpha in view.supernet.named_arch_parameters().items():
            mask = self.alive(alpha)
            if mask is not None:
                out[name] = [int(n) for n in mask.sum(dim=-1).tolist()]
        return {"alive_ops": out} if out else {}
