"""The architecture gradient of the bilevel problem (DARTS, Liu et al. 2019, Sec. 2.3).

    min_alpha L_val(w*(alpha), alpha)   s.t.   w*(alpha) = argmin_w L_train(w, alpha)

First order approximates w*(alpha) by the current w. Second order takes one virtual step
w' = w - xi * grad_w L_train(w, alpha) and differentiates through it (eq. 7):

    grad_alpha L_val(w', alpha) - xi * grad^2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha)

The mixed second derivative times v = grad_w' L_val(w', alpha) is, by default (``hvp="exact"``), a
double backward, grad_alpha [grad_w L_train(w, alpha) . v], on the supernet's reference path. The
reference (quark0/darts cnn/architect.py:76-91) uses central finite differences (eq. 8), kept as
``hvp="finite-difference"``:

    [grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)] / (2 eps),
    w+- = w +- eps * v,  eps = 0.01 / ||v||.

With ReLU and max-pool a perturbation of norm 0.01 crosses many kinks, and the difference measures
their jumps rather than the derivative: on NB201 and DARTS supernets over CIFAR-10 the reference's
product is 2-2.4x off the exact one and the unrolled gradient 45-57% off, in float32 and float64
alike, and no radius does better (docs/search.md, "The Hessian-vector product"; benchmarks/
second_order_hvp.py). The exact product costs a double backward on the reference path instead of two
first-order passes, and that graph's memory.

The virtual step uses the weight optimizer's momentum and weight decay as quark0/darts'
``_compute_unrolled_model`` does; those terms do not depend on alpha, so eq. 8 is unchanged. The recurrent
search (quark0/darts rnn/architect.py:25-41, :61-70) also clips: ``clip`` c scales the virtual step's
gradient by k = min(1, c / (||g|| + 1e-6)), clips v to norm c, and takes xi * k times the product (k held
constant in alpha). The reference multiplies by its unclamped coefficient, which exceeds 1 where the
gradient was not clipped; we take min(1, .) so that an unclipped step is the exact eq. 7.
Weights are moved in place and restored, so no copy of the network is made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch

from archsearch.errors import ConfigError

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


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor], create_graph: bool = False) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def clip_coefficient(grads: Sequence[torch.Tensor], max_norm: float | None) -> float:
    """k = min(1, c / (||g|| + 1e-6)), torch.nn.utils.clip_grad_norm_'s factor (1 where ``max_norm`` is None)."""
    if max_norm is None:
        return 1.0
    return min(1.0, max_norm / (float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))) + 1e-6))


def first_order_arch_grads(val_loss: Loss, alphas: Sequence[torch.Tensor], weights: Sequence[torch.Tensor] = (),
                           reduce: Reduce = _same, create_graph: bool = False) -> tuple[list[torch.Tensor], torch.Tensor]:
    """grad_alpha L_val(w, alpha); ``create_graph``: differentiable again in alpha (VON's Hessian diagonal), the
    loss then computed where the supernet can be differentiated twice (the caller's context)."""
    with frozen(weights):  # only grad_alpha is wanted
        loss = val_loss()  # L_val(w, alpha)
    return reduce(_grads(loss, alphas, create_graph)), loss.detach()


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


def finite_difference_hvp(train_loss: Loss, weights: Sequence[torch.Tensor], alphas: Sequence[torch.Tensor],
                          vector: Sequence[torch.Tensor], radius: float = 0.01,
                          reduce: Reduce = _same) -> list[torch.Tensor]:
    """grad^2_{alpha,w} L_train(w, alpha) . v by central differences (eq. 8), as quark0/darts
    cnn/architect.py:76-91 (``_hessian_vector_product``, r = 1e-2):

        [grad_alpha L_train(w + R v, alpha) - grad_alpha L_train(w - R v, alpha)] / 2R,  R = radius / ||v||

    Leaves the weights where it found them. None where v = 0 (the product is then 0)."""
    norm = torch.sqrt(sum((v * v).sum() for v in vector))
    if float(norm) == 0:
        return None
    eps = radius / float(norm)
    w_saved = [w.detach().clone() for w in weights]
    try:
        _add_(weights, vector, eps)  # w+ = w + eps * v
        with frozen(weights):  # grad_alpha only
            grad_plus = reduce(_grads(train_loss(), alphas))  # grad_alpha L_train(w+, alpha)
        _add_(weights, vector, -2 * eps)  # w- = w - eps * v
        with frozen(weights):
            grad_minus = reduce(_grads(train_loss(), alphas))  # grad_alpha L_train(w-, alpha)
    finally:
        _copy_(weights, w_saved)
    return [(gp - gm) / (2 * eps) for gp, gm in zip(grad_plus, grad_minus)]


def exact_hvp(train_loss: Loss, weights: Sequence[torch.Tensor], alphas: Sequence[torch.Tensor],
              vector: Sequence[torch.Tensor], reduce: Reduce = _same,
              second_derivatives: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
              ) -> list[torch.Tensor]:
    """grad^2_{alpha,w} L_train(w, alpha) . v by double backward: grad_alpha [grad_w L_train(w, alpha) . v]
    (Pearlmutter's trick; v is a constant). It differentiates the network's own derivative, so ReLU's
    and max-pool's kinks contribute their almost-everywhere second derivative (0), where a finite
    difference of radius r picks up the jump of every kink within r. ``second_derivatives()``: the
    context to build the twice-differentiable graph in (a supernet's reference path)."""
    weights, alphas = list(weights), list(alphas)
    with second_derivatives():
        grads = torch.autograd.grad(train_loss(), weights, create_graph=True, allow_unused=True)
        dot = sum((g * v).sum() for g, v in zip(grads, vector) if g is not None)  # grad_w L_train . v
        if not isinstance(dot, torch.Tensor) or not dot.requires_grad:  # no weight gradient depends on alpha
            return reduce([torch.zeros_like(a) for a in alphas])
        return reduce(_grads(dot, alphas))


#: how the mixed second derivative of eq. 7 is computed (SearchConfig key ``hvp``)
HVP_MODES = ("exact", "finite-difference")


def second_order_arch_grads(train_loss: Loss, val_loss: Loss, weights: Sequence[torch.Tensor],
                            alphas: Sequence[torch.Tensor], w_optimizer: torch.optim.Optimizer,
                            xi: float, reduce: Reduce = _same, *, hvp: str = "exact", radius: float = 0.01,
                            second_derivatives: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                            clip: float | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Eq. 7; ``clip``: the recurrent search's clipping of the virtual step (module docstring). ``hvp``: "exact" (double backward, see exact_hvp) or "finite-difference" (the reference's
    eq. 8 at ``radius``; quark0/darts cnn/architect.py:76-91). ``reduce`` averages gradients over the processes of a distributed search, so
    that every process takes the same virtual step and Hessian-vector product as one process on the
    global batch would."""
    if hvp not in HVP_MODES:
        raise ConfigError(f"hvp must be one of {', '.join(HVP_MODES)}, got {hvp!r}")
    weights, alphas = list(weights), list(alphas)
    w_saved = [w.detach().clone() for w in weights]

    # w' = w - xi * grad_w L_train(w, alpha)   (plus momentum and weight decay, as quark0/darts)
    train_grads = reduce(_grads(train_loss(), weights))
    k = clip_coefficient(train_grads, clip)  # rnn/architect.py:40-41
    direction = virtual_step_direction([g * k for g in train_grads] if k < 1 else train_grads, weights, w_optimizer)
    _add_(weights, direction, -xi)
    try:
        loss_unrolled = val_loss()  # L_val(w', alpha)
        grads = _grads(loss_unrolled, alphas + weights)
        grads = reduce(grads)
        d_alpha, d_wprime = grads[: len(alphas)], grads[len(alphas):]  # grad_alpha L_val(w', a), grad_w' L_val(w', a)
        v_scale = clip_coefficient(d_wprime, clip)  # rnn/architect.py:65-66 clips v too
        d_wprime = [v * v_scale for v in d_wprime] if v_scale < 1 else d_wprime
    finally:
        _copy_(weights, w_saved)

    # grad^2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha), at w
    if hvp == "exact":
        hessian_vector = exact_hvp(train_loss, weights, alphas, d_wprime, reduce, second_derivatives)
    else:
        hessian_vector = finite_difference_hvp(train_loss, weights, alphas, d_wprime, radius, reduce)
    if hessian_vector is None:
        return [d.detach() for d in d_alpha], loss_unrolled.detach()
    return [(d - xi * k * hv).detach() for d, hv in zip(d_alpha, hessian_vector)], loss_unrolled.detach()
