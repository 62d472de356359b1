"""Registries of the pieces a method combines: architecture optimizers and selectors."""

from __future__ import annotations

from collections.abc import Callable

import torch

from archsearch.registry import Registry
from archsearch.checks import build

#: name -> builder(params, config, dataset_size=None) -> torch.optim.Optimizer over the architecture
#: parameters; dataset_size is the number of search-valid examples (what a Bayesian rule calls N)
ARCH_OPTIMIZERS: Registry[Callable] = Registry("architecture optimizer")


@ARCH_OPTIMIZERS.register("adam")
def _adam(params, config, dataset_size=None) -> torch.optim.Optimizer:
    # DARTS: Adam(lr 3e-4, betas (0.5, 0.999), weight decay 1e-3); arch_options: Adam's other arguments
    return build("architecture optimizer 'adam'", torch.optim.Adam, config.arch_options, params=params,
                 lr=config.arch_lr, betas=tuple(config.arch_betas), weight_decay=config.arch_weight_decay)


#: name -> driver(config, out_dir, *, resume, quiet, dataset) -> (last DifferentiableSearch, genotype, summary):
#: a method that composes several searches (P-DARTS' stages); selected by ``SearchConfig.driver``
DRIVERS: Registry[Callable] = Registry("search driver")
