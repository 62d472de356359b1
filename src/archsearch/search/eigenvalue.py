"""The search's Hessian diagnostic: the largest eigenvalue of the Hessian of the validation loss with respect
to the supernet's architecture parameters (RobustDARTS' signal of collapse), at the relaxation's mean, and
how often a search computes it.

What RobustDARTS differentiates (automl/RobustDARTS, src/search/train_search.py:393 calls
``Analyzer.compute_Hw(..., unrolled=False)``, and src/search/analyze.py:114-121 has the unrolled branch
commented out either way): the loss of the supernet at its current weights on the search-valid batch,
first order, although its searches take second-order architecture steps (scripts/DARTS_search.sh:
``--unrolled``). Its rows are ``grad_alpha L_val + arch_weight_decay * alpha`` differentiated again
(analyze.py:174, ``self.weight_decay = args.arch_weight_decay``, analyze.py:18), so its H is the Hessian of
the objective Adam actually minimises, L_val + (lambda / 2) |alpha|^2 with Adam's coupled weight decay
lambda (architect.py:17-18), and the logged ``max(LA.eigvals(H))`` (train_search.py:415) includes the
+lambda I (1e-3 by default, args.py:37). We do the same: ``l2`` is the architecture optimizer's coupled
weight decay. ``order=2`` is our addition: the Hessian of the unrolled objective L_val(w'(alpha), alpha),
w'(alpha) = w - xi (grad_w L_train(w, alpha) + the weight step's momentum and decay), the function whose
gradient a second-order search follows (search/bilevel.py), differentiated exactly by double backward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from archsearch.diagnostics.hessian import largest_eigenvalue
from archsearch.relax.base import use_mean
from archsearch.search.bilevel import virtual_step_direction

#: what one Hessian-vector product costs in search steps (an architecture and a weight step, fast path):
#: a forward and a double backward on the reference path, measured at 1.7 to 2.9 steps on both spaces and
#: up to 4 on a busy machine (benchmarks/diagnostic_cost.py); the "auto" cadence plans with the upper figure
HVP_COST_IN_STEPS = 4.0
#: how many times dearer a product of the unrolled (``hessian_order: 2``) Hessian is: two forwards and a
#: triple backward, batch norm from separate ops, instead of one forward and a double backward; measured at
#: about 5.6 on a shared machine (docs/early-stopping.md), planned at 6
UNROLLED_HVP_FACTOR = 6.0
#: the same in the steps of a search that computes one op per edge (a hard relaxation: GDAS, ENAS'
#: controller), while the product, at the relaxation's mean, still computes every op of every edge: a
#: GDAS step on the fast path costs 0.23-0.27 of a DARTS step at NB201's C=16, N=5, batch 64
#: (docs/performance.md, one and two threads), so the dearest product, 4 DARTS steps, is ~16 GDAS steps
HARD_HVP_COST_IN_STEPS = 16.0
#: the share of a search's time the "auto" cadence gives the eigenvalue (our choice): 5%, so that an epoch
#: with every default diagnostic, the data, records, plots and checkpoint (1-2% more, measured by
#: benchmarks/epoch_overhead.py) stays within 10% of its steps; at 10% a GDAS run measured 10.3%
AUTO_BUDGET = 0.05


def eigenvalue_every(setting: int | str, iters: int, steps_per_epoch: int, order: int = 1,
                     hard: bool = False) -> int:
    """The epochs between two eigenvalues (0: never). ``"auto"``: the most often the budget allows when
    every estimate takes all ``iters`` products (Lanczos usually stops earlier), so that the diagnostic
    costs at most AUTO_BUDGET of the search. ``hard``: the search's steps compute one op per edge, so a
    product costs more of them (HARD_HVP_COST_IN_STEPS)."""
    if setting != "auto":
        return int(setting)
    per_step = HARD_HVP_COST_IN_STEPS if hard else HVP_COST_IN_STEPS
    cost = per_step * (UNROLLED_HVP_FACTOR if order == 2 else 1.0)
    return max(1, math.ceil(iters * cost / (AUTO_BUDGET * max(1, steps_per_epoch))))


def coupled_weight_decay(optimizer: torch.optim.Optimizer) -> float:
    """lambda of the L2 term (lambda / 2) |alpha|^2 an optimizer adds to its gradient (torch's Adam and SGD
    ``weight_decay``); 0 where it adds none (decoupled decay, ExpGrad, the variational rules)."""
    group = optimizer.param_groups[0]
    if group.get("decoupled_weight_decay", False):
        return 0.0
    return float(group.get("weight_decay", 0.0) or 0.0)


@dataclass(frozen=True)
class Unroll:
    """The virtual weight step of a second-order Hessian: w' = w - xi * (grad_w L_train(w, alpha) on
    ``batch`` + ``w_optimizer``'s momentum and weight decay), as search/bilevel.py's architecture step."""
    batch: tuple[torch.Tensor, torch.Tensor]
    xi: float
    w_optimizer: torch.optim.Optimizer


def unroll_for(config, w_optimizer: torch.optim.Optimizer, train_loader) -> Unroll | None:
    """The virtual step of a search's ``hessian_order: 2`` Hessian (None at order 1): on a fixed
    search-train batch (the first of epoch 0, as the validation batch, so epochs are comparable), xi as
    the architecture step's (``unrolled_lr``, else the weights' learning rate, DARTS' choice)."""
    if config.hessian_order != 2:
        return None
    epoch = train_loader.epoch
    train_loader.set_epoch(0)
    batch = next(iter(train_loader))
    train_loader.set_epoch(epoch)  # the search's passes are untouched
    return Unroll(batch, config.unrolled_lr or w_optimizer.param_groups[0]["lr"], w_optimizer)


def _batch_statistics_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm by batch statistics, from differentiable ops: y = (x - mean) / sqrt(var + eps) (* gamma + beta)."""
    if not (bn.training or not bn.track_running_stats):  # running statistics: affine in x, exact at any order
        return type(bn).forward(bn, x)
    dims = [0] + list(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = (x - mean).square().mean(dims, keepdim=True)  # biased, as BatchNorm normalises
    y = (x - mean) * torch.rsqrt(var + bn.eps)
    if bn.affine:
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y


@contextlib.contextmanager
def differentiable_batch_norm(module: nn.Module) -> Iterator[None]:
    """BatchNorms computed from differentiable ops while inside. The unrolled Hessian differentiates
    L_train three times, and torch's fused batch norm treats its saved mean and 1/std as constants past the
    second derivative (pytorch/pytorch#186256): its third derivatives, and so an unrolled Hessian through
    it, come out wrong, not even symmetric. Same values; running statistics are not updated meanwhile."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.forward = lambda x, bn=bn: _batch_statistics_norm(bn, x)
    try:
        yield
    finally:
        for bn in norms:
            del bn.forward


def unrolled_loss(supernet: torch.nn.Module, batch, unroll: Unroll) -> torch.Tensor:
    """L_val(w'(alpha), alpha) with w' a function of alpha that autograd traces (create_graph), so that
    differentiating it twice w.r.t. alpha gives the exact Hessian of the unrolled objective."""
    arch = {id(p) for p in supernet.arch_parameters()}
    named = [(n, p) for n, p in supernet.named_parameters() if id(p) not in arch]
    weights = [p for _, p in named]
    x_t, y_t = unroll.batch
    grads = torch.autograd.grad(F.cross_entropy(supernet(x_t), y_t), weights, create_graph=True,
                                allow_unused=True)  # grad_w L_train(w, alpha), a function of alpha
    constant = virtual_step_direction([torch.zeros_like(w) for w in weights], weights, unroll.w_optimizer)
    w_prime = {n: w - unroll.xi * (c if g is None else g + c) for (n, w), g, c in zip(named, grads, constant)}
    x, y = batch
    return F.cross_entropy(functional_call(supernet, w_prime, (x,)), y)  # L_val(w', alpha)


def cross_entropy_loss(supernet: torch.nn.Module, batch) -> torch.Tensor:
    """An image batch's loss: cross entropy of the supernet's logits (the default ``loss_of``)."""
    x, y = batch
    return F.cross_entropy(supernet(x), y)


def supernet_eigenvalue(supernet: torch.nn.Module, relaxation, batch, iters: int, generator: torch.Generator,
                        progress=None, *, l2: float = 0.0, unroll: Unroll | None = None,
                        loss_of=cross_entropy_loss) -> float:
    """Largest eigenvalue of the Hessian of L_val(w, alpha) + (l2 / 2) |alpha|^2 w.r.t. the supernet's
    architecture parameters on ``batch``, at the relaxation's mean; of L_val(w'(alpha), alpha) + ... with
    ``unroll``. BN buffers are restored afterwards so that the estimate leaves the search untouched.
    ``progress(k, iters)``: after each Lanczos step. ``loss_of(supernet, batch)``: L_val, a fixed function of
    alpha (the task's ``diagnostic_loss``: a language model's from a zero hidden state, its dropout masks
    fixed); ``unroll`` takes image batches only."""
    alphas = supernet.arch_parameters()
    buffers = {k: v.clone() for k, v in supernet.named_buffers()}
    drop = supernet.drop_path_prob
    if drop:  # a random drop-path mask per forward would change H between iterations
        supernet.set_drop_path_prob(0.0)

    def loss() -> torch.Tensor:
        value = loss_of(supernet, batch) if unroll is None else unrolled_loss(supernet, batch, unroll)
        if l2:  # RobustDARTS analyze.py:174: grad + arch_weight_decay * alpha, i.e. H + l2 I
            value = value + 0.5 * l2 * sum((a * a).sum() for a in alphas)
        return value

    exact_norms = differentiable_batch_norm(supernet) if unroll is not None else contextlib.nullcontext()
    try:
        with use_mean(relaxation), supernet.using_path("reference"), exact_norms:  # H needs second derivatives
            return largest_eigenvalue(loss, alphas, iters=iters, generator=generator, progress=progress)
    finally:
        with torch.no_grad():
            for name, buffer in supernet.named_buffers():
                buffer.copy_(buffers[name])
        if drop:
            supernet.set_drop_path_prob(drop)
