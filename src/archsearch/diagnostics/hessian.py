"""Dominant eigenvalue of the Hessian of L_val with respect to alpha (Zela et al., ICLR 2020).

RobustDARTS shows that a growing dominant eigenvalue precedes DARTS' collapse; we estimate it
by power iteration on exact Hessian-vector products (double backward), over one fixed batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def hessian_vector_product(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor],
                           vector: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """H v with H = d^2 loss / d params^2, by differentiating (grad . v).

    A parameter the loss does not use (an edge-normalisation weight switched off, an op a P-DARTS stage
    dropped) has a zero row and column in H, so its part of H v is zero."""
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vector) if g is not None)
    if not torch.is_tensor(dot) or not dot.requires_grad:  # the loss is linear in (or free of) params
        return [torch.zeros_like(p) for p in params]
    hv = torch.autograd.grad(dot, params, allow_unused=True)
    return [torch.zeros_like(p) if h is None else h.detach() for h, p in zip(hv, params)]


def dominant_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor],
                        iters: int = 20, generator: torch.Generator | None = None, tol: float = 1e-4,
                        progress: Callable[[int, int], None] | None = None) -> float:
    """Largest-magnitude eigenvalue of the Hessian of ``loss_fn()`` at ``params`` (power iteration).

    ``loss_fn`` must compute the loss on the same batch every call, so that H is fixed. ``progress(k,
    iters)`` is called after each iteration k (a long estimate can be watched).
    """
    params = list(params)
    vector = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum((v * v).sum() for v in vector))
    vector = [v / norm for v in vector]
    eigenvalue = 0.0
    for k in range(iters):
        hv = hessian_vector_product(loss_fn, params, vector)
        if progress is not None:
            progress(k + 1, iters)
        rayleigh = float(sum((h * v).sum() for h, v in zip(hv, vector)))  # v^T H v with |v| = 1
        norm = torch.sqrt(sum((h * h).sum() for h in hv))
        if norm == 0:
            return 0.0
        vector = [h / norm for h in hv]
        converged = abs(rayleigh - eigenvalue) <= tol * max(1.0, abs(rayleigh))
        eigenvalue = rayleigh
        if converged:
            break
    return eigenvalue
