"""The fused DARTS search cell: the same function as the per-op cell, computed per source node.

Every edge leaving state h_j reads the same tensor, and its ops are (quark0/darts ``cnn/operations.py``,
spaces/darts_ops.py) sep/dil convs that all start with ReLU(h_j), pools each followed by a BN without
affine, a skip (identity, or a FactorizedReduce that starts with ReLU(h_j) too) and ``none``. With op
weights w (edges, ops), the edge term is t_e = sum_k w_ek op_k(h_j) and node i = sum_{j < i} t_{i <- j}.
``fused_cell`` computes it source by source:

* ReLU(h_j) once per source, not once per edge and conv op (5 per edge on the per-op path);
* ``none`` never computed (its weight still enters the relaxation);
* the op weight folded into the op's last BN: every search BN has affine=False, so w * BN(z) is BN(z) with
  gamma = w (one kernel, and no product tensor kept for backward); the edge's own BN module's buffers;
* the pools once per source and stride; in training their BN normalises with the batch's statistics, the
  same for every edge's BN on the same input, so the normalised pool is computed once and each edge's
  running buffers are updated with those statistics (as its own BN would update them);
* channels-last (the supernet's fast path converts the input): oneDNN's convs run 2x faster in it on CPU;
* in training, a sep/dil conv keeps only ReLU(h_j), its weight and its kernels for backward and recomputes
  its inner tensors there (``_RecomputedConvBlocks``); its depthwise convs' input gradients run as forward
  convs, and a strided depthwise conv as the stride-1 conv subsampled (``_DepthwiseConv``).

The recomputing backward is first order; with ``recompute`` off (``DartsSupernet.twice_differentiable``)
the cell is plain autograd and twice differentiable. Same parameters, BN buffers and state_dict as the
per-op path, which the cell falls back to where this would not hold: drop-path, a replaced or changed
candidate module, BN without momentum (cumulative average), P-DARTS' skip dropout.
With partial channels (PC-DARTS) the ops run on the first C/K channels of h_j, as the reference; the
bypass, concatenation and channel shuffle follow per edge, then the edge weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError
from archsearch.spaces.darts_ops import DilConv, FactorizedReduce, SepConv
from archsearch.spaces.ops import Zero
from archsearch.spaces.partial import PartialChannelMixedOp, channel_shuffle

_POOLS = {"max_pool_3x3": nn.MaxPool2d, "avg_pool_3x3": nn.AvgPool2d}


def can_fuse(cell: nn.Module) -> bool:
    """Every edge's candidates are exactly make_search_op's (what fused_cell computes) and no edge drops paths."""
    for edge in cell.edges:
        if edge.drop_prob > 0.0 and edge.training:
            return False
        for name, op in zip(edge.op_names, edge.ops):
            if not _standard(name, op):
                return False
    return True


def _search_bn(bn) -> bool:
    return type(bn) is nn.BatchNorm2d and not bn.affine and bn.momentum is not None


def _dil_conv(op) -> bool:
    if type(op) is not DilConv or len(op) != 4:
        return False
    relu, dw, pw, bn = op
    return (type(relu) is nn.ReLU and type(dw) is nn.Conv2d and type(pw) is nn.Conv2d and dw.bias is None
            and pw.bias is None and dw.groups == dw.in_channels and pw.kernel_size == (1, 1) and pw.stride == (1, 1)
            and dw.padding_mode == pw.padding_mode == "zeros" and _search_bn(bn))


def _standard(name: str, op: nn.Module) -> bool:
    if name == "none":
        return type(op) is Zero
    if name in _POOLS:
        if type(op) is not nn.Sequential or len(op) != 2 or type(op[0]) is not _POOLS[name]:
            return False
        pool = op[0]
        if name == "avg_pool_3x3" and (pool.count_include_pad or pool.divisor_override is not None):
            return False
        return pool.kernel_size == 3 and pool.padding == 1 and not pool.ceil_mode and _search_bn(op[1]) and (
            name == "avg_pool_3x3" or pool.dilation == 1)
    if name == "skip_connect":
        if type(op) is nn.Identity:
            return True
        return (type(op) is FactorizedReduce and type(op.relu) is nn.ReLU and _search_bn(op.bn)
                and op.conv_1.bias is None and op.conv_2.bias is None)
    if name.startswith("sep_conv"):
        return type(op) is SepConv and len(op) == 2 and _dil_conv(op[0]) and _dil_conv(op[1])
    if name.startswith("dil_conv"):
        return _dil_conv(op)
    return False


def _bn(z: torch.Tensor, bn: nn.BatchNorm2d, gamma: torch.Tensor | None, update: bool = True) -> torch.Tensor:
    """gamma * BN(z), BN without affine as ``bn`` computes it (its buffers updated, its batch counted, unless
    ``update`` is False: a recomputation in backward, which normalises with the batch's statistics)."""
    if bn.training and bn.track_running_stats and update:
        bn.num_batches_tracked.add_(1)
    # gamma as a dense (C,) tensor: the channels-last BN backward kernel misreads a stride-0 (expanded)
    # weight (wrong, run-to-run varying input gradients, measured in float64), and runs slower on it
    weight = None if gamma is None else gamma.expand(z.shape[1]).contiguous()
    running_mean, running_var = bn.running_mean, bn.running_var
    if not update and running_mean is not None:  # scratch buffers: the same call (and saved tensors), no update
        running_mean, running_var = torch.zeros_like(running_mean), torch.ones_like(running_var)
    return F.batch_norm(z, running_mean, running_var, weight, None, bn.training or running_mean is None,
                        bn.momentum, bn.eps)


def _conv_blocks(y: torch.Tensor, blocks, w: torch.Tensor, kernels=None, update: bool = True,
                 first_order: bool = False) -> torch.Tensor:
    """w * op(h) for a sep conv (two blocks) or dil conv (one): each block ReLU -> depthwise -> pointwise ->
    BN; ``y`` is ReLU(h), the first block's ReLU, shared by the source's edges. ``kernels``: per block the
    (depthwise, pointwise) weights to use (default: the modules' own). ``first_order``: stride-1 depthwise
    convs through _DepthwiseConv (its backward is not differentiable)."""
    for index, block in enumerate(blocks):
        if index:
            y = torch.relu(y)
        depthwise, pointwise = (block[1].weight, block[2].weight) if kernels is None else kernels[index]
        if first_order and _same_padding(block[1]):  # a strided conv is the stride-1 conv subsampled
            y = _DepthwiseConv.apply(y, depthwise, block[1].padding, block[1].dilation, block[1].stride)
        else:
            y = _conv(y, block[1], depthwise)
        z = _conv(y, block[2], pointwise)
        y = _bn(z, block[3], w if index == len(blocks) - 1 else None, update)
    return y


def _first_order_only() -> None:
    if torch.is_grad_enabled():  # create_graph=True: the backward below is not differentiable
        raise ConfigError("second derivatives through the fused DARTS cell's recomputed convs are not supported: "
                          "compute them inside `with supernet.twice_differentiable():`")


def _format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _same_padding(conv: nn.Conv2d) -> bool:
    """Padding d (k - 1) / 2 (every DARTS depthwise conv): at stride 1 the output has the input's size, and at
    stride s it is that output at every s-th pixel, output i reading input s i - p + d t."""
    return all(2 * p == d * (k - 1) for p, d, k in zip(conv.padding, conv.dilation, conv.kernel_size))


class _DepthwiseConv(torch.autograd.Function):
    """A stride-1, same-size depthwise conv whose input gradient is computed as a forward conv: the
    transposed conv of a stride-1 conv with padding p = d (k - 1) / 2 is the conv with the flipped kernel
    and the same padding and dilation. oneDNN runs a depthwise forward with its depthwise kernels at any
    size and dilation, but the input gradient of a dilated depthwise conv with its generic grouped one:
    2-5x slower (64x16x32x32, channels-last: dil 3x3 1.2 against 0.24 ms, dil 5x5 2.3-5.8 against
    1.3 ms; ONEDNN_VERBOSE names the kernels). The reduction cells' strided depthwise convs run as this
    conv subsampled: their backward (data and weights) was the slowest kernel of the step, 13-19 ms a call
    at 64x32x32x32 against 1-3 ms for the stride-1 conv's, for 4x the forward's (fast) work. The
    subsampling is inside this Function: autograd's own backward of a strided slice zero-fills the full
    gradient in NCHW, which then has to be copied to channels-last (~1 s a DARTS search step). First order
    only."""

    @staticmethod
    def forward(ctx, x, weight, padding, dilation, stride):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation, ctx.stride = padding, dilation, stride
        y = F.conv2d(x, weight, None, 1, padding, dilation, x.shape[1])
        if stride == (1, 1):
            return y
        # kept in the input's format: a strided view would run the pointwise conv after it in NCHW
        return y[:, :, ::stride[0], ::stride[1]].contiguous(memory_format=_format(x))

    @staticmethod
    def backward(ctx, grad):
        _first_order_only()
        x, weight = ctx.saved_tensors
        if ctx.stride == (1, 1):
            grad = grad.contiguous(memory_format=_format(x))
        else:  # the stride-1 output's gradient: the incoming one at every stride-th pixel, zero elsewhere
            full = torch.zeros_like(x, dtype=grad.dtype, memory_format=_format(x))
            full[:, :, ::ctx.stride[0], ::ctx.stride[1]] = grad
            grad = full
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:  # dL/dx = conv(dL/dy, flip(W)): the transposed conv of stride 1
            grad_x = F.conv2d(grad, weight.flip(-1, -2), None, 1, ctx.padding, ctx.dilation, x.shape[1])
        if ctx.needs_input_grad[1]:
            grad_weight = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], list(ctx.padding), list(ctx.dilation), False, [0, 0], x.shape[1],
                [False, True, False])[1]
        return grad_x, grad_weight, None, None, None


class _RecomputedConvBlocks(torch.autograd.Function):
    """_conv_blocks keeping only its inputs: the inner tensors are recomputed in backward.

    Per stride-1 edge this drops 14 activation-sized tensors (a sep conv's depthwise, pointwise and ReLU
    outputs in each of its two blocks, a dil conv's two) for one more forward of those convs in backward.
    The forward updates the BN buffers; the recomputation normalises with the same batch statistics and
    leaves them alone. First order only: a second derivative runs the cell with ``recompute`` off
    (``DartsSupernet.twice_differentiable``)."""

    @staticmethod
    def forward(ctx, r, w, blocks, *kernels):
        ctx.blocks = blocks
        ctx.save_for_backward(r, w, *kernels)
        pairs = list(zip(kernels[::2], kernels[1::2]))
        return _conv_blocks(r, blocks, w, pairs, first_order=True)  # the sums the recomputation repeats

    @staticmethod
    def backward(ctx, grad):
        _first_order_only()
        r, w, *kernels = ctx.saved_tensors
        wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1]] + list(ctx.needs_input_grad[3:])
        inputs = [t.detach().requires_grad_(need) for t, need in zip([r, w, *kernels], wanted)]
        with torch.enable_grad():
            out = _conv_blocks(inputs[0], ctx.blocks, inputs[1], list(zip(inputs[2::2], inputs[3::2])), update=False,
                               first_order=True)  # as the forward computed it
        asked = [t for t, need in zip(inputs, wanted) if need]
        grads = iter(torch.autograd.grad(out, asked, grad, allow_unused=True) if asked else [])
        r_grad, w_grad, *kernel_grads = [next(grads) if need else None for need in wanted]
        return (r_grad, w_grad, None, *kernel_grads)


def _recomputed_conv_blocks(r: torch.Tensor, blocks, w: torch.Tensor, recompute: bool) -> torch.Tensor:
    """w * op(h) of a sep/dil conv, recomputed in backward (``_RecomputedConvBlocks``) where a graph is built in
    training mode and ``recompute`` is on."""
    if not (recompute and torch.is_grad_enabled() and blocks[-1][3].training):
        return _conv_blocks(r, blocks, w)
    kernels = [p for block in blocks for p in (block[1].weight, block[2].weight)]
    return _RecomputedConvBlocks.apply(r, w, blocks, *kernels)


def _conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor | None = None) -> torch.Tensor:
    return F.conv2d(x, conv.weight if weight is None else weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)


class _Source:
    """What the edges leaving one state share: ReLU(h) and, per pool and stride, the (normalised) pool."""

    def __init__(self, x: torch.Tensor, recompute: bool = True):
        self.x = x
        self.recompute = recompute  # the convs' inner tensors recomputed in backward (first order only)
        self._relu: torch.Tensor | None = None
        self._pools: dict[tuple, torch.Tensor] = {}
        self._normalised: dict[tuple, torch.Tensor] = {}
        self._stats: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def relu(self) -> torch.Tensor:
        if self._relu is None:
            self._relu = torch.relu(self.x)
        return self._relu

    def pool(self, name: str, pool: nn.Module) -> torch.Tensor:
        key = (name, pool.stride)
        if key not in self._pools:
            self._pools[key] = pool(self.x)
        return self._pools[key]

    def pool_term(self, name: str, op: nn.Sequential, w: torch.Tensor) -> torch.Tensor:
        """w * BN(pool(h)) with the edge's BN. In training the batch statistics normalise, the same for
        every edge: computed once, and each later edge's buffers updated with them."""
        pool, bn = op
        p = self.pool(name, pool)
        if not bn.training:  # each edge's own running statistics normalise
            return _bn(p, bn, w)
        key = (name, pool.stride, bn.eps)
        if key not in self._normalised:
            n, mean, invstd = torch.native_batch_norm(p, None, None, bn.running_mean, bn.running_var, True,
                                                      bn.momentum, bn.eps)
            self._normalised[key] = n
            self._stats[key] = (mean.detach(), invstd.detach())
            if bn.track_running_stats:
                bn.num_batches_tracked.add_(1)
        elif bn.running_mean is not None:
            mean, invstd = self._stats[key]
            count = p.numel() // p.shape[1]
            with torch.no_grad():  # BN's update: running = (1 - m) running + m batch (unbiased variance)
                var = (invstd.pow(-2) - bn.eps) * (count / max(count - 1, 1))
                bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), bn.momentum)
                bn.running_var.lerp_(var.to(bn.running_var.dtype), bn.momentum)
                bn.num_batches_tracked.add_(1)
        return self._normalised[key] * w


def _op_term(src: _Source, name: str, op: nn.Module, w: torch.Tensor) -> torch.Tensor:
    """w * op(h), the weight folded into the op's last BN where it has one."""
    if name in _POOLS:
        return src.pool_term(name, op, w)
    if name == "skip_connect":
        if type(op) is nn.Identity:
            return src.x * w
        r = src.relu()  # FactorizedReduce: relu, two 1x1 convs (the second shifted by a pixel), BN
        shifted = r[:, :, 1:, 1:]
        height, width = r.shape[-2:]
        if height % 2 or width % 2:
            shifted = F.pad(shifted, (0, width % 2, 0, height % 2))
        memory_format = _format(r)  # subsampled views made dense in the input's format (NCHW convs are slower)
        z = torch.cat([_conv(r[:, :, ::2, ::2].contiguous(memory_format=memory_format), op.conv_1),
                       _conv(shifted[:, :, ::2, ::2].contiguous(memory_format=memory_format), op.conv_2)], dim=1)
        return _bn(z, op.bn, w)
    if name.startswith("sep_conv"):
        return _recomputed_conv_blocks(src.relu(), list(op), w, src.recompute)
    if name.startswith("dil_conv"):
        return _recomputed_conv_blocks(src.relu(), [op], w, src.recompute)
    return op(src.x) * w  # none (a hard choice of it: zeros of the op's output shape)


def _edge_term(src: _Source, edge: nn.Module, w: torch.Tensor, hard: int | None) -> torch.Tensor | None:
    """sum_k w_k op_k(h) over the live ops (soft) or the chosen op plus the other weights as a constant
    (hard, straight-through as MixedOp); None where nothing is computed."""
    if hard is not None:
        return _op_term(src, edge.op_names[hard], edge.ops[hard], w[hard]) + (w.sum() - w[hard])
    term = None
    for k, (name, op) in enumerate(zip(edge.op_names, edge.ops)):
        if name == "none" or not edge.alive[k]:
            continue
        y = _op_term(src, name, op, w[k])
        term = y if term is None else term + y
    return term


def fused_cell(cell: nn.Module, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
               hard: list[int] | None, edge_weights: torch.Tensor | None) -> torch.Tensor:
    """The DARTS search cell (darts_supernet.SearchCell.forward), computed source by source."""
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    rows = {}  # source -> [(row, target)]
    row = 0
    for node in range(cell.steps):
        for source in range(node + 2):
            rows.setdefault(source, []).append((row, node + 2))
            row += 1
    incoming: dict[int, list[torch.Tensor]] = {}
    for source in range(cell.steps + 1):
        if source >= 2:
            states.append(_node(incoming[source]))
        h = states[source]
        partial = isinstance(cell.edges[rows[source][0][0]], PartialChannelMixedOp)
        ops_input = h
        if partial:  # the computed channels, dense in h's format (a strided slice would run its convs in NCHW)
            ops_input = h[:, :h.shape[1] // cell.edges[rows[source][0][0]].k].contiguous(memory_format=_format(h))
        src = _Source(ops_input, cell.recompute)
        for r, target in rows[source]:
            edge, w = cell.edges[r], weights[r]
            scale = None if edge_weights is None else edge_weights[r]
            if scale is not None and not partial:  # t_e * b_e = sum_k (w_ek b_e) op_k: b folded into w
                w = w * scale
            term = _edge_term(src, edge, w, None if hard is None else hard[r])
            if term is None:  # every op removed (XNAS): the edge's zeros, as its MixedOp gives them
                term = edge(h, weights[r])
                incoming.setdefault(target, []).append(term if scale is None else term * scale)
                continue
            if partial:
                term = _bypass(h, _dense_gradient(term), edge.k)
                if scale is not None:
                    term = term * scale
            incoming.setdefault(target, []).append(term)
    states.append(_node(incoming[cell.steps + 1]))
    return torch.cat(states[-cell.multiplier:], dim=1)


def _bypass(h: torch.Tensor, mixed: torch.Tensor, k: int) -> torch.Tensor:
    """PartialChannelMixedOp's tail: the channels not computed bypass the ops (max-pooled where the edge
    strides), concatenated after the mixed ones, shuffled in K groups."""
    bypass = h[:, h.shape[1] // k:]
    if mixed.shape[-2:] != h.shape[-2:]:
        if bypass.shape[1]:
            bypass = F.max_pool2d(bypass, 2, 2, ceil_mode=True)
        else:
            bypass = bypass.new_empty(bypass.shape[0], 0, *mixed.shape[-2:])
    return channel_shuffle(torch.cat([mixed, bypass], dim=1), k)


def _node(terms: list[torch.Tensor]) -> torch.Tensor:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return _dense_gradient(total)


def _dense_gradient(t: torch.Tensor) -> torch.Tensor:
    """``t``, its gradient made dense in ``t``'s own memory format. The cell's output concatenates the last
    nodes, and PC-DARTS' edge concatenates and shuffles its ops' output with the bypass, so those gradients
    arrive as channel slices (strided, in neither format), which every op's BN backward then reads through a
    generic path (a node's sum, an edge's ops, all get the same tensor): a gamma-scaled BN backward took
    2.6 ms at 64x16x32x32 in the network instead of 0.3 ms (torch.profiler, two threads). One copy per node
    or partial edge makes them all dense."""
    if t.requires_grad:
        memory_format = _format(t)

        def dense(grad: torch.Tensor) -> torch.Tensor:
            return grad if grad.is_contiguous(memory_format=memory_format) else grad.contiguous(
                memory_format=memory_format)

        t.register_hook(dense)
    return t
