"""The seam between a space's supernet and a relaxation.

A supernet owns one architecture-parameter tensor per cell type (``alphas``) and asks its
relaxation, once per forward, to turn them into op weights per edge. The relaxation is an
``OpWeights``: ``__call__(alpha) -> weights`` of the same (edges, ops) shape; where ``hard`` is true the
weights are one-hot (with straight-through gradient) and only the chosen op of each edge is computed.
Spaces never import relaxations: they are handed one (``archsearch.relax`` builds on ``OpWeights``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from archsearch.errors import ConfigError
from archsearch.spaces.ops import drop_path

#: how a supernet computes its cells: "fast" lets a space use a fused kernel wherever it is the same maths
#: (NAS-Bench-201: nb201_fused.py); "reference" computes every op of every edge with its own module
PATHS = ("fast", "reference")


class OpWeights:
    """What a supernet asks of its relaxation: alpha (edges, ops) -> op weights (edges, ops)."""

    #: the weights are one-hot (straight-through): the supernet computes one op per edge
    hard = False

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def alive(self, alpha: torch.Tensor) -> torch.Tensor | None:
        """A bool mask (edges, ops) of the ops still in play, on the host, where ops are removed for good
        (XNAS' wipeout): the supernet skips the others. None: every op."""
        return None


class UniformWeights(OpWeights):
    """Fixed uniform op weights: the mixed-op structure without any learning."""

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.full_like(alpha, 1.0 / alpha.shape[-1])


class MixedOp(nn.Module):
    """sum_k w_k op_k(x) over the candidate ops of one edge.

    The ``none`` op contributes w * 0: its value and its gradient are zero whatever w is, so it
    is never computed (its weight still enters the relaxation's normalisation).
    """

    def __init__(self, op_names: Sequence[str], ops: Sequence[nn.Module]):
        super().__init__()
        self.op_names = tuple(op_names)
        self.ops = nn.ModuleList(ops)
        self._computed = [k for k, name in enumerate(self.op_names) if name != "none"]
        self.alive = torch.ones(len(self.op_names), dtype=torch.bool)
        #: probability of dropping the edge's output per sample in training (RobustDARTS' ScheduledDropPath,
        #: set by ``Supernet.set_drop_path_prob``); 0 leaves the edge untouched
        self.drop_prob = 0.0

    def forward(self, x: torch.Tensor, weights: torch.Tensor, hard_index: int | None = None) -> torch.Tensor:
        out = self._mix(x, weights, hard_index)
        if self.drop_prob > 0.0 and self.training:
            out = drop_path(out, self.drop_prob)
        return out

    def _mix(self, x: torch.Tensor, weights: torch.Tensor, hard_index: int | None) -> torch.Tensor:
        if hard_index is not None:
            # Straight-through: only the sampled op runs; the other weights are numerically 0
            # and are added as scalars so that every alpha still receives gradient.
            rest = weights.sum() - weights[hard_index]
            return self.ops[hard_index](x) * weights[hard_index] + rest
        out = None
        for k in self._computed:
            if not self.alive[k]:
                continue
            term = self.ops[k](x) * weights[k]
            out = term if out is None else out + term
        if out is None:  # every computed op removed: the edge outputs zeros
            out = self.ops[0](x) * weights[0]
        return out


def one_hot_path(edges: dict[str, list[tuple[int, str]]], shapes: dict[str, tuple[int, int]],
                 op_names: Sequence[str], alpha_columns: Sequence[int] | None) -> dict[str, torch.Tensor]:
    """Per cell type, the one-hot (rows, alpha columns) op weights of a path: ``edges[cell]`` lists the
    (alpha row, op) pairs the path keeps, every other row weighs ``none`` (which no supernet computes).
    Raises ConfigError naming the ops alpha has no column for."""
    ops = list(op_names)
    columns = list(range(len(ops))) if alpha_columns is None else list(alpha_columns)
    out = {}
    for name, (rows, _) in shapes.items():
        chosen = ["none"] * rows
        for row, op in edges[name]:
            chosen[row] = op
        missing = sorted({op for op in chosen if op not in ops or ops.index(op) not in columns})
        if missing:
            raise ConfigError(f"the supernet's alpha has no column for {', '.join(missing)}")
        w = torch.zeros(shapes[name])
        w[torch.arange(rows), torch.tensor([columns.index(ops.index(op)) for op in chosen])] = 1.0
        out[name] = w
    return out


def node_softmax(beta: torch.Tensor, in_degrees: Sequence[int]) -> torch.Tensor:
    """beta (edges,) split into consecutive groups of each node's incoming edges, softmax within each."""
    return torch.cat([torch.softmax(group, dim=-1) for group in torch.split(beta, list(in_degrees))])


class Supernet(nn.Module):
    """Base of every space's supernet: architecture parameters kept apart from the weights."""

    def __init__(self, arch_shapes: dict[str, tuple[int, int]], op_names: Sequence[str], relaxation=None,
                 alpha_ops: Sequence[str] | None = None):
        super().__init__()
        self.op_names = tuple(op_names)
        #: where alpha has columns for these ops only (a space's ``exclude_ops`` whose cells read every op's
        #: column): the op weights get zeros in the others, so a left-out op weighs nothing. None: every op.
        self.alpha_columns = None if alpha_ops is None else tuple(self.op_names.index(op) for op in alpha_ops)
        if self.alpha_columns == tuple(range(len(self.op_names))):
            self.alpha_columns = None
        if self.alpha_columns is not None:
            arch_shapes = {name: (rows, len(self.alpha_columns)) for name, (rows, _) in arch_shapes.items()}
        # DARTS' initialisation, 1e-3 * N(0, 1), one tensor per cell type.
        self.alphas = nn.ParameterDict(
            {name: nn.Parameter(1e-3 * torch.randn(*shape)) for name, shape in arch_shapes.items()}
        )
        self.relaxation = UniformWeights()
        if relaxation is not None:
            self.set_relaxation(relaxation)
        #: edge-normalisation parameters (PC-DARTS), one (edges,) tensor per cell type; empty unless a
        #: space calls ``enable_edge_normalization``. Architecture parameters, kept apart from the weights.
        self.betas = nn.ParameterDict()
        self.in_degrees: tuple[int, ...] = ()
        self.path = "fast"  # see PATHS; set_path switches the cells
        self.drop_path_prob = 0.0  # see set_drop_path_prob
        self._mixed_ops: dict[str, list[tuple[int, MixedOp]]] | None = None  # see mixed_ops, built on first use

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values()) + list(self.betas.values())

    def named_arch_parameters(self) -> dict[str, nn.Parameter]:
        return dict(self.alphas.items())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def enable_edge_normalization(self, in_degrees: Sequence[int]) -> None:
        """Weigh each edge by a softmax over its node's incoming edges (PC-DARTS); ``in_degrees``: the number
        of incoming edges of each node, in alpha-row order. beta starts as alpha does, 1e-3 * N(0, 1)."""
        self.in_degrees = tuple(int(d) for d in in_degrees)
        self.betas = nn.ParameterDict({name: nn.Parameter(1e-3 * torch.randn(alpha.shape[0], device=alpha.device))
                                       for name, alpha in self.alphas.items()})

    def path_weights(self, edges: dict[str, list[tuple[int, str]]]) -> dict[str, torch.Tensor]:
        """The one-hot op weights of the path that keeps ``edges`` (a space's ``selected_edges``): its op on
        each kept (alpha row, op), ``none`` on every other row (``one_hot_path``), on the alphas' device."""
        shapes = {name: tuple(alpha.shape) for name, alpha in self.alphas.items()}
        weights = one_hot_path(edges, shapes, self.op_names, self.alpha_columns)
        return {name: w.to(self.alphas[name].device) for name, w in weights.items()}

    def edge_weights(self) -> dict[str, torch.Tensor | None]:
        """Per cell type, each edge's factor in its node's sum (None: no edge normalisation)."""
        return {name: node_softmax(self.betas[name], self.in_degrees) if name in self.betas else None
                for name in self.alphas}

    def all_columns(self, w: torch.Tensor, fill: float | bool = 0.0) -> torch.Tensor:
        """(edges, alpha columns) -> (edges, every op), ``fill`` in the columns of ops alpha leaves out."""
        if self.alpha_columns is None:
            return w
        index = torch.tensor(self.alpha_columns, device=w.device)
        return w.new_full((w.shape[0], len(self.op_names)), fill).index_copy(1, index, w)

    def selection_weights(self, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What a genotype is read from: the op weights over every op, each edge's row scaled by its edge
        weight where edges are normalised (PC-DARTS ranks edges by softmax(beta) x op weight)."""
        weights = {name: self.all_columns(w) for name, w in weights.items()}
        edges = self.edge_weights()
        return {name: w if edges[name] is None else w * edges[name].detach().to(w.device, w.dtype).unsqueeze(-1)
                for name, w in weights.items()}

    def set_path(self, path: str) -> None:
        """``"fast"`` or ``"reference"`` (see PATHS); cells with a ``fused`` switch follow it."""
        if path not in PATHS:
            raise ConfigError(f"supernet_path must be one of {', '.join(PATHS)}, got {path!r}")
        self.path = path
        for module in self.modules():
            if hasattr(module, "fused"):
                module.fused = path == "fast"

    @contextlib.contextmanager
    def using_path(self, path: str) -> Iterator[None]:
        """Compute on ``path`` inside the block (a Hessian needs the reference path: the fused backward
        is first order only)."""
        previous = self.path
        self.set_path(path)
        try:
            yield
        finally:
            self.set_path(previous)

    def twice_differentiable(self) -> contextlib.AbstractContextManager:
        """The context in which a graph can be differentiated twice (a Hessian-vector product): the
        reference path, as the fused NB201 cell's backward is first order only."""
        return self.using_path("reference")

    def set_relaxation(self, relaxation: OpWeights) -> None:
        if not isinstance(relaxation, OpWeights):
            raise ConfigError(f"a supernet's relaxation is an OpWeights (archsearch.relax builds them), "
                              f"got {type(relaxation).__name__}")
        self.relaxation = relaxation

    def set_drop_path_prob(self, p: float) -> None:
        """Drop each mixed edge's output with probability ``p`` in training (RobustDARTS' ScheduledDropPath)."""
        self.drop_path_prob = float(p)
        for module in self.modules():
            if isinstance(module, MixedOp):
                module.drop_prob = float(p)

    def op_weights(self) -> dict[str, torch.Tensor]:
        """Relaxed op weights per cell type, shape (edges, ops): what the forward pass uses.

        Ops the relaxation's ``alive`` mask removed for good (XNAS' wipeout) are skipped by every MixedOp
        that reads those weights."""
        weights = {name: self.all_columns(self.relaxation(alpha)) for name, alpha in self.alphas.items()}
        for name, alpha in self.alphas.items():
            mask = self.relaxation.alive(alpha)
            if mask is not None:
                self.set_alive(name, mask)
        return weights

    def cell_arch_name(self, cell: nn.Module) -> str:
        """Which ``alphas`` entry a search cell reads; supernets with several cell types override this."""
        if len(self.alphas) != 1:
            raise NotImplementedError(f"{type(self).__name__} must say which alphas each cell reads")
        return next(iter(self.alphas))

    def mixed_ops(self, name: str) -> list[tuple[int, MixedOp]]:
        """(alpha row, MixedOp) for every mixed edge that reads ``alphas[name]``: the search cells'
        ``edges`` lists, in alpha-row order."""
        if self._mixed_ops is None:
            table: dict[str, list[tuple[int, MixedOp]]] = {key: [] for key in self.alphas}
            for module in self.modules():
                edges = getattr(module, "edges", None)
                if isinstance(edges, nn.ModuleList) and edges and all(isinstance(e, MixedOp) for e in edges):
                    table[self.cell_arch_name(module)].extend(enumerate(edges))
            self._mixed_ops = table
        return self._mixed_ops[name]

    def set_alive(self, name: str, mask: torch.Tensor) -> None:
        """Compute only the ops marked alive in ``mask`` (edges, alpha columns) on the edges that read
        ``alphas[name]``."""
        pushed = self.__dict__.setdefault("_alive_pushed", {})
        if pushed.get(name) is mask:  # relaxations hand the same host tensor until something changes
            return
        host = self.all_columns(mask.detach().to("cpu", torch.bool), fill=False)
        for row, mixed in self.mixed_ops(name):
            mixed.alive = host[row]
        pushed[name] = mask

    def hard_indices(self, weights: dict[str, torch.Tensor]) -> dict[str, list[int] | None]:
        """For a hard relaxation, the chosen op per edge (one host sync per forward, not per edge)."""
        if not self.relaxation.hard:
            return {name: None for name in weights}
        return {name: w.argmax(dim=-1).tolist() for name, w in weights.items()}
