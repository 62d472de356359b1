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
* memory: backward keeps only x_j and each conv's output (pre-BN) with its channels' mean and 1/std. The
  ReLU, the pooling, the normalised BN outputs and the products with the weights are recomputed in
  backward (they are elementwise or a 3x3 average, cheap next to the convs), where the per-op path stores
  every one of them for every edge;
* one backward for the source: the convs' input gradients are summed before one ReLU backward, the
  skip and pool gradients of all edges before one pool backward.

The convs stay one per edge: stacking the E convs of a source into one with E*C outputs (and one BN over
the E*C channels) was measured slower on CPU at C=16 (docs/performance.md), the backward then also
having to concatenate the E upstream gradients.

Which ops an edge computes is given per call (``SourcePlan.active``): with soft weights every live op
(XNAS' wipeout removes some); with GDAS' hard weights the one sampled op, whose weight carries the
straight-through gradient, while the cell adds the other (numerically zero) weights as constants, as the
per-op path does. Partial channels (PC-DARTS), drop-path and replaced candidate modules take the per-op
path. Backward is first order only (it raises under ``create_graph=True``): a Hessian through the
supernet (diagnostics) uses the per-op path.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    weight (and bias) tensors are passed."""

    active: tuple[tuple[int, ...], ...]
    convs: tuple[ConvEdge, ...]
    training: bool

    def edges(self) -> list[int]:
        """The positions of the edges that compute at least one op, in order (one output each)."""
        return sorted(set().union(*self.active))


class SourceMix(torch.autograd.Function):
    """The edge terms leaving one source node: one tensor, shaped like x, per edge of ``plan.edges()``.

    Inputs: x, w (E, 4) the (skip, conv1, conv3, pool) weights of the E edges, the plan, then each conv's
    weight (and bias, where it has one) in ``plan.convs`` order.
    """

    @staticmethod
    def forward(ctx, x, w, plan: SourcePlan, *params):
        skip, _, _, pool = plan.active
        r = torch.relu(x) if plan.convs else None
        weights, ys, zs, means, invstds, train_stats = [], {}, [], [], [], []
        it = iter(params)
        for conv in plan.convs:
            weight = next(it)
            bias = next(it) if conv.has_bias else None
            z = F.conv2d(r, weight, bias, padding=conv.padding)
            # w_e * BN(z_e) as BN with gamma = w_e: the product is taken inside the BN kernel
            y, (mean, invstd, train) = _batch_norm(z, _gamma(w, conv, x.shape[1]), conv.bn, plan.training)
            ys[conv.position, conv.column] = y
            weights.append(weight), zs.append(z), means.append(mean), invstds.append(invstd)
            train_stats.append(train)
        del r
        p = _avg_pool(x) if pool else None
        terms = []
        for e in plan.edges():
            # t_e = w_skip x + w_conv1 BN(z1_e) + w_conv3 BN(z3_e) + w_pool pool(x), the per-op path's order
            t = x * w[e, 0] if e in skip else None
            for column in (1, 2):
                y = ys.get((e, column))
                if y is not None:
                    t = y if t is None else t.add_(y)  # y is this edge's alone: summed in place
            if e in pool:
                t = p * w[e, 3] if t is None else t.addcmul_(p, w[e, 3])
            terms.append(t)
        ctx.save_for_backward(x, w, *weights, *zs, *means, *invstds)
        ctx.plan, ctx.train_stats = plan, train_stats
        return tuple(terms)

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: the hand-written backward below is not differentiable
            raise ConfigError("second derivatives through the fused NAS-Bench-201 cell are not supported: "
                              "compute them inside `with supernet.using_path('reference'):`")
        plan = ctx.plan
        x, w, *saved = ctx.saved_tensors
        n = len(plan.convs)
        weights, zs, means, invstds = saved[:n], saved[n:2 * n], saved[2 * n:3 * n], saved[3 * n:]
        skip, _, _, pool = plan.active
        need_x, need_w = ctx.needs_input_grad[:2]
        need_params = iter(ctx.needs_input_grad[3:])
        # g_e = dL/dt_e (an unused term has none: zero)
        g = {e: torch.zeros_like(x) if grad is None else grad for e, grad in zip(plan.edges(), grads)}

        grad_w = torch.zeros_like(w) if need_w else None
        if need_w:
            for e in skip:
                grad_w[e, 0] = _dot(g[e], x)  # dL/dw_skip,e = <g_e, x>
            if pool:  # recomputed here instead of stored
                p = _avg_pool(x)
                for e in pool:
                    grad_w[e, 3] = _dot(g[e], p)  # dL/dw_pool,e = <g_e, pool x>
                del p
        r = torch.relu(x) if plan.convs else None  # recomputed
        grad_r, grad_params = None, []
        for conv, weight, z, mean, invstd, train in zip(plan.convs, weights, zs, means, invstds, ctx.train_stats):
            need_weight = next(need_params)
            need_bias = next(need_params) if conv.has_bias else False
            # BN backward with gamma = w_e and upstream g_e: one kernel gives dL/dz and, per channel,
            # sum_nhw g_e * BN(z) (gamma's gradient), whose sum over the channels is dL/dw_conv,e =
            # <g_e, BN(z_e)>. The normalised output is recomputed inside from the saved statistics (train)
            # or the running ones (eval).
            gamma = _gamma(w, conv, x.shape[1])
            if train:
                dz, dgamma, _ = aten.native_batch_norm_backward(g[conv.position], z, gamma, None, None, mean,
                                                                invstd, True, conv.bn.eps, [True, need_w, False])
            else:  # forward kept the running (mean, var)
                dz, dgamma, _ = aten.native_batch_norm_backward(g[conv.position], z, gamma, mean, invstd, None,
                                                                None, False, conv.bn.eps, [True, need_w, False])
            if need_w:
                grad_w[conv.position, conv.column] = dgamma.sum()
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

        grad_x = None
        if need_x:
            # relu: dL/dx = dL/dr where x > 0; skip: sum_e w_skip,e g_e; pool: its transpose applied to
            # sum_e w_pool,e g_e
            grad_x = aten.threshold_backward(grad_r, r, 0) if grad_r is not None else torch.zeros_like(x)
            for e in skip:
                grad_x.addcmul_(g[e], w[e, 0])
            if pool:
                g_pool = g[pool[0]] * w[pool[0], 3]
                for e in pool[1:]:
                    g_pool.addcmul_(g[e], w[e, 3])
                grad_x.add_(_avg_pool_backward(g_pool))
        return grad_x, grad_w, None, *grad_params


def _gamma(w: torch.Tensor, conv: ConvEdge, channels: int) -> torch.Tensor:
    return w[conv.position, conv.column].expand(channels).contiguous()


def _batch_norm(z, gamma, bn: nn.BatchNorm2d, training: bool):
    """gamma * BN(z), BN without affine as ``bn`` computes it: batch statistics in training or without
    running buffers (``bn``'s are then updated, its batch counted), else the running ones. Returns the
    output and what backward needs: (batch mean, batch 1/std, True) or (running mean, running var, False),
    copies."""
    running_mean, running_var = bn.running_mean, bn.running_var
    use_batch = training or running_mean is None
    y, mean, invstd = aten.native_batch_norm(z, gamma, None, running_mean, running_var, use_batch, bn.momentum,
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
    c = x.shape[1]
    return F.conv2d(x, x.new_ones(c, 1, 3, 3), padding=1, groups=c).mul_(_inverse_count(x))


def _avg_pool_backward(grad: torch.Tensor) -> torch.Tensor:
    """The transpose of _avg_pool: the 3x3 box sum is symmetric, so dL/dx = box_sum(dL/dy / count)."""
    c = grad.shape[1]
    return F.conv2d(grad * _inverse_count(grad), grad.new_ones(c, 1, 3, 3), padding=1, groups=c)


def _inverse_count(x: torch.Tensor) -> torch.Tensor:
    """1 / (in-bounds taps of a 3x3 window with padding 1), shaped (1, 1, H, W) to broadcast."""
    h, w = x.shape[-2:]
    rows = torch.full((h,), 3.0, dtype=x.dtype, device=x.device)
    cols = torch.full((w,), 3.0, dtype=x.dtype, device=x.device)
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
