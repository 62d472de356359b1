"""The architecture gradient of the bilevel problem (DARTS, Liu et al. 2019, Sec. 2.3).

    min_alpha L_val(w*(alpha), alpha)   s.t.   w*(alpha) = argmin_w L_train(w, alpha)

First order approximates w*(alpha) by the current w. Second order takes one virtual step
w' = w - xi * grad_w L_train(w, alpha) and differentiates through it (eq. 7):

    grad_alpha L_val(w', alpha) - xi * grad^2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha)

with the mixed second derivative by central finite differences (eq. 8):

    [grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)] / (2 eps),
    w+- = w +- eps * grad_w' L_val(w', alpha),  eps = 0.01 / ||grad_w' L_val(w', alpha)||.

The virtual step uses the weight optimizer's momentum and weight decay as quark0/darts'
``_compute_unrolled_model`` does; those terms do not depend on alpha, so eq. 8 is unchanged.
Weights are moved in place and restored, so no copy of the network is made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch

Loss = Callable[[], torch.Tensor]
#: averages a list of gradients over the processes of a distributed search (identity in one process)
Reduce = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def _same(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    return grads


@contextlib.contextmanager
def frozen(params: Sequence[torch.Tensor]) -> Iterator[None]:
    """Build the graph with ``params`` as constants: a loss differentiated w.r.t. alpha only then skips the
    weight gradients (custom autograd Functions, such as the fused NB201 cell, read requires_grad to
    decide what to compute; built-in ops are pruned by autograd anyway). Values are untouched."""
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def first_order_arch_grads(val_loss: Loss, alphas: Sequence[torch.Tensor], weights: Sequence[torch.Tensor] = (),
                           reduce: Reduce = _same) -> tuple[list[torch.Tensor], torch.Tensor]:
    with frozen(weights):  # only grad_alpha is wanted
        loss = val_loss()  # L_val(w, alpha)
    return reduce(_grads(loss, alphas)), loss.detach()


@torch.no_grad()
def _add_(params: Sequence[torch.Tensor], direction: Sequence[torch.Tensor], scale: float) -> None:
    for p, d in zip(params, direction):
        p.add_(d, alpha=scale)


@torch.no_grad()
def _copy_(params: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    for p, v in zip(params, values):
        p.copy_(v)


def virtual_step_direction(train_grads: Sequence[torch.Tensor], weights: Sequence[torch.Tensor],
                           w_optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """d with w' = w - xi * d: the SGD step direction (momentum buffer, weight decay, gradient)."""
    group = w_optimizer.param_groups[0]
    momentum, weight_decay = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
    direction = []
    for w, g in zip(weights, train_grads):
        d = g + weight_decay * w.detach()
        buffer = w_optimizer.state.get(w, {}).get("momentum_buffer")
        if buffer is not None and momentum:
            d = d + momentum * buffer
        direction.append(d.detach())
    return direction


def second_order_arch_grads(train_loss: Loss, val_loss: Loss, weights: Sequence[torch.Tensor],
                            alphas: Sequence[torch.Tensor], w_optimizer: torch.optim.Optimizer,
                            xi: float, reduce: Reduce = _same) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``reduce`` averages gradients over the processes of a distributed search, so that every process takes
    the same virtual step and finite-difference direction as one process on the global batch would."""
    weights, alphas = list(weights), list(alphas)
    w_saved = [w.detach().clone() for w in weights]

    # w' = w - xi * grad_w L_train(w, alpha)   (plus momentum and weight decay, as quark0/darts)
    direction = virtual_step_direction(reduce(_grads(train_loss(), weights)), weights, w_optimizer)
    _add_(weights, direction, -xi)
    try:
        loss_unrolled = val_loss()  # L_val(w', alpha)
        grads = _grads(loss_unrolled, alphas + weights)
        grads = reduce(grads)
        d_alpha, d_wprime = grads[: len(alphas)], grads[len(alphas):]  # grad_alpha L_val(w', a), grad_w' L_val(w', a)

        norm = torch.sqrt(sum((g * g).sum() for g in d_wprime))
        eps = 0.01 / float(norm) if float(norm) > 0 else 0.0
        _copy_(weights, w_saved)
        _add_(weights, d_wprime, eps)  # w+ = w + eps * grad_w' L_val(w', alpha)
        with frozen(weights):  # grad_alpha only
            grad_plus = reduce(_grads(train_loss(), alphas))  # grad_alpha L_train(w+, alpha)
        _add_(weights, d_wprime, -2 * eps)  # w- = w - eps * grad_w' L_val(w', alpha)
        with frozen(weights):
            grad_minus = reduce(_grads(train_loss(), alphas))  # grad_alpha L_train(w-, alpha)
    finally:
        _copy_(weights, w_saved)

    if eps == 0.0:
        return [d.detach() for d in d_alpha], loss_unrolled.detach()
    arch_grads = []
    for d, gp, gm in zip(d_alpha, grad_plus, grad_minus):
        hessian_vector = (gp - gm) / (2 * eps)  # grad^2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha)
        arch_grads.append((d - xi * hessian_vector).detach())
    return arch_grads, loss_unrolled.detach()
