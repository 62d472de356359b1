"""Language modelling as a search task: DARTS' recurrent-cell search on Penn Treebank (quark0/darts
rnn/train_search.py), behind search/tasks.py's seam.

- Streams: the train split batchified to ``batch_size`` columns is search-train, the valid split batchified
  the same way search-valid (train_search.py:116-117: ``search_data = batchify(corpus.valid, ...)``).
- Windows: each step takes the next search-train window of a random length (bptt, or bptt / 2 with
  probability 0.05: train_search.py:180-185) and the search-valid window of length bptt at the same
  position modulo the valid stream's length (:191); the weights' learning rate is scaled by seq_len / bptt
  for that step, the architecture step's xi included (:187-188, restored at :240).
- Hidden states: one per stream, zero at each epoch's start (:176-177), detached before each step
  (repackage_hidden, :203-204, :214). The weight step carries the train stream's on, the architecture step
  the valid stream's, from the forward at w' in the unrolled step (rnn/architect.py:54-57, :62-63 return
  it). Virtual steps and Hessian-vector products start from the train stream's hidden and carry nothing.
- Loss: NLL per token; the weight step adds the activation regularisers (:219-224): AR alpha * mean(h_d^2)
  on the last layer's dropped outputs (alpha 0 in the reference) and TAR beta * mean((h_t+1 - h_t)^2),
  beta 1e-3. The meter weighs by tokens; the epoch's record adds perplexity exp(loss).
- ENAS' reward (``reward``): R = c / ppl, ppl = exp(mean NLL per token) of the sampled cell on the
  search-valid window, c = 80 (melodyguan/enas src/ptb/ptb_enas_controller.py:178-181). Hidden state: the
  reference's valid-RL forward carries nothing on (ptb_enas_child.py:251-252, ``should_carry=False``) and
  starts from the shared ``start_h`` of whatever forward ran last (:410, :496-503); ours starts from zero
  (our choice: a fixed start, so that a cell's reward does not depend on the previous sample) and carries
  nothing either. The shared-weights selector's ``score`` is minus the perplexity over its windows, by
  tokens, each window from a zero hidden state as the reward's.
- The Hessian diagnostic (``diagnostic_loss``): the NLL of the fixed search-valid window (the stream's first,
  bptt long) from a zero hidden state, the model in its search mode (training: batch-statistics BN and the
  dropouts) with the dropout masks drawn from a fixed seed, so that every Hessian-vector product
  differentiates the same function of alpha (our choice; DARTS' RNN search has no such diagnostic).
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.data.ptb import batchify, get_batch, load_ptb, perplexity
from archsearch.errors import ConfigError
from archsearch.search.meter import Meter
from archsearch.search.tasks import SearchTask
from archsearch.settings import build

#: a stream's name, as its hidden state is kept
TRAIN, VALID = "train", "valid"
#: the seed of the dropout masks in the Hessian diagnostic's loss (any fixed value)
DIAGNOSTIC_SEED = 0


class Window(NamedTuple):
    """A BPTT window of a batchified stream: inputs and next-token targets, both (seq_len, batch)."""

    x: torch.Tensor
    y: torch.Tensor
    stream: str


def search_length(bptt: int, rng: np.random.Generator) -> int:
    """A search step's window: bptt with probability 0.95, else bptt / 2, truncated (train_search.py:180-185;
    the search leaves out the N(., 5) draw that training takes, data/ptb.py's ``bptt_length``)."""
    return int(bptt if rng.random() < 0.95 else bptt / 2.0)


def walk(length: int, bptt: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(position, seq_len) of an epoch's windows over a stream of ``length`` rows (train_search.py:178-192:
    ``while i < len - 1 - 1``, ``i += seq_len``)."""
    steps, i = [], 0
    while i < length - 1 - 1:
        seq_len = search_length(bptt, rng)
        steps.append((i, seq_len))
        i += seq_len
    return steps


class StreamLoader:
    """The windows of one stream for an epoch's walk: search-train at the walk's positions and lengths,
    search-valid at the same positions modulo its length, always ``bptt`` long. Seeded by (seed, epoch)."""

    def __init__(self, source: torch.Tensor, stream: str, task: LanguageModelling):
        self.source, self.stream, self.task = source, stream, task
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.task.steps(self.epoch))

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1  # as BatchLoader: a pass moves the epoch on
        for i, seq_len in self.task.steps(epoch):
            if self.stream == VALID:
                i, seq_len = i % (len(self.source) - 1), self.task.bptt
            x, y = get_batch(self.source, i, seq_len)
            yield Window(x, y, self.stream)


class TaskOptions:
    """``task_options`` of the language-modelling task (train_search.py's defaults)."""

    def __init__(self, bptt: int = 35, ar: float = 0.0, tar: float = 1e-3, batches: int | None = None,
                 reward_c: float = 80.0):
        # reward_c: ENAS' reward numerator, ptb_enas_controller.py:181 (read by arch_gradient=reinforce only)
        if not (math.isfinite(reward_c) and reward_c > 0):
            raise ConfigError(f"reward_c must be a finite number > 0, got {reward_c}")
        self.reward_c = float(reward_c)
        if bptt < 2:
            raise ConfigError(f"bptt must be at least 2, got {bptt}")
        if not all(math.isfinite(v) and v >= 0 for v in (ar, tar)):
            raise ConfigError(f"the activation regularisers ar and tar must be finite and >= 0, got {ar}, {tar}")
        if batches is not None and batches < 1:
            raise ConfigError(f"batches must be a positive number of windows per epoch or null, got {batches}")
        self.bptt, self.ar, self.tar, self.batches = int(bptt), float(ar), float(tar), batches


def task_options(options: dict) -> TaskOptions:
    return build("the ptb task", TaskOptions, options)


class LanguageModelling(SearchTask):
    """Next-token NLL on batchified token streams (see the module docstring)."""

    score_name = "minus shared-weight valid perplexity"

    def __init__(self, config, corpus=None, device: torch.device | str = "cpu", quiet: bool = False):
        options = task_options(config.task_options)
        self.bptt, self.ar, self.tar, self.batches = options.bptt, options.ar, options.tar, options.batches
        self.reward_c = options.reward_c
        self.dataset = corpus if corpus is not None else load_ptb(config.data_dir)
        self.seed = config.seed
        train = batchify(self.dataset.train, config.batch_size).to(device)
        valid = batchify(self.dataset.valid, config.batch_size).to(device)
        if min(len(train), len(valid)) < 3:
            raise ConfigError(f"batch_size {config.batch_size} leaves fewer than 3 rows in a stream: lower it")
        self.train_loader, self.valid_loader = StreamLoader(train, TRAIN, self), StreamLoader(valid, VALID, self)
        self._walks: dict[int, list] = {}
        self.valid_size = valid.numel()
        self.num_classes = len(self.dataset.vocab)  # a word's classes: the vocabulary
        self.supernet_inputs = {"num_classes": self.num_classes}
        self.unrolled_clip = config.grad_clip  # rnn/architect.py clips the virtual step (search/bilevel.py)
        self.fixed_batch = Window(*get_batch(valid, 0, self.bptt), VALID)
        self._valid_tokens = self.dataset.valid
        self.hidden: dict[str, object] = {TRAIN: None, VALID: None}

    def steps(self, epoch: int) -> list[tuple[int, int]]:
        """The epoch's walk over search-train, the first ``batches`` windows where that is set."""
        if epoch not in self._walks:
            rng = np.random.default_rng([self.seed, epoch])
            self._walks = {epoch: walk(len(self.train_loader.source), self.bptt, rng)[: self.batches]}
        return self._walks[epoch]

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.hidden = {TRAIN: None, VALID: None}  # train_search.py:176-177: zero at each epoch's start

    def _hidden(self, model, batch: Window):
        hidden = self.hidden[batch.stream]
        if hidden is None or _batch_of(hidden) != batch.x.shape[1]:
            return model.init_hidden(batch.x.shape[1])
        return hidden

    def loss(self, model, batch: Window, meter: Meter | None = None, step: str | None = None) -> torch.Tensor:
        log_prob, hidden, raw, dropped = model(batch.x, self._hidden(model, batch), return_h=True)
        log_prob = log_prob.reshape(-1, log_prob.shape[-1])
        targets = batch.y.reshape(-1)
        loss = F.nll_loss(log_prob, targets)  # NLL per token
        if meter is not None:
            meter.update(loss.detach(), log_prob.detach(), targets)
        if step is not None:
            self.hidden[batch.stream] = repackage(hidden)  # the stream goes on from here, detached
        if step == "weights":
            if self.ar:  # AR: alpha * mean(dropped h^2), last layer (train_search.py:221-222)
                loss = loss + self.ar * dropped[-1].pow(2).mean()
            if self.tar:  # TAR: beta * mean((h_t+1 - h_t)^2), last layer (:224)
                loss = loss + self.tar * (raw[-1][1:] - raw[-1][:-1]).pow(2).mean()
        return loss

    @contextlib.contextmanager
    def step_scope(self, w_optimizer, train_batch: Window):
        """lr * seq_len / bptt for this step, the architecture step's xi included (train_search.py:187-188)."""
        group = w_optimizer.param_groups[0]
        lr = group["lr"]
        group["lr"] = lr * train_batch.x.shape[0] / self.bptt
        try:
            yield
        finally:
            group["lr"] = lr  # :240

    def _nll(self, model, batch: Window, meter: Meter | None = None) -> torch.Tensor:
        """Mean NLL per token of ``batch`` from a zero hidden state, nothing carried on."""
        log_prob, _ = model(batch.x, model.init_hidden(batch.x.shape[1]))
        log_prob = log_prob.reshape(-1, log_prob.shape[-1])
        targets = batch.y.reshape(-1)
        loss = F.nll_loss(log_prob, targets)
        if meter is not None:
            meter.update(loss, log_prob, targets)
        return loss

    def diagnostic_loss(self, model, batch: Window) -> torch.Tensor:
        """The NLL of ``batch`` from a zero hidden state, dropout masks from the fixed seed (module docstring)."""
        device = batch.x.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(DIAGNOSTIC_SEED)
            return self._nll(model, batch)

    def reward(self, model, batch: Window, meter: Meter | None = None) -> float:
        """R = c / ppl on ``batch`` (ptb_enas_controller.py:178-181; see the module docstring)."""
        return self.reward_c / perplexity(float(self._nll(model, batch, meter)))

    def score(self, model, batches) -> float:
        """Minus the perplexity over ``batches`` (NLL weighed by tokens), each from a zero hidden state."""
        total = tokens = 0.0
        for batch in batches:
            n = batch.y.numel()
            total += float(self._nll(model, batch)) * n
            tokens += n
        if not tokens:
            raise ConfigError("no window to score the candidate on")
        return -perplexity(total / tokens)

    def score_loader(self, size: int):
        """batch size -> the search-valid stream batchified to ``size`` columns, its bptt windows in order."""
        source = batchify(self._valid_tokens, size).to(self.fixed_batch.x.device)
        if len(source) < 2:
            raise ConfigError(f"a score batch of {size} columns leaves fewer than 2 rows of search-valid")
        return [Window(*get_batch(source, i, self.bptt), VALID) for i in range(0, len(source) - 1, self.bptt)]

    def epoch_stats(self, train: Meter, valid: Meter) -> dict:
        stats = super().epoch_stats(train, valid)
        stats["train_ppl"] = perplexity(stats["train_loss"])
        stats["valid_ppl"] = perplexity(stats["valid_loss"])
        return stats


def repackage(hidden):
    """A hidden state detached from the graph that made it (train_search.py's repackage_hidden)."""
    if isinstance(hidden, torch.Tensor):
        return hidden.detach()
    return type(hidden)(repackage(h) for h in hidden)


def _batch_of(hidden) -> int:
    while not isinstance(hidden, torch.Tensor):
        hidden = hidden[0]
    return hidden.shape[-2]

