"""The NAS-Bench-201 search supernet (xautodl's TinyNetwork with SearchCell): one (6, 5) alpha shared by all
cells, each cell computed per op (the reference path) or fused per source node (nb201_fused.py).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from archsearch.groundtruth.nb201_arch import EDGES, NUM_NODES, OPS
from archsearch.spaces.base import positive_sizes
from archsearch.spaces.nb201_fused import CONV1, CONV3, POOL, SKIP, ConvEdge, SourceMix, SourcePlan
from archsearch.spaces.nb201_network import NB201Skeleton, make_op
from archsearch.spaces.ops import ReLUConvBN, Zero
from archsearch.spaces.partial import build_mixed_op, check_partial_channels, kept_ops
from archsearch.spaces.supernet import Supernet

#: the alpha rows of the edges leaving each source node (the fused cell computes them together)
OUT_EDGES = tuple(tuple(k for k, (_, s) in enumerate(EDGES) if s == j) for j in range(NUM_NODES - 1))


class SearchCell(nn.Module):
    """A supernet cell: every edge is a MixedOp over all 5 ops (affine=False, as the benchmark); with
    ``partial_channels=K`` a PC-DARTS partial-channel mixed op (spaces/partial.py).

    ``fused`` (the default): where the channels are full, drop-path off and the candidates the standard
    modules, the cell computes all edges leaving one node at once (nb201_fused.SourceMix), soft weights
    (every live op) and hard ones (GDAS: the sampled op) alike, the same function with the same parameters
    and BN buffers; otherwise, or with ``fused=False``, every op of every edge is computed by its own
    module (the reference path).
    """

    def __init__(self, channels: int, track_running_stats: bool, partial_channels: int | None = None):
        super().__init__()
        self.edges = nn.ModuleList(
            build_mixed_op(OPS, lambda op, width: make_op(op, width, False, track_running_stats), channels,
                           partial_channels)
            for _ in EDGES
        )
        self.partial_channels = partial_channels
        self.fused = True

    def forward(self, x, weights: torch.Tensor, hard: list[int] | None = None,
                edge_weights: torch.Tensor | None = None):
        if self._can_fuse():
            return self._forward_fused(x, weights, hard, edge_weights)
        nodes = [x]
        k = 0
        for target in range(1, NUM_NODES):
            total = None
            for source in range(target):
                term = self.edges[k](nodes[source], weights[k], None if hard is None else hard[k])
                if edge_weights is not None:  # PC-DARTS' edge normalisation over the node's incoming edges
                    term = term * edge_weights[k]
                total = term if total is None else total + term
                k += 1
            nodes.append(total)
        return nodes[-1]

    # -- the fused path ---------------------------------------------------------------------------
    def _can_fuse(self) -> bool:
        if not self.fused or self.partial_channels is not None:
            return False
        for edge in self.edges:
            if edge.drop_prob > 0.0 and self.training:
                return False
            if not _standard_ops(edge.ops):  # a candidate was replaced or changed: only its module knows it
                return False
        return True

    def _conv_bn(self, k: int, op: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
        relu_conv_bn = self.edges[k].ops[op]
        return relu_conv_bn[1], relu_conv_bn[2]

    def _active(self, rows, hard) -> tuple[tuple[int, ...], ...]:
        """For skip, conv1, conv3 and pool, the positions in ``rows`` of the edges that compute it: the
        live ops (soft weights; none is never computed) or the sampled op (hard)."""
        ops = (SKIP, CONV1, CONV3, POOL)
        if hard is None:
            return tuple(tuple(pos for pos, k in enumerate(rows) if self.edges[k].alive[op]) for op in ops)
        return tuple(tuple(pos for pos, k in enumerate(rows) if hard[k] == op) for op in ops)

    def _plan(self, rows, hard) -> tuple[SourcePlan, list[torch.Tensor]]:
        """What the SourceMix of the edges ``rows`` computes, and its conv parameters in order."""
        active = self._active(rows, hard)
        convs, params = [], []
        for pos in range(len(rows)):  # edge by edge: backward then keeps an edge's two BNs together
            for op, padding in ((CONV1, 0), (CONV3, 1)):
                column = op - 1  # w holds (skip, conv1, conv3, pool): the op index less the uncomputed none
                if pos not in active[column]:
                    continue
                conv, bn = self._conv_bn(rows[pos], op)
                convs.append(ConvEdge(pos, column, padding, conv.bias is not None, bn))
                params.append(conv.weight)
                if conv.bias is not None:
                    params.append(conv.bias)
        return SourcePlan(active, tuple(convs), self.training), params

    def _forward_fused(self, x, weights, hard, edge_weights):
        # node i = sum_{j<i} t_{i<-j}; the terms of every edge leaving node j come from one SourceMix
        incoming: dict[int, list[torch.Tensor]] = {target: [] for target in range(1, NUM_NODES)}
        constants: dict[int, list[torch.Tensor]] = {target: [] for target in range(1, NUM_NODES)}
        # channels-last: oneDNN's convolutions are 2-5x faster in it on CPU
        nodes = [x.contiguous(memory_format=torch.channels_last)]
        for source, rows in enumerate(OUT_EDGES):
            if source > 0:
                nodes.append(_node(incoming[source], constants[source], nodes[0]))
            index = _index(rows, weights.device)
            w_edges = weights.index_select(0, index)
            scale = None if edge_weights is None else edge_weights.index_select(0, index)
            plan, params = self._plan(rows, hard)
            edges = plan.edges
            shift = None
            if hard is not None:
                # straight-through (as the per-op path): the weights of the ops not run are numerically 0
                # and are added as constants, so that every alpha still receives its gradient; SourceMix
                # adds them to the terms it computes, the cell to the nodes of the edges it does not
                chosen = _index(tuple(hard[k] for k in rows), weights.device).unsqueeze(1)
                shift = w_edges.sum(1) - w_edges.gather(1, chosen).squeeze(1)
                if scale is not None:
                    shift = shift * scale
                for pos, k in enumerate(rows):
                    if pos not in edges:
                        constants[EDGES[k][0]].append(shift[pos])
            w = w_edges[:, 1:]  # (E, 4): skip, conv1, conv3, pool (none is never computed)
            if scale is not None:  # PC-DARTS edge normalisation: t_e * b_e = sum_k (w_ek b_e) op_k
                w = w * scale.unsqueeze(1)
            if not edges:  # every edge from here is `none`
                continue
            out = SourceMix.apply(nodes[source], w, shift, plan, *params)
            for term, pos in zip(out, edges):
                incoming[EDGES[rows[pos]][0]].append(term)
        return _node(incoming[NUM_NODES - 1], constants[NUM_NODES - 1], nodes[0])


@functools.lru_cache(maxsize=256)
def _index(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):  # cached: a tensor made under inference mode would be an inference tensor
        return torch.tensor(values, device=device)


def _standard_ops(ops: nn.ModuleList) -> bool:
    """The edge's candidates are exactly make_op's (what SourceMix computes), BN momentum set."""
    zero, skip, conv1, conv3, pool = ops
    if type(zero) is not Zero or type(skip) is not nn.Identity or type(pool) is not nn.AvgPool2d:
        return False
    if (pool.kernel_size, pool.stride, pool.padding, pool.count_include_pad, pool.ceil_mode,
            pool.divisor_override) != (3, 1, 1, False, False, None):
        return False
    for relu_conv_bn, kernel in ((conv1, 1), (conv3, 3)):
        if type(relu_conv_bn) is not ReLUConvBN or len(relu_conv_bn) != 3:
            return False
        relu, conv, bn = relu_conv_bn
        if type(relu) is not nn.ReLU or type(conv) is not nn.Conv2d or type(bn) is not nn.BatchNorm2d:
            return False
        if (conv.kernel_size != (kernel, kernel) or conv.stride != (1, 1) or conv.padding != ((kernel - 1) // 2,) * 2
                or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros"):
            return False
        if bn.affine or bn.momentum is None:  # cumulative-average BN: kept on the per-op path
            return False
    return True


def _node(terms: list[torch.Tensor], constants: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """A node: the sum of its incoming terms (zeros if none computes an op) plus the straight-through
    constants of the hard path. Each term is a SourceMix output that nothing else reads or saved for
    backward, so the sum accumulates in place in the first (no new tensor per node)."""
    total = terms[0] if terms else torch.zeros_like(like)
    for term in terms[1:]:
        total = total.add_(term)
    if constants:
        total = total.add_(constants[0] if len(constants) == 1 else torch.stack(constants).sum())
    return total


class NB201Supernet(Supernet):
    """The NAS-Bench-201 search supernet: one (6, 5) alpha shared by all 15 cells.

    PC-DARTS options: ``partial_channels=K``; ``edge_normalization``: a beta per edge, each node's incoming
    edges weighed by a softmax over their betas (node 1 has one incoming edge, whose weight is always 1).

    ``exclude_ops``: ops alpha has no column for; they weigh 0 (the cells, fused or not, still read all 5
    columns, and ``none`` is never computed anyway). FairDARTS leaves out ``none`` (docs/fairdarts-dscd.md).
    """

    def __init__(self, C=16, N=5, num_classes=10, relaxation=None, track_running_stats=True, in_channels=3,
                 partial_channels=None, edge_normalization=False, exclude_ops=()):
        super().__init__({"cell": (len(EDGES), len(OPS))}, OPS, relaxation,
                         kept_ops(OPS, exclude_ops) if exclude_ops else None)
        (C,) = positive_sizes(C=C)  # before C is multiplied below
        check_partial_channels([C, 2 * C, 4 * C], partial_channels)
        self.net = NB201Skeleton(C, N, num_classes, lambda c: SearchCell(c, track_running_stats, partial_channels),
                             in_channels)
        if edge_normalization:
            self.enable_edge_normalization([target for target in range(1, NUM_NODES)])

    def forward(self, x):
        weights = self.op_weights()
        hard = self.hard_indices(weights)["cell"]
        w, edges = weights["cell"], self.edge_weights()["cell"]
        self.net.check_input(x)
        if self.path == "fast":  # the whole network in channels-last (see SearchCell)
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.net.stem(x)
        for cell in self.net.cells:
            x = cell(x, w, hard, edges) if isinstance(cell, SearchCell) else cell(x)
        return self.net.classify(x)
