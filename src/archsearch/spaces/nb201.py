"""NAS-Bench-201 (Dong & Yang, ICLR 2020): a cell of 4 nodes and 6 edges, 5 candidate ops.

Built exactly as the benchmark's reference code (xautodl 1.0.0) builds it; see docs/spaces.md.
The 6 edges, in the benchmark's (lexicographically sorted) order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from archsearch.errors import InvalidGenotypeError, ShapeError, shown
from archsearch.spaces.base import SPACES, RandomSource, SearchSpace, as_rng, positive_sizes
from archsearch.spaces.nb201_fused import CONV1, CONV3, POOL, SKIP, ConvEdge, SourceMix, SourcePlan
from archsearch.spaces.partial import build_mixed_op, check_partial_channels
from archsearch.spaces.supernet import Supernet

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (target node, source node) of each edge, in alpha-row order
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
#: the alpha rows of the edges leaving each source node (the fused cell computes them together)
OUT_EDGES = tuple(tuple(k for k, (_, s) in enumerate(EDGES) if s == j) for j in range(NUM_NODES - 1))


@dataclass(frozen=True)
class NB201Genotype:
    """One op per edge, in EDGES order."""

    ops: tuple[str, ...]

    def __post_init__(self):
        if isinstance(self.ops, (str, bytes)) or not isinstance(self.ops, Iterable):
            raise InvalidGenotypeError(f"a NAS-Bench-201 genotype takes a sequence of {len(EDGES)} op names, "
                                       f"got {shown(self.ops)}")
        ops = tuple(self.ops)
        object.__setattr__(self, "ops", ops)
        if len(ops) != len(EDGES):
            raise InvalidGenotypeError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(ops)} ops")
        for op in ops:
            if not isinstance(op, str) or op not in OPS:
                raise InvalidGenotypeError(f"unknown NAS-Bench-201 op {shown(op)} (ops: {', '.join(OPS)})")

    def __str__(self) -> str:
        return to_arch_str(self)


def to_arch_str(genotype: NB201Genotype) -> str:
    nodes, k = [], 0
    for target in range(1, NUM_NODES):
        nodes.append("|" + "|".join(f"{genotype.ops[k + j]}~{j}" for j in range(target)) + "|")
        k += target
    return "+".join(nodes)


def parse_arch_str(text: str) -> NB201Genotype:
    """Parse the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    if not isinstance(text, str):
        raise InvalidGenotypeError(f"a NAS-Bench-201 arch string is text such as '{EXAMPLE}', got {shown(text)}")
    text = text.strip()
    bad = f"bad NAS-Bench-201 string {shown(text)}"
    nodes = text.split("+", NUM_NODES - 1)  # bounded: a string of a million '+' is refused as fast
    if len(nodes) != NUM_NODES - 1:
        got = len(nodes) if len(nodes) < NUM_NODES - 1 else f"more than {NUM_NODES - 1}"
        raise InvalidGenotypeError(f"{bad}: expected 3 nodes separated by '+', got {got} (e.g. '{EXAMPLE}')")
    ops = []
    for target, node in enumerate(nodes, start=1):
        if not (len(node) > 1 and node.startswith("|") and node.endswith("|")):
            raise InvalidGenotypeError(f"{bad}: node {shown(node)} must be '|op~j|...|'")
        edges = node[1:-1].split("|", target)
        if len(edges) != target:
            got = len(edges) if len(edges) <= target else f"more than {target}"
            raise InvalidGenotypeError(f"{bad}: node {target} needs {target} incoming edges, got {got}")
        for source, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep or src != str(source):
                raise InvalidGenotypeError(f"{bad}: edge {shown(edge)} of node {target} must be 'op~{source}'")
            ops.append(op)
    return NB201Genotype(tuple(ops))


# ---- operations -------------------------------------------------------------------------------
class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BN; the conv has a bias exactly when BN has no affine (as xautodl)."""

    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True, track_running_stats=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def make_op(name: str, channels: int, affine: bool, track_running_stats: bool) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, affine, track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, affine, track_running_stats)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidGenotypeError(f"unknown NAS-Bench-201 op '{name}' (ops: {', '.join(OPS)})")


class ResNetBasicBlock(nn.Module):
    """The fixed reduction block between stages (not searched); its BatchNorms are always affine."""

    #: The zero-cost proxies code (SamsungLabs/zero-cost-nas, foresight/models/nasbench2.py) makes synflow's
    #: BatchNorm-free copy by rebuilding its NB201 model with use_bn=False, an option its reduction block does
    #: not take: that copy keeps these BatchNorms. ``remove_batchnorm`` honours this flag to score as it does.
    keeps_batchnorm_in_bn_free_copy = True

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x):
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class Cell(nn.Module):
    """A discrete cell: node i = sum_j op_{i<-j}(node j); output = node 3.

    ``affine`` and ``track_running_stats`` are those of the ops' BatchNorms: True in the benchmark's network
    (xautodl's InferCell); False in the zero-cost proxies code's NB201 model, whose cells are search cells
    masked to one op per edge (then each convolution has a bias, as ReLUConvBN gives it one without affine).
    """

    def __init__(self, genotype: NB201Genotype, channels: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels, affine, track_running_stats) for op in genotype.ops)
        self.live = [op != "none" for op in genotype.ops]

    def forward(self, x):
        nodes = [x]
        k = 0
        for target in range(1, NUM_NODES):
            total = None
            for source in range(target):
                if self.live[k]:
                    term = self.edges[k](nodes[source])
                    total = term if total is None else total + term
                k += 1
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[-1]


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


class _Skeleton(nn.Module):
    """Stem, 3 stages of N cells with ResNet reduction blocks between them, head."""

    def __init__(self, C: int, N: int, num_classes: int, make_cell, in_channels: int = 3):
        super().__init__()
        C, N, num_classes, in_channels = positive_sizes(C=C, N=N, num_classes=num_classes, in_channels=in_channels)
        self.in_channels = in_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        channels = [C] * N + [2 * C] + [2 * C] * N + [4 * C] + [4 * C] * N
        reductions = {N, 2 * N + 1}
        cells, c_prev = [], C
        for i, c in enumerate(channels):
            cells.append(ResNetBasicBlock(c_prev, c) if i in reductions else make_cell(c))
            c_prev = c
        self.cells = nn.ModuleList(cells)
        self.head = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def classify(self, x):
        return self.classifier(self.pool(self.head(x)).flatten(1))

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"expected images of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                             "set in_channels when building the network")
        if x.shape[2] % 4 or x.shape[3] % 4 or min(x.shape[2:]) < 4:
            raise ShapeError(f"the NAS-Bench-201 network halves its input twice: image sides must be multiples of 4, "
                             f"got {x.shape[2]}x{x.shape[3]} (CIFAR: 32, ImageNet16-120: 16)")


class NB201Network(_Skeleton):
    """The discrete NAS-Bench-201 network (xautodl's TinyNetwork with InferCell).

    ``affine=False, track_running_stats=False`` gives the cells of the zero-cost proxies code's model instead
    (see ``Cell``); stem, reduction blocks and head are the same in both.
    """

    def __init__(self, genotype: NB201Genotype, C=16, N=5, num_classes=10, in_channels=3, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__(C, N, num_classes, lambda c: Cell(genotype, c, affine, track_running_stats), in_channels)
        self.genotype = genotype

    def forward(self, x):
        self.check_input(x)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classify(x)


class NB201Supernet(Supernet):
    """The NAS-Bench-201 search supernet: one (6, 5) alpha shared by all 15 cells.

    PC-DARTS options: ``partial_channels=K``; ``edge_normalization``: a beta per edge, each node's incoming
    edges weighed by a softmax over their betas (node 1 has one incoming edge, whose weight is always 1).
    """

    def __init__(self, C=16, N=5, num_classes=10, relaxation=None, track_running_stats=True, in_channels=3,
                 partial_channels=None, edge_normalization=False):
        super().__init__({"cell": (len(EDGES), len(OPS))}, OPS, relaxation)
        (C,) = positive_sizes(C=C)  # before C is multiplied below
        check_partial_channels([C, 2 * C, 4 * C], partial_channels)
        self.net = _Skeleton(C, N, num_classes, lambda c: SearchCell(c, track_running_stats, partial_channels),
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


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201: 5^6 = 15,625 cells, ground truth in ``archsearch.benchmarks.nb201``."""

    name = "nb201"
    ops = OPS
    edges = EDGES
    genotype_type = NB201Genotype
    #: the evaluation network's sizes when neither the space nor the call gives them (the benchmark's)
    network_defaults = {"C": 16, "N": 5}

    def __init__(self, C: int = 16, N: int = 5):
        self.C, self.N = positive_sizes(C=C, N=N)

    def sample(self, rng: RandomSource = None) -> NB201Genotype:
        rng = as_rng(rng)
        return NB201Genotype(tuple(OPS[i] for i in rng.integers(len(OPS), size=len(EDGES))))

    def mutate(self, genotype, rng: RandomSource = None) -> NB201Genotype:
        rng = as_rng(rng)
        genotype = self.parse(genotype)
        edge = int(rng.integers(len(EDGES)))
        choices = [op for op in OPS if op != genotype.ops[edge]]
        ops = list(genotype.ops)
        ops[edge] = choices[int(rng.integers(len(choices)))]
        return NB201Genotype(tuple(ops))

    def neighbours(self, genotype) -> list[NB201Genotype]:
        genotype = self.parse(genotype)
        out = []
        for edge in range(len(EDGES)):
            for op in OPS:
                if op != genotype.ops[edge]:
                    ops = list(genotype.ops)
                    ops[edge] = op
                    out.append(NB201Genotype(tuple(ops)))
        return out

    def enumerate(self) -> Iterator[NB201Genotype]:
        for ops in itertools.product(OPS, repeat=len(EDGES)):
            yield NB201Genotype(ops)

    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    def encode(self, genotype) -> torch.Tensor:
        genotype = self.parse(genotype)
        onehot = torch.zeros(len(EDGES), len(OPS))
        for edge, op in enumerate(genotype.ops):
            onehot[edge, OPS.index(op)] = 1.0
        return onehot.flatten()

    def to_string(self, genotype) -> str:
        return to_arch_str(self.parse(genotype))

    def from_string(self, text: str) -> NB201Genotype:
        """The official arch string, or the benchmark's index of one as text (``"6111"``)."""
        from archsearch.benchmarks.nb201 import INDEX_TEXT, NB201Table

        if isinstance(text, str) and INDEX_TEXT.fullmatch(text):
            table = NB201Table.load()
            return parse_arch_str(table.arch_strs[table.index_of(text)])
        return parse_arch_str(text)

    def index(self, genotype) -> int:
        """The benchmark's official index of a genotype."""
        from archsearch.benchmarks.nb201 import NB201Table

        return NB201Table.load().index_of(self.to_string(genotype))

    def ground_truth(self, genotype) -> dict:
        """200-epoch valid/test accuracy (%) on CIFAR-10, CIFAR-100 and ImageNet16-120."""
        from archsearch.benchmarks.nb201 import NB201Table

        results = NB201Table.load().query_all(self.to_string(genotype))
        out = {"index": next(iter(results.values())).index}
        out.update({name: {"valid": r.valid, "test": r.test} for name, r in results.items()})
        return out

    def network(self, genotype, num_classes: int = 10, C: int | None = None, N: int | None = None,
                in_channels: int = 3, affine: bool = True, track_running_stats: bool = True) -> NB201Network:
        """The benchmark's network; ``affine=False, track_running_stats=False``: the zero-cost code's cells."""
        return NB201Network(self.parse(genotype), self.C if C is None else C, self.N if N is None else N,
                            num_classes, in_channels, affine, track_running_stats)

    def supernet(self, num_classes: int = 10, relaxation=None, C: int | None = None, N: int | None = None,
                 track_running_stats: bool = True, in_channels: int = 3, partial_channels: int | None = None,
                 edge_normalization: bool = False) -> NB201Supernet:
        return NB201Supernet(self.C if C is None else C, self.N if N is None else N, num_classes, relaxation,
                             track_running_stats, in_channels, partial_channels, edge_normalization)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {"cell": (len(EDGES), len(OPS))}

    def cell_graph(self) -> tuple[list[tuple[int, int]], set[int], set[int]]:
        return [(source, target) for target, source in EDGES], {0}, {NUM_NODES - 1}

    def genotype_from_weights(self, weights, exclude: Sequence[str] = ("none",)) -> NB201Genotype:
        w = weights["cell"].detach().clone().float()
        for name in exclude:
            w[:, OPS.index(name)] = float("-inf")
        return NB201Genotype(tuple(OPS[i] for i in w.argmax(dim=-1).tolist()))

    def cell_edges(self, genotype) -> dict[str, list[tuple[str, str, str]]]:
        genotype = self.parse(genotype)
        return {"cell": [(str(s), str(t), op) for (t, s), op in zip(EDGES, genotype.ops)]}
