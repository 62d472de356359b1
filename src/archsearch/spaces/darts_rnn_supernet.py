"""The search supernet of the DARTS recurrent cell (quark0/darts ``rnn/model_search.py:10-43``).

Every node k takes every earlier state s_j (j < k) through every activation, weighted by the relaxation's op
weights w of row (k, j), with node k's matrix W_k shared by its inputs:

    [c_kj, h_kj] = (s_j * m_h) W_k,    u_kj^f = s_j + sigmoid(c_kj) * (f(h_kj) - s_j)
    s_k = BN( sum_j sum_{f != none} w[(k, j), f] * u_kj^f ),   s_0 = BN(init_state(x_t, h_t-1))
    h_t = mean(s_1 .. s_8)

BN is one BatchNorm1d without affine parameters shared by s_0 and every node (model_search.py:14, :19, :38);
``none`` weighs nothing and is never computed. The language model around the cell (embedding, locked
dropouts, tied decoder) is darts_rnn_network.RNNModel, the one the discrete cell trains in.

With a hard relaxation (GDAS' one-hot straight-through weights) only the sampled activation of each row
is applied and rows whose sample is ``none`` skip their matrix product; the other weights, 0 in value,
are added as scalars so that every alpha still has a gradient (as spaces/supernet.py's MixedOp).
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.spaces.darts_rnn_genotypes import OPS, STEPS
from archsearch.spaces.darts_rnn_network import ACTIVATION_FNS, RecurrentCell, RNNModel
from archsearch.spaces.supernet import Supernet

#: the alpha entry of the one cell type
CELL = "recurrent"


class DartsRnnSearchCell(RecurrentCell):
    """The mixed cell (model_search.py:10-43); ``weights`` (36, 5) are set by the supernet before a forward,
    ``hard`` (the chosen op per row, or None) with them."""

    def __init__(self, ninp: int, nhid: int, dropouth: float, dropoutx: float, batch_norm: bool = True):
        super().__init__(ninp, nhid, dropouth, dropoutx, steps=STEPS)
        # model_search.py:14: BN without affine parameters, one module for every state; off: an exact
        # comparison with the discrete cell
        self.bn = nn.BatchNorm1d(nhid, affine=False) if batch_norm else nn.Identity()
        self.weights: torch.Tensor | None = None
        self.hard: list[int] | None = None
        self._ops = [(k, ACTIVATION_FNS[name]) for k, name in enumerate(OPS) if name != "none"]

    def cell(self, x, h_prev, x_mask, h_mask) -> torch.Tensor:
        states = self.bn(self.init_state(x, h_prev, x_mask, h_mask)).unsqueeze(0)  # s0: (1, B, nhid)
        offset = 0
        for i in range(STEPS):  # node i + 1, inputs s_0 .. s_i, alpha rows offset .. offset + i
            w = self.weights[offset: offset + i + 1]
            if self.hard is None:
                s = self._soft(i, states, w, h_mask)
            else:
                s = self._hard(i, states, w, self.hard[offset: offset + i + 1], h_mask)
            states = torch.cat([states, self.bn(s).unsqueeze(0)], 0)
            offset += i + 1
        return states[1:].mean(0)  # the 8 nodes (model_search.py:42, CONCAT = 8)

    def _gates(self, i: int, states: torch.Tensor, h_mask) -> tuple[torch.Tensor, torch.Tensor]:
        masked = states * h_mask.unsqueeze(0) if h_mask is not None else states
        ch = masked.reshape(-1, self.nhid).mm(self._Ws[i]).view(states.shape[0], -1, 2 * self.nhid)
        c, h = torch.split(ch, self.nhid, dim=-1)
        return c.sigmoid(), h

    def _soft(self, i, states, w, h_mask) -> torch.Tensor:
        c, h = self._gates(i, states, h_mask)
        s = torch.zeros_like(states[0])
        for k, fn in self._ops:  # model_search.py:31-36; `none` adds nothing
            s = s + (w[:, k].view(-1, 1, 1) * (states + c * (fn(h) - states))).sum(0)
        return s

    def _hard(self, i, states, w, chosen: list[int], h_mask) -> torch.Tensor:
        rest = (w.sum(-1) - w[torch.arange(len(chosen)), chosen]).sum()  # 0 in value, gradient to the others
        rows = [j for j, k in enumerate(chosen) if OPS[k] != "none"]
        s = torch.zeros_like(states[0]) + rest
        if not rows:
            return s
        c, h = self._gates(i, states[rows], h_mask)
        for n, j in enumerate(rows):
            k = chosen[j]
            u = states[j] + c[n] * (ACTIVATION_FNS[OPS[k]](h[n]) - states[j])
            s = s + w[j, k] * u
        return s


class DartsRnnSupernet(Supernet):
    """alpha (36, 5) over the mixed cell of an RNNModel; ``forward(input, hidden, return_h)`` as RNNModel's."""

    def __init__(self, ntoken: int, relaxation=None, emsize: int = 300, nhid: int = 300, dropout: float = 0.75,
                 dropouth: float = 0.25, dropoutx: float = 0.75, dropouti: float = 0.2, dropoute: float = 0.0,
                 batch_norm: bool = True):
        rows = STEPS * (STEPS + 1) // 2
        super().__init__({CELL: (rows, len(OPS))}, OPS, relaxation)
        cell = DartsRnnSearchCell(emsize, nhid, dropouth, dropoutx, batch_norm)
        self.model = RNNModel(ntoken, cell, emsize, dropout, dropouti, dropoute)

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        return self.model.init_hidden(batch_size)

    def forward(self, input: torch.Tensor, hidden: torch.Tensor, return_h: bool = False):
        weights = self.op_weights()
        cell = self.model.rnn
        cell.weights, cell.hard = weights[CELL], self.hard_indices(weights)[CELL]
        try:
            return self.model(input, hidden, return_h=return_h)
        finally:
            cell.weights = cell.hard = None  # no graph kept alive between forwards
