"""ENAS' macro controller (melodyguan/enas src/cifar10/general_controller.py, ``search_whole_channels``):
per layer an op, then a skip bit for each earlier anchor, drawn by attention over the anchors.

For layer l = 0..L-1, with x the LSTM's input (the learned g at l = 0) and (c, h) its state:

    h = LSTM(x)                                             :149-150
    op ~ softmax(c_t tanh(h W_soft / T))                    :151-159 (T, c_t: temperature, tanh constant)
    h = LSTM(W_emb[op])                                     :170, :213-214
    for l > 0, per anchor i < l:                            :216-230
        q_i = v . tanh(W_1 a_i + W_2 h)                     (a_i: the anchor of layer i; W_1 a_i kept, :253)
        s_i ~ softmax(c_t tanh([-q_i, q_i] / T))            (s_i = 1: the skip is taken)
        KL_l = sum_i sum_{j in 0,1} sigma(z_ij) log(sigma(z_ij) / t_j),  z: those shaped logits,
               t = (1 - rho, rho)                           :231-234 (sigmoid, not softmax, as written)
        x = (sum_i s_i a_i) / (1 + sum_i s_i)               :244-248
    else x = g                                              :250
    a_l = h                                                 :252-253

LSTM: ``stack_lstm`` (common_ops.py:5-24): [x, h] W with no bias, gates i, f, o, g in that order. Every
parameter U(-0.1, 0.1) (general_controller.py:84). Returned per sample: log p (the sum over the
decisions), the reference's "entropy" sum_k -p(a_k) log p(a_k) over the chosen actions only, without
gradient (:168, :240-241; not the distributions' entropy), and ``skip_penalty`` = the mean of KL_l over
layers 1..L-1 (:267-268), the term REINFORCE's loss adds times ``skip_weight`` (:291-292).
"""

from __future__ import annotations

import torch
from torch import nn


class MacroController(nn.Module):
    """general_controller.py's sampler (macro search, whole channels) as a module; scores given actions too."""

    def __init__(self, num_layers: int, num_branches: int = 6, hidden: int = 64, lstm_layers: int = 1,
                 temperature: float | None = None, tanh_constant: float | None = 1.5, skip_target: float = 0.4):
        super().__init__()
        self.num_layers, self.num_branches = num_layers, num_branches
        self.temperature, self.tanh_constant = temperature, tanh_constant
        self.register_buffer("skip_targets", torch.tensor([1.0 - skip_target, skip_target]))
        self.w_lstm = nn.ParameterList(nn.Parameter(torch.empty(2 * hidden, 4 * hidden)) for _ in range(lstm_layers))
        self.g_emb = nn.Parameter(torch.empty(1, hidden))
        self.w_emb = nn.Parameter(torch.empty(num_branches, hidden))
        self.w_soft = nn.Parameter(torch.empty(hidden, num_branches))
        self.w_attn_1 = nn.Parameter(torch.empty(hidden, hidden))
        self.w_attn_2 = nn.Parameter(torch.empty(hidden, hidden))
        self.v_attn = nn.Parameter(torch.empty(hidden, 1))
        self.uniform_init_(0.1)
        #: the KL term of the last forward (see the module's docstring)
        self.skip_penalty = torch.zeros(())

    def uniform_init_(self, bound: float) -> None:
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _lstm(self, x, state):
        """common_ops.stack_lstm: per layer [x, h] W -> i, f, o, g; c = i g + f c; h = o tanh(c)."""
        new = []
        for w, (c, h) in zip(self.w_lstm, state):
            i, f, o, g = torch.split(torch.cat([x, h], dim=1) @ w, w.shape[1] // 4, dim=1)
            c = torch.sigmoid(i) * torch.tanh(g) + torch.sigmoid(f) * c
            h = torch.sigmoid(o) * torch.tanh(c)
            new.append((c, h))
            x = h
        return x, new

    def _shape(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def _decide(self, logits, given, generator, greedy):
        """Row-wise categoricals: (actions, sum log p(a), sum -p(a) log p(a) without gradient)."""
        log_p = torch.log_softmax(logits, dim=-1)
        if given is None:
            given = (log_p.argmax(dim=-1) if greedy
                     else torch.multinomial(log_p.exp().detach(), 1, generator=generator).squeeze(-1))
        chosen = log_p.gather(-1, given.unsqueeze(-1)).squeeze(-1)
        return given, chosen.sum(), (-chosen * chosen.exp()).detach().sum()

    def forward(self, actions: torch.Tensor | None = None, generator=None, greedy: bool = False):
        """Sample (or score ``actions``, the flat arc): returns (arc, log p, the reference's entropy)."""
        rows = self._walk(actions, generator, greedy)
        arc = torch.cat([a for a, _, _, _ in rows])
        self.skip_penalty = self._penalty
        return arc, sum(lp for _, lp, _, _ in rows), sum(h for _, _, h, _ in rows)

    def greedy_probabilities(self) -> torch.Tensor:
        """(decisions, branches): each decision's probabilities along the greedy path (skip rows: off, on)."""
        with torch.no_grad():
            rows = self._walk(None, None, True)
        out = torch.zeros(sum(a.numel() for a, _, _, _ in rows), self.num_branches)
        k = 0
        for actions, _, _, p in rows:
            out[k: k + actions.numel(), : p.shape[-1]] = p
            k += actions.numel()
        return out

    def _walk(self, actions, generator, greedy):
        device = self.g_emb.device
        zeros = torch.zeros(1, self.g_emb.shape[1], device=device)
        state = [(zeros, zeros) for _ in self.w_lstm]
        x, anchors, anchors_w1, penalties, rows, k = self.g_emb, [], [], [], [], 0
        for layer in range(self.num_layers):
            h, state = self._lstm(x, state)
            logits = self._shape(h @ self.w_soft)
            given = None if actions is None else actions[k: k + 1].to(device)
            op, lp, ent = self._decide(logits, given, generator, greedy)
            rows.append((op, lp, ent, torch.softmax(logits, dim=-1)))
            k += 1
            h, state = self._lstm(self.w_emb[op], state)
            if layer > 0:
                query = torch.tanh(torch.cat(anchors_w1) + h @ self.w_attn_2) @ self.v_attn  # (layer, 1)
                logits = self._shape(torch.cat([-query, query], dim=1))
                given = None if actions is None else actions[k: k + layer].to(device)
                skip, lp, ent = self._decide(logits, given, generator, greedy)
                rows.append((skip, lp, ent, torch.softmax(logits, dim=-1)))
                k += layer
                p = torch.sigmoid(logits)  # as written (:231): the sigmoid of each of the two logits
                penalties.append((p * torch.log(p / self.skip_targets)).sum())
                s = skip.to(h.dtype).view(1, layer)
                x = (s @ torch.cat(anchors)) / (1.0 + s.sum())
            else:
                x = self.g_emb
            anchors.append(h)
            anchors_w1.append(h @ self.w_attn_1)
        self._penalty = torch.stack(penalties).mean() if penalties else torch.zeros((), device=device)
        return rows


__all__ = ["MacroController"]
