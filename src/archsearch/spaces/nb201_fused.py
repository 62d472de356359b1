"""The fused NAS-Bench-201 search cell: the same function as the per-op cell, computed per source node.

In one cell, every edge leaving node j reads the same tensor x_j. With soft op weights w (edges, ops),
the edges e = (i <- j) leaving j contribute

    t_e = w[e, skip] * x_j + w[e, conv1] * BN(conv1_e(relu x_j)) + w[e, conv3] * BN(conv3_e(relu x_j))
          + w[e, pool] * avgpool(x_j)                                           (none: w * 0, skipped)

and node i = sum_{j < i} t_{i <- j}. ``SourceMix`` computes all t_e of one source at once:

* relu(x_j) and avgpool(x_j) once per source, not once per edge and op; the pool as a depthwise box
  sum times 1/count, which oneDNN runs several times faster than its pooling kernel;
* the 1x1 (3x3) convs of all edges leaving j that compute one as one conv with E*C output channels
  (weights and biases concatenated in edge order), and one batch norm over those E*C channels, with the
  op weights w[e, conv] as its gamma (w * BN(z) is then computed inside the BN kernel). BN statistics are
  per channel, so this is exactly the E separate BNs; the running buffers of a source's BN modules are
  views into one flat buffer per source (``_FlatStats``), so running statistics are updated exactly as
  the per-edge BNs would and the modules (and the state_dict) keep holding them;
* memory: backward keeps only x_j and the conv outputs (pre-BN) with each channel's mean and 1/std. The
  ReLU, the pooling, the normalised BN outputs and the products with the weights are recomputed in
  backward (they are elementwise or a 3x3 average, cheap next to the convs), where the per-op path stores
  every one of them for every edge.

Which ops an edge computes is given per call (``active``): with soft weights every live op (XNAS' wipeout
removes some); with GDAS' hard weights the one sampled op, whose weight carries the straight-through
gradient, while the cell adds the other (numerically zero) weights as constants, as the per-op path does.
Partial channels (PC-DARTS), drop-path and replaced candidate modules take the per-op path. Backward is
first order only (it raises under ``create_graph=True``): a Hessian through the supernet (diagnostics)
uses the per-op path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError

aten = torch.ops.aten

#: columns of the op weights that SourceMix reads, in NB201's op order (none is column 0, never computed)
SKIP, CONV1, CONV3, POOL = 1, 2, 3, 4


class SourceMix(torch.autograd.Function):
    """The edge terms leaving one source node: one tensor, shaped like x, per edge that computes an op.

    ``active`` = (skip, conv1, conv3, pool): for each op, the positions (rows of w) of the edges that
    compute it, in order; weight1/bias1 (weight3/bias3) are those edges' convs concatenated in that
    order, stats1 (stats3) their BN running buffers. Soft weights: every edge computes every live op.
    Hard (GDAS): each edge computes its one sampled op, so at most one position per edge.
    """

    @staticmethod
    def forward(ctx, x, w, weight1, bias1, weight3, bias3, stats1, stats3, active, training, momentum, eps):
        skip, conv1, conv3, pool = active
        c = x.shape[1]
        r = torch.relu(x) if conv1 or conv3 else None
        ys, norms, zs = [], [], []
        for col, edges, weight, bias, stats, padding in ((1, conv1, weight1, bias1, stats1, 0),
                                                         (2, conv3, weight3, bias3, stats3, 1)):
            if not edges:
                ys.append(None), norms.append((None, None, True)), zs.append(None)
                continue
            z = F.conv2d(r, weight, bias, padding=padding)  # (N, E_k*C, H, W): every such edge's conv
            # w_e * BN(z_e) as BN with gamma = w_e on edge e's channels: the product is taken inside BN
            gamma = w[list(edges), col].repeat_interleave(c)
            y, norm = _batch_norm(z, gamma, stats, training, momentum, eps)
            ys.append(y), norms.append(norm), zs.append(z)
        del r
        p = _avg_pool(x) if pool else None
        terms = []
        for e in computed_edges(active):
            # t_e = w_skip x + w_conv1 BN(z1_e) + w_conv3 BN(z3_e) + w_pool pool(x), the per-op path's order
            t = x * w[e, 0] if e in skip else None
            for edges, y in zip((conv1, conv3), ys):
                if e in edges:
                    block = y if len(edges) == 1 else y[:, edges.index(e) * c:(edges.index(e) + 1) * c]
                    if t is not None:
                        t.add_(block)
                    else:  # a slice of the stacked channels is strided: its own dense copy
                        t = block if block is y else block.clone(memory_format=torch.channels_last)
            if e in pool:
                t = p * w[e, 3] if t is None else t.addcmul_(p, w[e, 3])
            terms.append(t)
        (m1, s1, train1), (m3, s3, train3) = norms
        ctx.save_for_backward(x, w, weight1, weight3, zs[0], zs[1], m1, s1, m3, s3)
        ctx.has_bias = (bias1 is not None, bias3 is not None)
        ctx.train_stats = (train1, train3)
        ctx.active, ctx.eps = active, eps
        return tuple(terms)

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: the hand-written backward below is not differentiable
            raise ConfigError("second derivatives through the fused NAS-Bench-201 cell are not supported: "
                              "compute them inside `with supernet.using_path('reference'):`")
        x, w, weight1, weight3, z1, z3, m1, s1, m3, s3 = ctx.saved_tensors
        skip, conv1, conv3, pool = ctx.active
        c = x.shape[1]
        need_x, need_w, need_w1, need_b1, need_w3, need_b3 = ctx.needs_input_grad[:6]
        # g_e = dL/dt_e (an unused term has none: zero)
        g = {e: torch.zeros_like(x) if grad is None else grad for e, grad in zip(computed_edges(ctx.active), grads)}

        grad_w = torch.zeros_like(w) if need_w else None
        if need_w:
            for e in skip:
                grad_w[e, 0] = _dot(g[e], x)  # dL/dw_skip,e = <g_e, x>
            if pool:  # recomputed here instead of stored
                p = _avg_pool(x)
                for e in pool:
                    grad_w[e, 3] = _dot(g[e], p)  # dL/dw_pool,e = <g_e, pool x>
                del p
        r = torch.relu(x) if conv1 or conv3 else None  # recomputed
        grad_r = None
        conv_grads = []
        for col, edges, z, mean, invstd, weight, padding, train, has_bias, need_weight, need_bias in (
                (1, conv1, z1, m1, s1, weight1, 0, ctx.train_stats[0], ctx.has_bias[0], need_w1, need_b1),
                (2, conv3, z3, m3, s3, weight3, 1, ctx.train_stats[1], ctx.has_bias[1], need_w3, need_b3)):
            if not edges:
                conv_grads.append((None, None))
                continue
            # BN backward with gamma = w_e on edge e's channels and upstream g_e: one kernel gives dL/dz and,
            # per channel, sum_nhw g_e * BN(z) (gamma's gradient), whose sum over edge e's channels is
            # dL/dw_conv,e = <g_e, BN(z_e)>. The normalised output is recomputed inside from the saved
            # statistics (train) or the running ones (eval).
            index = list(edges)
            gamma = w[index, col].repeat_interleave(c)
            dy = g[edges[0]] if len(edges) == 1 else torch.cat([g[e] for e in edges], dim=1)
            if train:
                dz, dgamma, _ = aten.native_batch_norm_backward(dy, z, gamma, None, None, mean, invstd, True,
                                                                ctx.eps, [True, need_w, False])
            else:  # forward kept the running (mean, var)
                dz, dgamma, _ = aten.native_batch_norm_backward(dy, z, gamma, mean, invstd, None, None, False,
                                                                ctx.eps, [True, need_w, False])
            del dy
            if need_w:
                grad_w[index, col] = dgamma.view(-1, c).sum(1)
            gi, gw, gb = aten.convolution_backward(
                dz, r, weight, [weight.shape[0]] if has_bias else None, [1, 1], [padding, padding], [1, 1],
                False, [0, 0], 1, [need_x, need_weight, need_bias and has_bias])
            del dz
            # the parameters' own (contiguous) layout, whatever layout oneDNN chose for the gradient
            conv_grads.append((None if gw is None else gw.contiguous(), gb))
            if need_x:
                grad_r = gi if grad_r is None else grad_r + gi
        (grad_w1, grad_b1), (grad_w3, grad_b3) = conv_grads

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
                grad_x = grad_x + _avg_pool_backward(g_pool)
        return grad_x, grad_w, grad_w1, grad_b1, grad_w3, grad_b3, None, None, None, None, None, None


def computed_edges(active) -> list[int]:
    """The positions of the edges that compute at least one op, in order (one output each)."""
    return sorted(set().union(*active))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    """AvgPool2d(3, stride 1, padding 1, count_include_pad=False) as a depthwise 3x3 sum over the zero-padded
    input times 1/count, the number of in-bounds taps per position: the same function, but oneDNN's
    depthwise convolution runs it 4-10x faster on CPU than the pooling kernel (benchmarks/search_step.py)."""
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


def _batch_norm(z, gamma, stats, training, momentum, eps):
    """gamma * BN(z), BN without affine over z's channels as BatchNorm2d computes it: batch statistics in
    training or without running buffers (which are then updated), else the running ones. Returns the
    output and what backward needs: (batch mean, batch 1/std, True) or (running mean, running var, False),
    copies."""
    running_mean, running_var = stats if stats is not None else (None, None)
    use_batch = training or running_mean is None
    y, mean, invstd = aten.native_batch_norm(z, gamma, None, running_mean, running_var, use_batch, momentum, eps)
    if not use_batch:  # normalised by the running statistics, which backward reads as they are now
        mean, invstd = running_mean.clone(), running_var.clone()
    return y, (mean, invstd, use_batch)


class _FlatStats:
    """The running buffers of several BatchNorm2d modules as views into one flat tensor per buffer, so one
    batch-norm call over their concatenated channels updates each module's statistics in place."""

    def __init__(self, bns: list[nn.BatchNorm2d]):
        self.bns = bns
        self.views: list[tuple[torch.Tensor, ...]] = []
        self.mean = self.var = self.count = None

    def _current(self) -> bool:
        return bool(self.views) and all(
            bn._buffers["running_mean"] is v[0] and bn._buffers["running_var"] is v[1]
            and bn._buffers["num_batches_tracked"] is v[2] for bn, v in zip(self.bns, self.views))

    def get(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.bns[0].running_mean is None:  # track_running_stats=False
            return None
        if not self._current():  # first use, or the modules were moved/cast/loaded into new tensors
            self.mean = torch.cat([bn.running_mean for bn in self.bns])
            self.var = torch.cat([bn.running_var for bn in self.bns])
            self.count = torch.stack([bn.num_batches_tracked for bn in self.bns])
            self.views, offset = [], 0
            for i, bn in enumerate(self.bns):
                width = bn.num_features
                bn.running_mean = self.mean[offset:offset + width]
                bn.running_var = self.var[offset:offset + width]
                bn.num_batches_tracked = self.count[i]
                self.views.append((bn.running_mean, bn.running_var, bn.num_batches_tracked))
                offset += width
        return self.mean, self.var

    def count_batch(self) -> None:
        """BatchNorm2d counts every training forward in num_batches_tracked."""
        self.count.add_(1)


class SubsetStats:
    """The running buffers of the BNs of some of a source's edges (``positions``), for one SourceMix call:
    the flat buffers themselves when every edge takes part, else a gathered copy written back after it.
    Counts the batch (BatchNorm2d's num_batches_tracked) for exactly those BNs, in training."""

    def __init__(self, flat: _FlatStats, positions: tuple[int, ...], training: bool):
        self.flat, self.positions, self.training = flat, positions, training
        full = flat.get() if positions else None
        self.channels = None
        if full is None or positions == tuple(range(len(flat.bns))):
            self.buffers = full
            return
        width = flat.bns[0].num_features
        self.channels = torch.cat([torch.arange(p * width, (p + 1) * width, device=full[0].device)
                                   for p in positions])
        self.buffers = (full[0].index_select(0, self.channels), full[1].index_select(0, self.channels))

    def write_back(self) -> None:
        if self.buffers is None or not self.training:
            return
        if self.channels is None:
            self.flat.count_batch()
            return
        self.flat.mean.index_copy_(0, self.channels, self.buffers[0])
        self.flat.var.index_copy_(0, self.channels, self.buffers[1])
        self.flat.count[list(self.positions)] += 1
