"""The dropouts of AWD-LSTM (Merity, Keskar & Socher, ICLR 2018) as the DARTS language model uses them
(quark0/darts ``rnn/utils.py:54-92``, the same as salesforce/awd-lstm-lm ``embed_regularize.py`` and
``locked_dropout.py``): one mask per sequence, shared by every time step, scaled by 1 / keep probability."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import ConfigError


def check_dropout(value: float, what: str) -> float:
    """A dropout probability in [0, 1): at 1 the 1 / keep scaling divides by zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{what} must be a probability in [0, 1), got {value!r}")
    return float(value)


def mask2d(batch: int, features: int, keep_prob: float, like: torch.Tensor) -> torch.Tensor:
    """A (batch, features) mask of 0 and 1 / keep_prob, each entry kept with probability ``keep_prob``
    (rnn/utils.py:87-92: floor(U + keep) / keep), of ``like``'s dtype and device."""
    uniform = torch.rand(batch, features, dtype=like.dtype, device=like.device)
    return torch.floor(uniform + keep_prob) / keep_prob


def embedded_dropout(embed: nn.Embedding, words: torch.Tensor, dropout: float) -> torch.Tensor:
    """Word-level dropout: whole rows of the embedding (every occurrence of a word in the batch) zeroed with
    probability ``dropout``, the rest scaled by 1 / (1 - dropout) (rnn/utils.py:54-71)."""
    weight = embed.weight
    if dropout:
        keep = torch.empty(weight.size(0), 1, dtype=weight.dtype, device=weight.device).bernoulli_(1 - dropout)
        weight = weight * (keep / (1 - dropout))
    return F.embedding(words, weight, embed.padding_idx, embed.max_norm, embed.norm_type,
                       embed.scale_grad_by_freq, embed.sparse)


class LockedDropout(nn.Module):
    """Variational dropout on a (time, batch, features) tensor: one (1, batch, features) mask for every
    time step (rnn/utils.py:74-84). Identity in evaluation mode or at probability 0."""

    def forward(self, x: torch.Tensor, dropout: float) -> torch.Tensor:
        if not self.training or not dropout:
            return x
        mask = torch.empty(1, x.size(1), x.size(2), dtype=x.dtype, device=x.device).bernoulli_(1 - dropout)
        return x * (mask / (1 - dropout))
