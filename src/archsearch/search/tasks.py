"""What a search learns from: the one seam between the search loop (search/loop.py) and its data.

A ``SearchTask`` owns the search-train and search-valid batches, the loss of a batch and what it adds to an
epoch's meter, a fixed batch for diagnostics, and what the supernet and the SearchView are sized by. The
loop is the same for every task. ``ImageClassification`` is DARTS' CNN search (cross entropy on two
halves of an image training set); ``LanguageModelling`` (search/lm_task.py) its recurrent-cell search on a
token stream. The task is chosen by the dataset (search/task_select.py's ``build_task``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from archsearch.data import BatchLoader, default_augment, load_dataset
from archsearch.errors import ConfigError
from archsearch.search.meter import Meter


class SearchTask:
    """The data side of a search. Loaders iterate batches, have ``len`` and ``set_epoch(e)`` (a pass is
    determined by the seed and ``e``, so a resumed run sees the same batches)."""

    #: what the supernet is built with besides its sizes: ``space.supernet(**inputs, ...)``
    supernet_inputs: dict
    #: a fixed search-valid batch: the Hessian's, the one proxies score candidates on
    fixed_batch: object
    #: what ``score`` ranks candidates by (the shared-weights selector's record)
    score_name: str = "shared-weight accuracy"
    #: the search-valid examples (architecture optimizers that scale with the dataset's size)
    valid_size: int
    #: the virtual weight step of the unrolled gradient clips its gradient to this norm (None: no clip)
    unrolled_clip: float | None = None
    #: the view's ``num_classes`` and ``in_channels`` (what discrete networks of the space are built with)
    num_classes: int
    in_channels: int = 0

    train_loader: Iterable
    valid_loader: Iterable

    def loss(self, model: torch.nn.Module, batch, meter: Meter | None = None, step: str | None = None
             ) -> torch.Tensor:
        """The loss of ``model`` on ``batch``, added to ``meter`` when one is handed. ``step``: "weights" or
        "arch" where this is that step's own forward on its stream (a recurrent task carries its hidden
        state on from it), None where the loss is a pure function of the batch (virtual steps,
        Hessian-vector products, diagnostics)."""
        raise NotImplementedError

    def step_scope(self, w_optimizer: torch.optim.Optimizer, train_batch) -> contextlib.AbstractContextManager:
        """The context of one iteration's steps (the language model's learning rate scaled to its window)."""
        return contextlib.nullcontext()

    def begin_epoch(self, epoch: int) -> None:
        self.train_loader.set_epoch(epoch)
        self.valid_loader.set_epoch(epoch)

    def epoch_stats(self, train: Meter, valid: Meter) -> dict:
        (train_loss, train_acc), (valid_loss, valid_acc) = train.result(), valid.result()
        return {"train_loss": train_loss, "train_acc": train_acc, "valid_loss": valid_loss, "valid_acc": valid_acc}

    def diagnostic_loss(self, model: torch.nn.Module, batch) -> torch.Tensor:
        """L_val on ``batch`` as a fixed function of the architecture (the Hessian diagnostic's,
        search/eigenvalue.py): every call on the same batch computes the same function."""
        raise NotImplementedError

    def reward(self, model: torch.nn.Module, batch, meter: Meter | None = None) -> float:
        """ENAS' reward of the cell ``model`` computes now (a fixed one-hot path, eval mode, no gradient) on
        ``batch``, the loss added to ``meter`` where one is handed (search/estimators.py)."""
        raise NotImplementedError

    def score(self, model: torch.nn.Module, batches: Iterable) -> float:
        """A candidate's shared-weight score over ``batches`` (higher is better): the shared-weights
        selector's ranking (search/selectors/shared_weights.py)."""
        raise NotImplementedError

    def score_loader(self, size: int) -> Iterable:
        """batch size -> a seeded loader over search-valid (one-shot ranking: SearchView.valid_batches)."""
        raise ConfigError("this task has no loader of search-valid batches for ranking")

    def check(self, config) -> None:
        """Refuse settings the task cannot honour (one-line ConfigError)."""


def accuracy_reward(logits: torch.Tensor, y: torch.Tensor, meter: Meter | None = None) -> float:
    """ENAS' reward on images: top-1 accuracy as a fraction (ENAS.py:142-143)."""
    if meter is not None:
        meter.update(F.cross_entropy(logits, y), logits, y)
    return float((logits.argmax(dim=-1) == y).float().mean())


def top1_percent(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Top-1 accuracy in % over ``batches`` (RANDOM-NAS.py:107-131, SETN.py:117-140)."""
    correct = total = 0
    for x, y in batches:
        correct += int((model(x).argmax(dim=1) == y).sum())
        total += int(y.shape[0])
    if not total:
        raise ConfigError("no batch to score the candidate on")
    return 100.0 * correct / total


class ImageClassification(SearchTask):
    """Cross entropy on the two seeded halves of an image training set (DARTS, Liu et al. 2019, Sec. 3.1),
    augmented as the dataset's default, both halves batched at ``batch_size``."""

    def __init__(self, config, dataset=None, device: torch.device | str = "cpu", quiet: bool = False):
        self.dataset = dataset if dataset is not None else load_dataset(
            config.data, config.data_dir, limit_train=config.limit_train, quiet=quiet)
        search_train, search_valid = self.dataset.search_split(seed=config.seed)
        if min(len(search_train), len(search_valid)) < 2:
            raise ConfigError(f"the search needs at least 2 examples in each half of the training set, "
                              f"{self.dataset.name} holds {len(self.dataset.train_y)}: raise limit_train")
        loader = dict(batch_size=config.batch_size, shuffle=True, augment=default_augment(self.dataset),
                      mean=self.dataset.mean, std=self.dataset.std, device=device)
        self.train_loader = BatchLoader(search_train, seed=config.seed, **loader)
        self.valid_loader = BatchLoader(search_valid, seed=config.seed + 1, **loader)
        self._score = lambda size: BatchLoader(
            search_valid, seed=config.seed + 2, **{**loader, "augment": None, "batch_size": size})
        self.valid_size = len(search_valid)
        self.valid_loader.set_epoch(0)
        self.fixed_batch = next(iter(self.valid_loader))  # a fixed batch: the Hessian's epochs are comparable
        self.num_classes, self.in_channels = self.dataset.num_classes, self.dataset.in_channels
        self.supernet_inputs = {"num_classes": self.num_classes, "in_channels": self.in_channels}

    def loss(self, model, batch, meter=None, step=None):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if meter is not None:
            meter.update(loss.detach(), logits.detach(), y)
        return loss

    def diagnostic_loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    def reward(self, model, batch, meter=None):
        x, y = batch
        return accuracy_reward(model(x), y, meter)

    def score(self, model, batches):
        return top1_percent(model, batches)

    def score_loader(self, size):
        return self._score(size)
