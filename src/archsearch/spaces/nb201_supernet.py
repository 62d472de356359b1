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
#: the alpha rows of the edges entering each node
IN_EDGES = {i: tuple(k for k, (t, _) in enumerate(EDGES) if t == i) for i in range(1, NUM_NODES)}
#: the NB201 op indices SourceMix computes, in its w's column order
_FUSED_OPS = (SKIP, CONV1, CONV3, POOL)


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
        self._plans: dict = {}  # (source, ops, shifted, training) -> (SourcePlan, conv parameters)
        self._signature: tuple = ()  # the modules those plans hold (_can_fuse)

    def forward(self, x, weights: torch.Tensor, hard: list[int] | None = None,
                edge_weights: torch.Tensor | None = None, mix: MixWeights | None = None):
        """``mix``: the forward's op weights as fused cells read them, shared by every cell of the supernet
        (NB201Supernet.forward); made here if not handed in."""
        if self._can_fuse():
            return self._forward_fused(x, mix or MixWeights(weights, hard, edge_weights))
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
        found = []
        for edge in self.edges:
            if edge.drop_prob > 0.0 and self.training:
                return False
            modules = _standard_ops(edge.ops)
            if modules is None:  # a candidate was replaced or changed: only its module knows it
                return False
            found.extend(modules)
        # the plans below hold these modules and parameters: made again when any of them is replaced
        signature = tuple(map(id, found))
        if signature != self._signature:
            self._plans, self._signature = {}, signature
        return True

    def _active(self, rows) -> tuple[tuple[int, ...], ...]:
        """Soft weights: for skip, conv1, conv3 and pool, the positions in ``rows`` of the edges where that
        op is live (none is never computed)."""
        return tuple(tuple(pos for pos, k in enumerate(rows) if self.edges[k].alive[op]) for op in _FUSED_OPS)

    def _plan(self, source: int, active, shifted) -> tuple[SourcePlan, list[torch.Tensor]]:
        """What the SourceMix of the edges leaving ``source`` computes, and its conv parameters in order;
        made once per (source, ops, training) and kept while the cell's modules stay the same."""
        key = (source, active, shifted, self.training)
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        rows = OUT_EDGES[source]
        convs, params = [], []
        for pos in range(len(rows)):  # edge by edge: backward then keeps an edge's two BNs together
            for op, padding in ((CONV1, 0), (CONV3, 1)):
                column = op - 1  # w holds (skip, conv1, conv3, pool): the op index less the uncomputed none
                if pos not in active[column]:
                    continue
                relu_conv_bn = self.edges[rows[pos]].ops[op]
                conv, bn = relu_conv_bn[1], relu_conv_bn[2]
                convs.append(ConvEdge(pos, column, padding, conv.bias is not None, bn))
                params.append(conv.weight)
                if conv.bias is not None:
                    params.append(conv.bias)
        self._plans[key] = SourcePlan(active, tuple(convs), self.training, shifted), params
        return self._plans[key]

    def _forward_fused(self, x, mix: MixWeights):
        # node i = sum_{j<i} t_{i<-j}; the terms of every edge leaving node j come from one SourceMix
        incoming: dict[int, list[torch.Tensor]] = {target: [] for target in range(1, NUM_NODES)}
        # channels-last: oneDNN's convolutions are 2-5x faster in it on CPU
        nodes = [x.contiguous(memory_format=torch.channels_last)]
        for source, rows in enumerate(OUT_EDGES):
            if source > 0:
                nodes.append(_node(incoming[source], mix.constant(source), nodes[0]))
            w, active, shift, shifted = mix.source(source)
            plan, params = self._plan(source, self._active(rows) if active is None else active, shifted)
            if not plan.edges:  # every edge from here is `none`
                continue
            out = SourceMix.apply(nodes[source], w, shift, plan, *params)
            for term, pos in zip(out, plan.edges):
                incoming[EDGES[rows[pos]][0]].append(term)
        return _node(incoming[NUM_NODES - 1], mix.constant(NUM_NODES - 1), nodes[0])


class MixWeights:
    """One forward's op weights as the fused cells read them, per source node: the (E, 4) weights of the
    edges leaving it (skip, conv1, conv3, pool; edge-normalised), and on the hard path (GDAS) the sampled
    ops and the straight-through constants. Every cell reads the same alpha, so this is made once per
    forward and shared, with its autograd nodes, by all of them.

    The constants: a hard edge's term is op(x) * w_h + c_e, c_e = sum_k w_k - w_h (numerically 0, there for
    alpha's gradient). Only their sum reaches node i, so c_i = sum_{e -> i} c_e is added once per node: as
    the BN beta of one conv edge into i (free), else to the node's sum (one pass), rather than once per edge.
    """

    def __init__(self, weights: torch.Tensor, hard: list[int] | None, edge_weights: torch.Tensor | None):
        self.weights, self.hard, self.edge_weights = weights, hard, edge_weights
        self._sources: list | None = None
        self._constants: dict[int, torch.Tensor] = {}

    def source(self, source: int):
        """(w, active or None (soft: each cell's own live ops), shift or None, shifted positions)."""
        if self._sources is None:
            self._sources = self._build()
        return self._sources[source]

    def constant(self, target: int) -> torch.Tensor | None:
        """The straight-through constant node ``target`` adds to its sum itself (no conv edge carries it)."""
        if self._sources is None:
            self._sources = self._build()
        return self._constants.get(target)

    def _build(self) -> list:
        weights, hard, scale, device = self.weights, self.hard, self.edge_weights, self.weights.device
        if hard is not None:
            chosen = _index(tuple(hard), device).unsqueeze(1)
            rest = weights.sum(1) - weights.gather(1, chosen).squeeze(1)  # c_e
            if scale is not None:
                rest = rest * scale
            carriers = {}  # target -> the first conv edge into it, in the order the SourceMix calls run
            for k, (target, _) in enumerate(EDGES):
                if hard[k] in (CONV1, CONV3):
                    carriers.setdefault(target, k)
            node_constant = {target: rest.index_select(0, _index(edges, device)).sum()
                             for target, edges in IN_EDGES.items()}  # c_i
            self._constants = {t: c for t, c in node_constant.items() if t not in carriers}
        sources = []
        for source, rows in enumerate(OUT_EDGES):
            index = _index(rows, device)
            w = weights.index_select(0, index)[:, 1:]  # (E, 4): skip, conv1, conv3, pool (none: never computed)
            if scale is not None:  # PC-DARTS edge normalisation: t_e * b_e = sum_k (w_ek b_e) op_k
                w = w * scale.index_select(0, index).unsqueeze(1)
            if hard is None:
                sources.append((w, None, None, ()))
                continue
            active = tuple(tuple(pos for pos, k in enumerate(rows) if hard[k] == op) for op in _FUSED_OPS)
            mine = [(pos, EDGES[k][0]) for pos, k in enumerate(rows) if carriers.get(EDGES[k][0]) == k]
            shift = torch.stack([node_constant[target] for _, target in mine]) if mine else None
            sources.append((w, active, shift, tuple(pos for pos, _ in mine)))
        return sources


@functools.lru_cache(maxsize=256)
def _index(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):  # cached: a tensor made under inference mode would be an inference tensor
        return torch.tensor(values, device=device)


def _standard_ops(ops: nn.ModuleList) -> list | None:
    """The edge's candidates are exactly make_op's (what SourceMix computes), BN momentum set: then the
    modules and parameters a plan holds (the convs, their weights and biases, the BNs), else None."""
    zero, skip, conv1, conv3, pool = ops
    if type(zero) is not Zero or type(skip) is not nn.Identity or type(pool) is not nn.AvgPool2d:
        return None
    if (pool.kernel_size, pool.stride, pool.padding, pool.count_include_pad, pool.ceil_mode,
            pool.divisor_override) != (3, 1, 1, False, False, None):
        return None
    held = []
    for relu_conv_bn, kernel in ((conv1, 1), (conv3, 3)):
        if type(relu_conv_bn) is not ReLUConvBN or len(relu_conv_bn) != 3:
            return None
        relu, conv, bn = relu_conv_bn
        if type(relu) is not nn.ReLU or type(conv) is not nn.Conv2d or type(bn) is not nn.BatchNorm2d:
            return None
        if (conv.kernel_size != (kernel, kernel) or conv.stride != (1, 1) or conv.padding != ((kernel - 1) // 2,) * 2
                or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros"):
            return None
        if bn.affine or bn.momentum is None:  # cumulative-average BN: kept on the per-op path
            return None
        held += [relu_conv_bn, conv, conv.weight, conv.bias, bn]
    return held


def _node(terms: list[torch.Tensor], constant: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A node: the sum of its incoming terms (zeros if none computes an op) plus, on the hard path, the
    straight-through constant no conv edge carried (MixWeights). Each term is a SourceMix output that
    nothing else reads or saved for backward, so the sum accumulates in place in the first."""
    total = terms[0] if terms else torch.zeros_like(like)
    for term in terms[1:]:
        total = total.add_(term)
    if constant is not None:
        total = total.add_(constant)
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
        mix = MixWeights(w, hard, edges)  # made on first use, shared by every fused cell
        for cell in self.net.cells:
            x = cell(x, w, hard, edges, mix) if isinstance(cell, SearchCell) else cell(x)
        return self.net.classify(x)
