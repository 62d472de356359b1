"""What the search loop shows the components it calls (selectors, epoch hooks, relaxations): the
space, the supernet and the architecture state, the run's settings, and a fixed batch to score on.
Not the loop itself, so a component cannot reach into the loop's optimizers, loaders or files
beyond what is listed here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from archsearch.search.config import SearchConfig

if TYPE_CHECKING:
    from archsearch.relax.base import Relaxation
    from archsearch.spaces.base import SearchSpace


@dataclass(frozen=True)
class SearchView:
    """The search at one moment, as ``DifferentiableSearch.view()`` builds it for each call."""

    space: SearchSpace
    supernet: torch.nn.Module  #: the space's supernet, architecture parameters included
    relaxation: Relaxation  #: alpha -> op weights
    arch_optimizer: torch.optim.Optimizer  #: what steps alpha (ExpGrad's forecasters are read from it)
    config: SearchConfig  #: the run's settings (read, never changed)
    epoch: int  #: epochs done so far (0-based index of the epoch that runs next)
    device: torch.device
    #: a fixed search-valid batch (x, y): the Hessian's batch, and the one proxies score candidates on
    score_batch: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    in_channels: int
    #: where the run writes (None: nowhere); a selector may save what it decided there
    out_dir: Path | None = None
    #: batch_size -> a seeded, shuffled, unaugmented loader over the search-valid split (one-shot ranking)
    valid_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None
    #: (model, batches) -> a candidate's score, higher better (the task's: None, top-1 accuracy in %)
    score: Callable[[torch.nn.Module, Iterable], float] | None = None
    score_name: str = "shared-weight accuracy"

    @property
    def alphas(self) -> list[torch.Tensor]:
        return self.supernet.arch_parameters()

    def deterministic_weights(self) -> dict[str, torch.Tensor]:
        """The relaxation's weights of what was learned (no sampling), per cell type: all ops' columns,
        edges scaled where the supernet normalises them."""
        weights = {name: self.relaxation.deterministic_weights(alpha).cpu()
                   for name, alpha in self.supernet.named_arch_parameters().items()}
        return self.supernet.selection_weights(weights)
