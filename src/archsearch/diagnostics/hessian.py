"""The largest eigenvalue of the Hessian of L_val with respect to alpha (Zela et al., ICLR 2020).

RobustDARTS shows that a growing largest eigenvalue precedes DARTS' collapse. Its reference computes the
exact Hessian and takes its largest algebraic eigenvalue (automl/RobustDARTS src/search/analyze.py:
``max(eigvals(H))``), so a saddle's negative curvature never masks the positive one. We take the same
eigenvalue by Lanczos iteration on exact Hessian-vector products (double backward) over one fixed batch:
it needs no H in memory, and its extreme Ritz value converges in far fewer products than power iteration,
which besides finds the largest |lambda|, not the largest lambda.
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


def largest_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], iters: int = 10,
                       generator: torch.Generator | None = None, tol: float = 1e-4,
                       progress: Callable[[int, int], None] | None = None) -> float:
    """Largest algebraic eigenvalue of the Hessian of ``loss_fn()`` at ``params``: the top Ritz value of
    at most ``iters`` Lanczos steps (one Hessian-vector product each), stopped early once it is within
    ``tol`` (relative, by its residual) or the Krylov space is exhausted (then it is exact). ``loss_fn``
    must compute the loss on the same batch every call, so that H is fixed. ``progress(k, iters)`` is
    called after each product."""
    params = list(params)
    sizes = [p.numel() for p in params]
    device = params[0].device

    def hvp(q: torch.Tensor) -> torch.Tensor:  # on a flat float64 vector
        pieces = [piece.view_as(p).to(p.dtype) for piece, p in zip(torch.split(q, sizes), params)]
        return torch.cat([h.reshape(-1) for h in hessian_vector_product(loss_fn, params, pieces)]).double()

    q = torch.randn(sum(sizes), generator=generator, dtype=torch.float64).to(device)
    basis = [q / q.norm()]
    diagonal: list[float] = []  # T's alpha_j = q_j^T H q_j
    off_diagonal: list[float] = []  # T's beta_j = |r_j|
    ritz = 0.0
    for step in range(min(iters, len(q))):
        w = hvp(basis[-1])
        diagonal.append(float(w @ basis[-1]))
        for _ in range(2):  # full reorthogonalisation (twice is enough), cheap at alpha's few hundred entries
            w = w - torch.stack(basis).T @ (torch.stack(basis) @ w)
        T = torch.diag(torch.tensor(diagonal, dtype=torch.float64))
        if off_diagonal:
            beta = torch.tensor(off_diagonal, dtype=torch.float64)
            T += torch.diag(beta, 1) + torch.diag(beta, -1)
        values, vectors = torch.linalg.eigh(T)
        ritz = float(values[-1])
        if progress is not None:
            progress(step + 1, iters)
        norm = float(w.norm())
        # |H y - theta y| = beta_j |s_j| for the top Ritz pair (theta, y = Q s): H has an eigenvalue within
        # that distance of theta, so a small residual is a certified answer, unlike a small change
        residual = norm * abs(float(vectors[-1, -1]))
        if norm <= 1e-12 * max(1.0, abs(ritz)) or residual <= tol * abs(ritz):
            break  # an invariant subspace (exact), or converged
        off_diagonal.append(norm)
        basis.append(w / norm)
    return ritz
