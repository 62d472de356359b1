"""The DARTS recurrent cell and its language model (quark0/darts ``rnn/model.py``).

``RecurrentCell`` holds what every DARTS recurrent cell shares: the input matrix W0 over [x_t, h_{t-1}], one
(nhid, 2 nhid) matrix per node, the dropout masks on x and h, and the loop over time. ``DartsRnnCell`` is the
discrete cell of a genotype; a search cell subclasses ``RecurrentCell`` and overrides ``cell`` (one time step),
and ``RNNModel`` takes any such cell, so that the language model around it is one piece of code.

One time step (rnn/model.py:47-88), with masks m_x, m_h drawn once per sequence in training:

    [c0, h0] = [x_t * m_x, h_{t-1} * m_h] W0,      s0 = h_{t-1} + sigmoid(c0) * (tanh(h0) - h_{t-1})
    [c_k, h_k] = (s_j * m_h) W_k,                   s_k = s_j + sigmoid(c_k) * (f_k(h_k) - s_j)
    h_t = mean of s_k over k in concat

where node k takes state j through activation f_k (the genotype's ``(f_k, j)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError
from archsearch.spaces.darts_rnn_genotypes import STEPS, DartsRnnGenotype
from archsearch.spaces.rnn_regularise import LockedDropout, check_dropout, embedded_dropout, mask2d

#: weights drawn from U(-0.04, 0.04) (rnn/model.py:11, INITRANGE)
INITRANGE = 0.04

ACTIVATION_FNS = {"tanh": torch.tanh, "relu": F.relu, "sigmoid": torch.sigmoid, "identity": lambda x: x}


class RecurrentCell(nn.Module):
    """The parts of a DARTS recurrent cell (rnn/model.py:14-56) around ``cell``, one time step."""

    def __init__(self, ninp: int, nhid: int, dropouth: float, dropoutx: float, steps: int = STEPS):
        super().__init__()
        self.nhid = nhid
        self.dropouth = check_dropout(dropouth, "dropouth")
        self.dropoutx = check_dropout(dropoutx, "dropoutx")
        self._W0 = nn.Parameter(torch.empty(ninp + nhid, 2 * nhid).uniform_(-INITRANGE, INITRANGE))
        self._Ws = nn.ParameterList(
            [nn.Parameter(torch.empty(nhid, 2 * nhid).uniform_(-INITRANGE, INITRANGE)) for _ in range(steps)])

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (T, B, ninp), hidden (1, B, nhid) -> (every h_t: (T, B, nhid), the last: (1, B, nhid))."""
        if self.training:  # one mask per sequence, shared by its time steps (rnn/model.py:33-37)
            x_mask = mask2d(inputs.size(1), inputs.size(2), 1.0 - self.dropoutx, inputs)
            h_mask = mask2d(hidden.size(1), hidden.size(2), 1.0 - self.dropouth, inputs)
        else:
            x_mask = h_mask = None
        h = hidden[0]
        hiddens = []
        for t in range(inputs.size(0)):
            h = self.cell(inputs[t], h, x_mask, h_mask)
            hiddens.append(h)
        hiddens = torch.stack(hiddens)
        return hiddens, hiddens[-1].unsqueeze(0)

    def init_state(self, x, h_prev, x_mask, h_mask) -> torch.Tensor:
        """s0 = h + sigmoid(c0) * (tanh(h0) - h), [c0, h0] = [x, h] W0 (rnn/model.py:47-56)."""
        if x_mask is not None:
            x, h_masked = x * x_mask, h_prev * h_mask
        else:
            h_masked = h_prev
        c0, h0 = torch.split(torch.cat([x, h_masked], dim=-1).mm(self._W0), self.nhid, dim=-1)
        return h_prev + c0.sigmoid() * (h0.tanh() - h_prev)

    def cell(self, x, h_prev, x_mask, h_mask) -> torch.Tensor:
        raise NotImplementedError


class DartsRnnCell(RecurrentCell):
    """The discrete cell of a genotype (rnn/model.py:71-88): node k applies its own W_k to its input state."""

    def __init__(self, ninp: int, nhid: int, dropouth: float, dropoutx: float, genotype: DartsRnnGenotype):
        super().__init__(ninp, nhid, dropouth, dropoutx, steps=genotype.steps)
        self.genotype = genotype
        self._fns = [ACTIVATION_FNS[op] for op, _ in genotype.recurrent]

    def cell(self, x, h_prev, x_mask, h_mask) -> torch.Tensor:
        states = [self.init_state(x, h_prev, x_mask, h_mask)]
        for k, (fn, (_, j)) in enumerate(zip(self._fns, self.genotype.recurrent)):
            s_prev = states[j]
            ch = (s_prev * h_mask if h_mask is not None else s_prev).mm(self._Ws[k])
            c, h = torch.split(ch, self.nhid, dim=-1)
            states.append(s_prev + c.sigmoid() * (fn(h) - s_prev))  # highway: s_j + c (f(h) - s_j)
        return torch.stack([states[i] for i in self.genotype.concat], -1).mean(-1)


class RNNModel(nn.Module):
    """Embedding, one recurrent cell, a decoder tied to the embedding (rnn/model.py:91-159).

    ``forward(input, hidden)`` -> (log-probabilities (T, B, ntoken), new hidden); with ``return_h`` also the
    cell's raw outputs and the dropped ones, for AR and TAR. ``cell`` is any ``RecurrentCell`` of width
    ``ninp`` (the reference asserts ninp == nhid == nhidlast: tying needs it).
    """

    def __init__(self, ntoken: int, cell: RecurrentCell, ninp: int, dropout: float = 0.75,
                 dropouti: float = 0.2, dropoute: float = 0.1):
        super().__init__()
        if cell.nhid != ninp:
            raise ConfigError(f"the tied decoder needs nhid == emsize, got nhid={cell.nhid} and emsize={ninp}")
        self.ntoken, self.ninp, self.nhid = ntoken, ninp, cell.nhid
        self.dropout = check_dropout(dropout, "dropout")
        self.dropouti = check_dropout(dropouti, "dropouti")
        self.dropoute = check_dropout(dropoute, "dropoute")
        self.lockdrop = LockedDropout()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = cell
        self.decoder = nn.Linear(ninp, ntoken)
        self.decoder.weight = self.encoder.weight  # weight tying (Press & Wolf; Inan et al.)
        self.encoder.weight.data.uniform_(-INITRANGE, INITRANGE)  # rnn/model.py:123-126
        self.decoder.bias.data.zero_()

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        weight = self.encoder.weight
        return weight.new_zeros(1, batch_size, self.nhid)

    def forward(self, input: torch.Tensor, hidden: torch.Tensor, return_h: bool = False):
        emb = embedded_dropout(self.encoder, input, self.dropoute if self.training else 0.0)
        emb = self.lockdrop(emb, self.dropouti)
        raw_output, hidden = self.rnn(emb, hidden)
        output = self.lockdrop(raw_output, self.dropout)
        log_prob = F.log_softmax(self.decoder(output.view(-1, self.ninp)), dim=-1).view(-1, input.size(1), self.ntoken)
        if return_h:
            return log_prob, hidden, [raw_output], [output]
        return log_prob, hidden


def language_model(genotype: DartsRnnGenotype, ntoken: int, emsize: int = 850, nhid: int = 850,
                   dropout: float = 0.75, dropouth: float = 0.25, dropoutx: float = 0.75, dropouti: float = 0.2,
                   dropoute: float = 0.1) -> RNNModel:
    """The DARTS language model of a genotype; defaults are rnn/train.py's (lines 24-49)."""
    return RNNModel(ntoken, DartsRnnCell(emsize, nhid, dropouth, dropoutx, genotype), emsize, dropout,
                    dropouti, dropoute)


def expected_parameters(ntoken: int, emsize: int, nhid: int, steps: int) -> int:
    """The model's parameter count by hand: embedding (shared with the decoder), W0, one matrix per node, and
    the decoder's bias."""
    return ntoken * emsize + (emsize + nhid) * 2 * nhid + steps * nhid * 2 * nhid + ntoken


def macs_per_token(ntoken: int, emsize: int, nhid: int, steps: int) -> int:
    """Multiply-adds per token: the cell's matrix products and the decoder (``info``'s FLOPs)."""
    return (emsize + nhid) * 2 * nhid + steps * nhid * 2 * nhid + nhid * ntoken
