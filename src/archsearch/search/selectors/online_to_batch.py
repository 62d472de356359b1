"""XNAS' online-to-batch selection: a genotype from what an ExpGrad forecaster learned.

``mode="accumulated"`` (default): per edge, the argmax of the accumulated prediction sum_t p_t, the
online-to-batch conversion of the averaged forecaster (Cesa-Bianchi, Conconi & Gentile 2004), over
the experts still alive. ``mode="final"``: argmax of the final prediction p_T. ``mode="sample"``:
one op per edge drawn from p_T (seeded). Removed experts weigh 0 and are never picked; on the DARTS
space the two inputs of each node are those whose chosen op weighs most (the space's own rule).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from archsearch.errors import ConfigError, shown
from archsearch.optim.expgrad import ExpGrad
from archsearch.search.selectors.base import SELECTORS, Selector

MODES = ("accumulated", "final", "sample")


@SELECTORS.register("online-to-batch")
class OnlineToBatchSelector(Selector):
    def __init__(self, mode: str = "accumulated", seed: int | None = None, exclude: Sequence[str] = ("none",)):
        if mode not in MODES:
            raise ConfigError(f"online-to-batch mode must be one of {', '.join(MODES)}, got {shown(mode)}")
        self.mode, self.seed, self.exclude = mode, seed, tuple(exclude)

    def weights(self, view) -> dict[str, torch.Tensor]:
        """Per cell type, (edges, ops) weights whose argmax the space's rule takes; removed ops -inf."""
        optimizer = view.arch_optimizer
        if not isinstance(optimizer, ExpGrad):  # the forecasters' accumulated predictions are ExpGrad's
            raise ConfigError("the online-to-batch selector needs the expgrad architecture optimizer")
        rng = np.random.default_rng(view.config.seed if self.seed is None else self.seed)
        out = {}
        for name, alpha in view.supernet.named_arch_parameters().items():
            alive = optimizer.alive_mask(alpha).cpu()
            if self.mode == "accumulated":
                w = optimizer.accumulated_weights(alpha).cpu().double()
            else:
                w = optimizer.weights(alpha).cpu().double()
            if self.mode == "sample":
                w = _sampled(w, rng)
            out[name] = w.masked_fill(~alive, float("-inf"))
        return out

    def select(self, view):
        weights = self.weights(view)
        exclude = self.exclude
        for w in weights.values():  # an edge whose only survivors are excluded ops keeps them
            keep = [k for k, op in enumerate(view.space.ops) if op not in exclude]
            if keep and bool((w[:, keep] == float("-inf")).all(dim=-1).any()):
                exclude = ()
        return view.space.genotype_from_weights(weights, exclude=exclude)


def _sampled(p: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One op per edge drawn from p; the drawn op keeps its probability (so edges stay comparable)."""
    out = torch.zeros_like(p)
    for edge, row in enumerate(p.numpy()):
        k = int(rng.choice(len(row), p=row / row.sum()))
        out[edge, k] = row[k]
    return out
