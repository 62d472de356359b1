"""The search's Hessian diagnostic: the dominant eigenvalue of the Hessian of L_val(w, α) with respect to
the supernet's architecture parameters (RobustDARTS' signal of collapse), at the relaxation's mean."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from archsearch.diagnostics.hessian import dominant_eigenvalue
from archsearch.relax.base import use_mean


def supernet_eigenvalue(supernet: torch.nn.Module, relaxation, batch: tuple[torch.Tensor, torch.Tensor],
                        iters: int, generator: torch.Generator, progress=None) -> float:
    """Dominant eigenvalue of the Hessian of L_val(w, alpha) w.r.t. the supernet's architecture
    parameters on ``batch``, at the relaxation's mean. BN buffers are restored afterwards so that the
    estimate leaves the search untouched. ``progress(k, iters)``: after each power iteration."""
    x, y = batch
    buffers = {k: v.clone() for k, v in supernet.named_buffers()}
    drop = supernet.drop_path_prob
    if drop:  # a random drop-path mask per forward would change H between power iterations
        supernet.set_drop_path_prob(0.0)
    try:
        with use_mean(relaxation), supernet.using_path("reference"):  # H needs second derivatives
            return dominant_eigenvalue(lambda: F.cross_entropy(supernet(x), y), supernet.arch_parameters(),
                                       iters=iters, generator=generator, progress=progress)
    finally:
        with torch.no_grad():
            for name, buffer in supernet.named_buffers():
                buffer.copy_(buffers[name])
        if drop:
            supernet.set_drop_path_prob(drop)
