"""The language-model recipe: how a recurrent cell of the darts-rnn space is trained on Penn Treebank.

``LMRecipe`` is registered in the same registry as the image recipes (``RECIPES``, name ``darts-rnn``) and
offers the same ``replace`` / ``as_dict``; the language-model trainer (lm_train.py) takes only it, the image
trainer only a ``Recipe``. Every default is quark0/darts ``rnn/train.py``'s (argument lines cited).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ConfigError, did_you_mean
from archsearch.evaluate.recipes import RECIPES
from archsearch.settings import coerce


@dataclass(frozen=True)
class LMRecipe:
    """Everything that decides how a language model is trained: SGD, then NT-ASGD (Merity et al., ICLR 2018)."""

    name: str = "custom"
    #: rnn/train.py:34 (an upper limit: the paper's runs were stopped by hand, see docs/rnn.md)
    epochs: int = 8000
    batch_size: int = 64  #: line 36
    eval_batch_size: int = 10  #: line 110 (validation)
    test_batch_size: int = 1  #: line 111
    lr: float = 20.0  #: line 30
    #: max global gradient norm (line 32)
    clip: float = 0.25
    bptt: int = 35  #: line 38: the mean sequence length of a step, and the evaluation's chunk
    #: the longest sequence a step may draw is bptt + this (line 72)
    max_seq_len_delta: int = 20
    dropout: float = 0.75  #: on the cell's output (line 40)
    dropouth: float = 0.25  #: on the states a node reads (line 42)
    dropoutx: float = 0.75  #: on the input x_t (line 44)
    dropouti: float = 0.2  #: on the embedding's output (line 46)
    dropoute: float = 0.1  #: whole words of the embedding (line 48)
    wdecay: float = 8e-7  #: weight decay, SGD and ASGD (line 64)
    #: activation regularisation (AR) on the dropped output, alpha * mean(h^2) (line 60)
    alpha: float = 0.0
    #: temporal activation regularisation (TAR), beta * mean((h_t - h_{t-1})^2) (line 62)
    beta: float = 1e-3
    #: SGD turns to averaged SGD once the validation loss is worse than the best of all but the last
    #: ``nonmono`` epochs (line 52, lines 302-304)
    nonmono: int = 5
    #: gradients accumulated over chunks of this many sequences (line 68); 0: the whole batch at once
    small_batch_size: int = 0
    emsize: int = 850  #: line 24
    nhid: int = 850  #: line 26 (= emsize: the decoder is tied to the embedding)

    def __post_init__(self):
        hints = typing.get_type_hints(LMRecipe)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, coerce(f.name, hints[f.name], getattr(self, f.name)))
        small = self.small_batch_size or self.batch_size
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (min(self.batch_size, self.eval_batch_size, self.test_batch_size) >= 1, "batch sizes must be >= 1"),
            (self.small_batch_size >= 0 and self.batch_size % small == 0,
             f"batch_size ({self.batch_size}) must be a multiple of small_batch_size ({self.small_batch_size})"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.clip >= 0, f"clip must be >= 0 (0: no clipping), got {self.clip}"),
            (self.bptt >= 1 and self.max_seq_len_delta >= 0, "bptt must be >= 1 and max_seq_len_delta >= 0"),
            (all(0 <= getattr(self, d) < 1 for d in ("dropout", "dropouth", "dropoutx", "dropouti", "dropoute")),
             "dropouts must lie in [0, 1)"),
            (min(self.wdecay, self.alpha, self.beta) >= 0, "wdecay, alpha and beta must be >= 0"),
            # at 0 the reference's rule takes the min of an empty list (rnn/train.py:302)
            (self.nonmono >= 1, f"nonmono must be >= 1, got {self.nonmono}"),
            (self.emsize >= 1 and self.nhid == self.emsize,
             f"nhid must equal emsize (the decoder is tied to the embedding), got {self.nhid} and {self.emsize}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"recipe '{self.name}': {message}")

    @property
    def chunk(self) -> int:
        """The sequences per forward pass (small_batch_size, or the batch)."""
        return self.small_batch_size or self.batch_size

    @property
    def network(self) -> dict:
        """The options of the space's ``network``."""
        return {"emsize": self.emsize, "nhid": self.nhid, "dropout": self.dropout, "dropouth": self.dropouth,
                "dropoutx": self.dropoutx, "dropouti": self.dropouti, "dropoute": self.dropoute}

    def replace(self, **overrides: Any) -> LMRecipe:
        valid = [f.name for f in dataclasses.fields(self)]
        for key in overrides:
            if key not in valid:
                raise ConfigError(f"unknown recipe field {str(key)!r}{did_you_mean(key, valid)} "
                                  f"(fields: {', '.join(valid)})")
        if "emsize" in overrides and "nhid" not in overrides:  # tied: one size unless both are given
            overrides["nhid"] = overrides["emsize"]
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES.register("darts-rnn")(LMRecipe(name="darts-rnn"))
