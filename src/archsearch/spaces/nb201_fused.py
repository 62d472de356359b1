"""The fused NAS-Bench-201 search cell: the same function as the per-op cell, computed per source node.

In one cell, every edge leaving node j reads the same tensor x_j. With op weights w (edges, ops), the
edges e = (i <- j) leaving j contribute

    t_e = w[e, skip] * x_j + w[e, conv1] * BN(conv1_e(relu x_j)) + w[e, conv3] * BN(conv3_e(relu x_j))
          + w[e, pool] * avgpool(x_j)                                           (none: w * 0, skipped)

and node i = sum_{j < i} t_{i <- j}. ``SourceMix`` computes all t_e of one source in one autograd node:

* relu(x_j) and avgpool(x_j) once per source, not once per edge and op; the pool as a depthwise box
  sum times 1/count, which oneDNN runs several times faster than its pooling kernel;
* w[e, conv] * BN(z) as one BN kernel with gamma = w[e, conv], on the edge's own BN module's running
  buffers (so running statistics, the modules and the state_dict are exactly the per-op path's);
* memory: backward keeps only x_j and each conv's output (pre-BN) with its channels' mean and 1/std
  (and, in an architecture step, avgpool(x_j), which dL/dw_pool reads). The ReLU, the normalised BN
  outputs and the products with the weights are recomputed in backward where needed (elementwise, cheap
  next to the convs), where the per-op path stores every one of them for every edge; a step that wants
  no conv weight gradient (the architecture step) needs no ReLU at all in backward;
* one backward for the source: the convs' input gradients are summed before one ReLU backward, the
  skip and pool gradients of all edges before one pool backward.

The convs stay one per edge: stacking the E convs of a source into one with E*C outputs (and one BN over
the E*C channels) was measured slower on CPU at C=16 (docs/performance.md), the backward then also
having to concatenate the E upstream gradients.

Which ops an edge computes is given per call (``SourcePlan.active``): with soft weights every live op
(XNAS' wipeout removes some); with GDAS' hard weights the one sampled op, whose weight carries the
straight-through gradient, while the other (numerically zero) weights are added as a constant, as the
per-op path does: only their sum per target node matters, which the supernet hands one conv edge into
that node as a ``shift`` (its BN's beta, so no pass of its own), else adds to the node's sum. Partial channels (PC-DARTS), drop-path and replaced candidate modules take the per-op
path. Backward is first order only (it raises under ``create_graph=True``): a Hessian through the
supernet (diagnostics) uses the per-op path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError

aten = torch.ops.aten

#: NB201 op indices of the ops SourceMix computes (none, index 0, never is); its w holds them as columns 0-3
SKIP, CONV1, CONV3, POOL = 1, 2, 3, 4


@dataclass(frozen=True)
class ConvEdge:
    """One ReLU-conv-BN op computed by a SourceMix: edge position, column of w, padding, its BN module."""

    position: int
    column: int  # 1 (conv 1x1) or 2 (conv 3x3) in w's (skip, conv1, conv3, pool) columns
    padding: int
    has_bias: bool
    bn: nn.BatchNorm2d


@dataclass(frozen=True)
class SourcePlan:
    """What one SourceMix call computes. ``active`` = (skip, conv1, conv3, pool): for each op, the
    positions (rows of w) of the edges that compute it; ``convs``: the conv ops, in the order their
    weight (and bias) tensors are passed (edge by edge keeps an edge's two BN backwards together)."""

    active: tuple[tuple[int, ...], ...]
    convs: tuple[ConvEdge, ...]
    training: bool
    #: the positions whose term adds the call's ``shift`` (one entry each, in this order); a conv edge
    #: takes it as its BN's beta
    shifted: tuple[int, ...] = ()

    @cached_property
    def edges(self) -> tuple[int, ...]:
        """The positions of the edges that compute at least one op, in order (one output each)."""
        return tuple(sorted(set().union(*self.active)))

    @cached_property
    def convs_of(self) -> dict[int, list[tuple[int, ConvEdge]]]:
        """position -> its (index in ``convs``, conv) pairs."""
        out: dict[int, list[tuple[int, ConvEdge]]] = {}
        for i, conv in enumerate(self.convs):
            out.setdefault(conv.position, []).append((i, conv))
        return out

    @cached_property
    def param_slots(self) -> tuple[tuple[int, int | None], ...]:
        """Per conv, where its weight (and bias) lie among the call's parameters."""
        slots, k = [], 0
        for conv in self.convs:
            slots.append((k, k + 1 if conv.has_bias else None))
            k += 2 if conv.has_bias else 1
        return tuple(slots)


class SourceMix(torch.autograd.Function):
    """The edge terms leaving one source node: one tensor, shaped like x, per edge of ``plan.edges``.

    Inputs: x, w (E, 4) the (skip, conv1, conv3, pool) weights of the E edges, shift (S,) or None: a
    constant added to the term of each edge of ``plan.shifted`` (the hard path's straight-through
    constants; a conv takes it as its BN's beta), the plan, then each conv's weight (and bias, where it
    has one) in ``plan.convs`` order.
    """

    @staticmethod
    def forward(ctx, x, w, shift, plan: SourcePlan, *params):
        skip, _, _, pool = plan.active
        need_w = ctx.needs_input_grad[1]
        r = torch.relu(x) if plan.convs else None
        gammas = _gammas(w, x.shape[1]) if plan.convs else None
        n = len(plan.convs)
        weights, zs, means, invstds, train_stats = [None] * n, [None] * n, [None] * n, [None] * n, [None] * n
        shift_of = dict(zip(plan.shifted, range(len(plan.shifted)))) if shift is not None else {}
        convs_of, slots = plan.convs_of, plan.param_slots
        p = _avg_pool(x) if pool else None
        terms = []
        for e in plan.edges:
            # t_e = w_conv1 BN(z1_e) + w_conv3 BN(z3_e) + w_skip x + w_pool pool(x) (+ shift_e), accumulated
            # in the edge's first BN output, edge by edge while its tensors are in cache
            t = None
            for i, conv in convs_of.get(e, ()):
                weight_slot, bias_slot = slots[i]
                weight, bias = params[weight_slot], None if bias_slot is None else params[bias_slot]
                z = F.conv2d(r, weight, bias, padding=conv.padding)
                # w_e * BN(z_e) (+ shift_e) as BN with gamma = w_e (and beta = shift_e): one kernel
                beta = None
                if e in shift_of and t is None:
                    beta = shift[shift_of[e]].expand(x.shape[1]).contiguous()  # strided: a slow BN kernel
                y, (mean, invstd, train) = _batch_norm(z, gammas[e, conv.column - 1], beta, conv.bn, plan.training)
                t = y if t is None else t.add_(y)
                weights[i], zs[i], means[i], invstds[i], train_stats[i] = weight, z, mean, invstd, train
            shifted = t is not None
            for op, source, column in ((skip, x, 0), (pool, p, 3)):
                if e in op:
                    t = source * w[e, column] if t is None else t.addcmul_(source, w[e, column])
            if e in shift_of and not shifted:
                t.add_(shift[shift_of[e]])  # in place: addcmul(shift, x, w) is 3x slower than this second pass
            terms.append(t)
        del r
        # the pool output is kept for dL/dw_pool (an architecture step) rather than recomputed
        kept_pool = p if need_w and pool else None
        ctx.save_for_backward(x, w, kept_pool, *weights, *zs, *means, *invstds)
        ctx.plan, ctx.train_stats, ctx.shift_of = plan, train_stats, shift_of
        # a term that does not reach the loss (a node no sampled op reads) gets no gradient: None, not a
        # tensor of zeros, so that backward skips its edge
        ctx.set_materialize_grads(False)
        return tuple(terms)

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: the hand-written backward below is not differentiable
            raise ConfigError("second derivatives through the fused NAS-Bench-201 cell are not supported: "
                              "compute them inside `with supernet.using_path('reference'):`")
        plan = ctx.plan
        x, w, p, *saved = ctx.saved_tensors
        n = len(plan.convs)
        weights, zs, means, invstds = saved[:n], saved[n:2 * n], saved[2 * n:3 * n], saved[3 * n:]
        skip, _, _, pool = plan.active
        need_x, need_w, need_shift = ctx.needs_input_grad[:3]
        need_params = iter(ctx.needs_input_grad[4:])
        # g_e = dL/dt_e; a term that reaches no loss has none, and every gradient through it is exactly 0:
        # its edge is skipped below (its conv's weight gradient is 0, as the BN and conv backward of 0 give)
        g = {e: grad for e, grad in zip(plan.edges, grads) if grad is not None}
        skip, pool = tuple(e for e in skip if e in g), tuple(e for e in pool if e in g)

        grad_w = torch.zeros_like(w) if need_w else None
        if need_w:
            for e in skip:
                grad_w[e, 0] = _dot(g[e], x)  # dL/dw_skip,e = <g_e, x>
            for e in pool:
                grad_w[e, 3] = _dot(g[e], p)  # dL/dw_pool,e = <g_e, pool x>
        # dL/dshift_e = sum of g_e: from the BN backward of the conv that carried it, else one sum
        shift_of = ctx.shift_of
        grad_shift = w.new_zeros(len(shift_of)) if shift_of and need_shift else None
        summed = set()
        # relu(x) is recomputed, and only where a conv's weight gradient reads it: the input gradient of a
        # conv reads only its input's shape (x's)
        need_r = any(ctx.needs_input_grad[4:])
        r = torch.relu(x) if plan.convs and need_r else x
        gammas = _gammas(w, x.shape[1]) if plan.convs else None
        grad_r, grad_params = None, []
        for conv, weight, z, mean, invstd, train in zip(plan.convs, weights, zs, means, invstds, ctx.train_stats):
            need_weight = next(need_params)
            need_bias = next(need_params) if conv.has_bias else False
            if conv.position not in g:  # no gradient reaches this edge
                grad_params.append(torch.zeros_like(weight) if need_weight else None)
                if conv.has_bias:
                    grad_params.append(torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
                                       if need_bias else None)
                continue
            # BN backward with gamma = w_e and upstream g_e: one kernel gives dL/dz and, per channel,
            # sum_nhw g_e * BN(z) (gamma's gradient), whose sum over the channels is dL/dw_conv,e =
            # <g_e, BN(z_e)>. The normalised output is recomputed inside from the saved statistics (train)
            # or the running ones (eval).
            gamma = gammas[conv.position, conv.column - 1]
            want_beta = grad_shift is not None and conv.position in shift_of and conv.position not in summed
            mask = [True, need_w, want_beta]
            if train:
                dz, dgamma, dbeta = aten.native_batch_norm_backward(g[conv.position], z, gamma, None, None, mean,
                                                                    invstd, True, conv.bn.eps, mask)
            else:  # forward kept the running (mean, var)
                dz, dgamma, dbeta = aten.native_batch_norm_backward(g[conv.position], z, gamma, mean, invstd,
                                                                    None, None, False, conv.bn.eps, mask)
            if need_w:
                grad_w[conv.position, conv.column] = dgamma.sum()
            if want_beta:
                grad_shift[shift_of[conv.position]] = dbeta.sum()
                summed.add(conv.position)
            gi, gw, gb = aten.convolution_backward(
                dz, r, weight, [weight.shape[0]] if conv.has_bias else None, [1, 1], [conv.padding] * 2, [1, 1],
                False, [0, 0], 1, [need_x, need_weight, need_bias])
            del dz
            # the parameters' own (contiguous) layout, whatever layout oneDNN chose for the gradient
            grad_params.append(None if gw is None else gw.contiguous())
            if conv.has_bias:
                grad_params.append(gb)
            if need_x:
                grad_r = gi if grad_r is None else grad_r.add_(gi)

        if grad_shift is not None:
            for e, slot in shift_of.items():
                if e not in summed and e in g:
                    grad_shift[slot] = g[e].sum()

        grad_x = None
        if need_x:
            # relu: dL/dx = dL/dr where x > 0; skip: sum_e w_skip,e g_e; pool: its transpose applied to
            # sum_e w_pool,e g_e
            grad_x = aten.threshold_backward(grad_r, x, 0) if grad_r is not None else torch.zeros_like(x)
            for e in skip:
                grad_x.addcmul_(g[e], w[e, 0])
            if pool:
                inverse_count = _inverse_count(x)
                g_pool = g[pool[0]] * (w[pool[0], 3] * inverse_count)
                for e in pool[1:]:
                    g_pool.addcmul_(g[e], w[e, 3] * inverse_count)
                grad_x.add_(_box_sum(g_pool))
        return grad_x, grad_w, grad_shift, None, *grad_params


def _gammas(w: torch.Tensor, channels: int) -> torch.Tensor:
    """(E, 2, C): the conv1 and conv3 weights of each edge broadcast over the channels, BN's gamma."""
    return w[:, 1:3].unsqueeze(-1).expand(-1, -1, channels).contiguous()


def _batch_norm(z, gamma, beta, bn: nn.BatchNorm2d, training: bool):
    """gamma * BN(z) + beta, BN without affine as ``bn`` computes it: batch statistics in training or without
    running buffers (``bn``'s are then updated, its batch counted), else the running ones. Returns the
    output and what backward needs: (batch mean, batch 1/std, True) or (running mean, running var, False),
    copies."""
    running_mean, running_var = bn.running_mean, bn.running_var
    use_batch = training or running_mean is None
    y, mean, invstd = aten.native_batch_norm(z, gamma, beta, running_mean, running_var, use_batch, bn.momentum,
                                             bn.eps)
    if training and running_mean is not None:
        bn.num_batches_tracked.add_(1)
    if not use_batch:  # normalised by the running statistics, which backward reads as they are now
        mean, invstd = running_mean.clone(), running_var.clone()
    return y, (mean, invstd, use_batch)


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    """AvgPool2d(3, stride 1, padding 1, count_include_pad=False) as a depthwise 3x3 sum over the zero-padded
    input times 1/count, the number of in-bounds taps per position: the same function, but oneDNN's
    depthwise convolution runs it 4-10x faster on CPU than the pooling kernel (docs/performance.md)."""
    return _box_sum(x).mul_(_inverse_count(x))


def _box_sum(x: torch.Tensor) -> torch.Tensor:
    """The 3x3 sum over the zero-padded input, per channel; symmetric, so it is its own transpose: the
    pool's backward is dL/dx = box_sum(dL/dy / count)."""
    c = x.shape[1]
    return F.conv2d(x, _ones_kernel(c, x.dtype, x.device), padding=1, groups=c)


# constants, made once per shape (a cached tensor made under inference mode would be an inference tensor)
@lru_cache(maxsize=64)
def _ones_kernel(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):
        return torch.ones(channels, 1, 3, 3, dtype=dtype, device=device)


def _inverse_count(x: torch.Tensor) -> torch.Tensor:
    """1 / (in-bounds taps of a 3x3 window with padding 1), shaped (1, C, H, W) channels-last: the product
    with a channels-last (N, C, H, W) tensor then broadcasts over N alone, 2x faster than from (1, 1, H, W)."""
    return _inverse_count_of(*x.shape[-3:], x.dtype, x.device)


@lru_cache(maxsize=64)
def _inverse_count_of(c: int, h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):
        plane = _make_inverse_count(h, w, dtype, device)
        return plane.expand(1, c, h, w).contiguous(memory_format=torch.channels_last)


def _make_inverse_count(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    rows = torch.full((h,), 3.0, dtype=dtype, device=device)
    cols = torch.full((w,), 3.0, dtype=dtype, device=device)
    rows[0] = rows[-1] = cols[0] = cols[-1] = 2.0
    if h == 1:
        rows.fill_(1.0)
    if w == 1:
        cols.fill_(1.0)
    return (1.0 / torch.outer(rows, cols)).view(1, 1, h, w)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b) in one pass when both are dense in the same layout (the usual case here), else two."""
    if a.stride() == b.stride() and (a.is_contiguous() or a.is_contiguous(memory_format=torch.channels_last)):
        flat = (a.numel(),)
        return torch.dot(a.as_strided(flat, (1,)), b.as_strided(flat, (1,)))
    return (a * b).sum()
