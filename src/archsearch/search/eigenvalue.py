"""The search's Hessian diagnostic: the largest eigenvalue of the Hessian of L_val(w, α) with respect to
the supernet's architecture parameters (RobustDARTS' signal of collapse), at the relaxation's mean, and
how often a search computes it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from archsearch.diagnostics.hessian import largest_eigenvalue
from archsearch.relax.base import use_mean

#: what one Hessian-vector product costs in search steps (an architecture and a weight step, fast path):
#: a forward and a double backward on the reference path, measured at 1.7 to 2.9 steps on both spaces and
#: up to 4 on a busy machine (benchmarks/diagnostic_cost.py); the "auto" cadence plans with the upper figure
HVP_COST_IN_STEPS = 4.0
#: the share of a search's time the "auto" cadence gives the eigenvalue (our choice)
AUTO_BUDGET = 0.1


def eigenvalue_every(setting: int | str, iters: int, steps_per_epoch: int) -> int:
    """The epochs between two eigenvalues (0: never). ``"auto"``: the most often the budget allows when
    every estimate takes all ``iters`` products (Lanczos usually stops earlier), so that the diagnostic
    costs at most AUTO_BUDGET of the search."""
    if setting != "auto":
        return int(setting)
    return max(1, math.ceil(iters * HVP_COST_IN_STEPS / (AUTO_BUDGET * max(1, steps_per_epoch))))


def supernet_eigenvalue(supernet: torch.nn.Module, relaxation, batch: tuple[torch.Tensor, torch.Tensor],
                        iters: int, generator: torch.Generator, progress=None) -> float:
    """Largest eigenvalue of the Hessian of L_val(w, alpha) w.r.t. the supernet's architecture parameters
    on ``batch``, at the relaxation's mean. BN buffers are restored afterwards so that the estimate leaves
    the search untouched. ``progress(k, iters)``: after each Lanczos step."""
    x, y = batch
    buffers = {k: v.clone() for k, v in supernet.named_buffers()}
    drop = supernet.drop_path_prob
    if drop:  # a random drop-path mask per forward would change H between iterations
        supernet.set_drop_path_prob(0.0)
    try:
        with use_mean(relaxation), supernet.using_path("reference"):  # H needs second derivatives
            return largest_eigenvalue(lambda: F.cross_entropy(supernet(x), y), supernet.arch_parameters(),
                                      iters=iters, generator=generator, progress=progress)
    finally:
        with torch.no_grad():
            for name, buffer in supernet.named_buffers():
                buffer.copy_(buffers[name])
        if drop:
            supernet.set_drop_path_prob(drop)
