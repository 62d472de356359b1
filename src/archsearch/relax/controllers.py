"""Controllers: distributions over one choice per decision, sampled autoregressively or independently.

Shared by the REINFORCE strategy (strategies/reinforce.py, Zoph & Le) and ENAS' controller relaxation
(relax/controller.py, Pham et al. 2018). Each returns ``(actions, log p(actions), H)`` where H is the sum of
the per-decision entropies along the path, and draws the actions where none are given.

- ``LSTMController``: at decision k an LSTM reads the embedding of decision k-1's choice (a learned start
  vector at k = 0) and a linear head gives the logits. ENAS adds ``temperature`` and ``tanh_constant``:
  logits <- c * tanh(logits / T), in that order (AutoDL-Projects
  xautodl/models/cell_searchs/search_model_enas_utils.py:55-57; melodyguan/enas micro_controller.py).
- ``CategoricalController``: independent per-decision categoricals (NAS-Bench-201's REINFORCE baseline).

A space whose decisions have different numbers of choices (NASNet's inputs) states them in
``choice_sizes``; the choices a decision lacks get probability 0 through ``choice_mask``.
"""

from __future__ import annotations

import torch
from torch import nn

#: added to the logit of a choice a decision does not have (a space's ``choice_sizes``): its probability is 0
#: and, unlike -inf, p log p stays 0 in the entropy
MASKED = -1e9


def choice_mask(space, num_edges: int, num_ops: int) -> torch.Tensor | None:
    """(decisions x choices) MASKED where a decision has fewer choices than the widest; None where none has.
    ``space``: anything with ``choice_sizes``, a method (a space) or a list (the enas-macro supernet)."""
    sizes = space.choice_sizes() if callable(space.choice_sizes) else space.choice_sizes
    if sizes is None:
        return None
    mask = torch.zeros(num_edges, num_ops)
    for k, n in enumerate(sizes):
        mask[k, n:] = MASKED
    return mask


def _choose(logits: torch.Tensor, actions, generator):
    """log p(a) and H(p) of categoricals given by the rows of ``logits``; a is drawn when not given."""
    log_p = torch.log_softmax(logits, dim=-1)
    if actions is None:
        actions = torch.multinomial(log_p.exp().detach(), 1, generator=generator).squeeze(-1)
    chosen = log_p.gather(-1, actions.unsqueeze(-1)).squeeze(-1).sum()
    entropy = -(log_p.exp() * log_p).sum()  # H(p) = -sum p log p
    return actions, chosen, entropy


class CategoricalController(nn.Module):
    def __init__(self, num_edges: int, num_ops: int, mask: torch.Tensor | None = None):
        super().__init__()
        self.logits = nn.Parameter(1e-3 * torch.randn(num_edges, num_ops))
        self.mask = mask

    def forward(self, actions: torch.Tensor | None = None, generator=None):
        """Sample (actions None) or score given actions; returns (actions, log_prob, entropy)."""
        return _choose(self.logits if self.mask is None else self.logits + self.mask, actions, generator)


class LSTMController(nn.Module):
    """Autoregressive: edge k's op is drawn from head(h_k), h_k = LSTM(embed(op_{k-1}), h_{k-1}).

    ``temperature`` / ``tanh_constant`` (None: off) shape the head's logits as ENAS does; ``greedy`` takes
    the most likely choice at every decision instead of sampling."""

    def __init__(self, num_edges: int, num_ops: int, hidden: int = 35, layers: int = 2,
                 mask: torch.Tensor | None = None, temperature: float | None = None,
                 tanh_constant: float | None = None):
        super().__init__()
        self.num_edges, self.mask = num_edges, mask
        self.temperature, self.tanh_constant = temperature, tanh_constant
        self.embed = nn.Embedding(num_ops + 1, hidden)  # index num_ops = the start token
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers)
        self.head = nn.Linear(hidden, num_ops)
        self.start = num_ops

    def uniform_init_(self, bound: float) -> None:
        """ENAS' initialisation, U(-bound, bound) on the start vector, the embeddings, the first LSTM layer's
        weights and the head's weight; the rest keeps PyTorch's default (search_model_enas_utils.py:42-46)."""
        for tensor in (self.embed.weight, self.lstm.weight_hh_l0, self.lstm.weight_ih_l0, self.head.weight):
            nn.init.uniform_(tensor, -bound, bound)

    def logits(self, out: torch.Tensor, k: int) -> torch.Tensor:
        logits = self.head(out)
        if self.temperature is not None:  # ENAS: logits / T, then c * tanh(.)
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits if self.mask is None else logits + self.mask[k]

    def forward(self, actions: torch.Tensor | None = None, generator=None, greedy: bool = False):
        device = self.head.weight.device
        state, previous = None, torch.tensor([self.start], device=device)
        chosen, log_prob, entropy = [], 0.0, 0.0
        for k in range(self.num_edges):
            out, state = self.lstm(self.embed(previous).unsqueeze(0), state)
            given = None if actions is None else actions[k].view(1).to(device)
            logits = self.logits(out[0], k)
            if greedy and given is None:
                given = logits.argmax(dim=-1)
            action, lp, h = _choose(logits, given, generator)  # one edge: a 1 x ops row
            log_prob, entropy = log_prob + lp, entropy + h
            chosen.append(action)
            previous = action
        return torch.cat(chosen), log_prob, entropy

    def greedy_probabilities(self) -> torch.Tensor:
        """(decisions, choices): each decision's probabilities given the most likely choices before it."""
        device = self.head.weight.device
        state, previous, rows = None, torch.tensor([self.start], device=device), []
        with torch.no_grad():
            for k in range(self.num_edges):
                out, state = self.lstm(self.embed(previous).unsqueeze(0), state)
                p = torch.softmax(self.logits(out[0], k), dim=-1)
                rows.append(p[0])
                previous = p.argmax(dim=-1)
        return torch.stack(rows)


__all__ = ["MASKED", "CategoricalController", "LSTMController", "choice_mask"]
