"""The fused NAS-Bench-201 search cell: the same function as the per-op cell, computed per source node.

In one cell, every edge leaving node j reads the same tensor x_j. With soft op weights w (edges, ops),
the edges e = (i <- j) leaving j contribute

    t_e = w[e, skip] * x_j + w[e, conv1] * BN(conv1_e(relu x_j)) + w[e, conv3] * BN(conv3_e(relu x_j))
          + w[e, pool] * avgpool(x_j)                                           (none: w * 0, skipped)

and node i = sum_{j < i} t_{i <- j}. ``SourceMix`` computes all t_e of one source at once:

* relu(x_j) and avgpool(x_j) once per source, not once per edge and op;
* the 1x1 (3x3) convs of all E edges leaving j as one conv with E*C output channels (weights and biases
  concatenated in edge order), and one batch norm over those E*C channels. BN statistics are per channel,
  so this is exactly the E separate BNs; the running buffers of the E BN modules are views into one flat
  buffer per source (``_FlatStats``), so running statistics are updated exactly as the per-edge BNs would
  and the modules (and the state_dict) keep holding them;
* memory: backward keeps only x_j and the conv outputs (pre-BN) with each channel's mean and 1/std. The
  ReLU, the pooling, the normalised BN outputs and the products with the weights are recomputed in
  backward (they are elementwise or a 3x3 average, cheap next to the convs), where the per-op path stores
  every one of them for every edge.

Used only where it is the same maths: soft weights (no hard straight-through index), full channels, no
drop-path, every op alive. Everything else takes the per-op path. Backward is first order only (it
raises under ``create_graph=True``): a Hessian through the supernet (diagnostics) uses the per-op path.
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
    """All edge terms leaving one source node: returns (t_1, ..., t_E), each shaped like x."""

    @staticmethod
    def forward(ctx, x, w, weight1, bias1, weight3, bias3, stats1, stats3, training, momentum, eps):
        # w: (E, 4) op weights of (skip, conv1, conv3, pool) per edge; stats*: (mean, var) flat buffers or None
        c = x.shape[1]
        r = torch.relu(x)
        z1 = F.conv2d(r, weight1, bias1)  # (N, E*C, H, W): every edge's 1x1 conv
        z3 = F.conv2d(r, weight3, bias3, padding=1)  # every edge's 3x3 conv
        del r
        y1, norm1 = _batch_norm(z1, stats1, training, momentum, eps)
        y3, norm3 = _batch_norm(z3, stats3, training, momentum, eps)
        p = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        terms = []
        for e in range(w.shape[0]):
            # t_e = w_skip x + w_conv1 BN(z1_e) + w_conv3 BN(z3_e) + w_pool pool(x), the per-op path's order,
            # as fused multiply-adds (one pass each)
            channels = slice(e * c, (e + 1) * c)
            t = x * w[e, 0]
            t.addcmul_(y1[:, channels], w[e, 1])
            t.addcmul_(y3[:, channels], w[e, 2])
            terms.append(t.addcmul_(p, w[e, 3]))
        ctx.save_for_backward(x, w, weight1, weight3, z1, z3, *norm1[:2], *norm3[:2])
        ctx.has_bias = (bias1 is not None, bias3 is not None)
        ctx.train_stats = (norm1[2], norm3[2])
        ctx.eps = eps
        return tuple(terms)

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: the hand-written backward below is not differentiable
            raise ConfigError("second derivatives through the fused NAS-Bench-201 cell are not supported: "
                              "compute them inside `with supernet.using_path('reference'):`")
        x, w, weight1, weight3, z1, z3, m1, s1, m3, s3 = ctx.saved_tensors
        c = x.shape[1]
        need_x, need_w, need_w1, need_b1, need_w3, need_b3 = ctx.needs_input_grad[:6]
        # g_e = dL/dt_e (an unused term has none: zero)
        grads = [torch.zeros_like(x) if g is None else g for g in grads]

        grad_w = torch.zeros_like(w) if need_w else None
        # recomputed here instead of stored: relu(x), pool(x)
        if need_w:
            p = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
            for e, g in enumerate(grads):
                grad_w[e, 0] = _dot(g, x)  # dL/dw_skip,e = <g_e, x>
                grad_w[e, 3] = _dot(g, p)  # dL/dw_pool,e = <g_e, pool x>
            del p
        conv_grads = []
        for col, z, mean, invstd, weight, padding, train in (
                (1, z1, m1, s1, weight1, 0, ctx.train_stats[0]), (2, z3, m3, s3, weight3, 1, ctx.train_stats[1])):
            # BN backward read as that of gamma * BN(z) with gamma = w_e on edge e's channels and upstream g_e:
            # one kernel gives dL/dz (gamma-scaled) and, per channel, sum_nhw g_e * BN(z) (gamma's gradient),
            # whose sum over edge e's channels is dL/dw_conv,e = <g_e, BN(z_e)>. The normalised output is
            # recomputed inside from the saved statistics (train) or the running ones (eval).
            gamma = w[:, col].repeat_interleave(c)
            dy = torch.cat(grads, dim=1)
            if train:
                dz, dgamma, _ = aten.native_batch_norm_backward(dy, z, gamma, None, None, mean, invstd, True,
                                                                ctx.eps, [True, need_w, False])
            else:  # forward kept the running (mean, var)
                dz, dgamma, _ = aten.native_batch_norm_backward(dy, z, gamma, mean, invstd, None, None, False,
                                                                ctx.eps, [True, need_w, False])
            del dy
            if need_w:
                grad_w[:, col] = dgamma.view(-1, c).sum(1)
            conv_grads.append((dz, weight, padding))

        grad_x = None
        r = torch.relu(x)
        grad_r = None
        results = []
        for (dz, weight, padding), has_bias, (need_weight, need_bias) in zip(
                conv_grads, ctx.has_bias, ((need_w1, need_b1), (need_w3, need_b3))):
            gi, gw, gb = aten.convolution_backward(
                dz, r, weight, [weight.shape[0]] if has_bias else None, [1, 1], [padding, padding], [1, 1],
                False, [0, 0], 1, [need_x, need_weight, need_bias and has_bias])
            # the parameters' own (contiguous) layout, whatever layout oneDNN chose for the gradient
            results.append((None if gw is None else gw.contiguous(), gb))
            if need_x:
                grad_r = gi if grad_r is None else grad_r + gi
        (grad_w1, grad_b1), (grad_w3, grad_b3) = results
        if need_x:
            grad_x = aten.threshold_backward(grad_r, r, 0)  # relu: dL/dx = dL/dr where x > 0
            g_pool = grads[0] * w[0, 3]
            for e, g in enumerate(grads):
                grad_x.addcmul_(g, w[e, 0])  # skip: sum_e w_skip,e g_e
                if e:
                    g_pool.addcmul_(g, w[e, 3])
            # pool: its transpose applied to sum_e w_pool,e g_e
            grad_x = grad_x + aten.avg_pool2d_backward(g_pool, x, [3, 3], [1, 1], [1, 1], False, False, None)
        return grad_x, grad_w, grad_w1, grad_b1, grad_w3, grad_b3, None, None, None, None, None


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b) in one pass when both are dense in the same layout (the usual case here), else two."""
    if a.stride() == b.stride() and (a.is_contiguous() or a.is_contiguous(memory_format=torch.channels_last)):
        flat = (a.numel(),)
        return torch.dot(a.as_strided(flat, (1,)), b.as_strided(flat, (1,)))
    return (a * b).sum()


def _batch_norm(z, stats, training, momentum, eps):
    """BN without affine over z's channels, as BatchNorm2d computes it: batch statistics in training or
    without running buffers (which are then updated), else the running ones. Returns the output and what
    backward needs: (batch mean, batch 1/std, True) or (running mean, running var, False), copies."""
    running_mean, running_var = stats if stats is not None else (None, None)
    use_batch = training or running_mean is None
    y, mean, invstd = aten.native_batch_norm(z, None, None, running_mean, running_var, use_batch, momentum, eps)
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
