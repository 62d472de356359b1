"""From a method name, a config file and overrides to one resolved, checked SearchConfig; and the
construction of the parts a configuration names, with their options checked."""

from __future__ import annotations

from pathlib import Path

import torch

from archsearch.data.datasets import DATASETS
from archsearch.errors import ConfigError
from archsearch.optim import ARCH_OPTIMIZERS
from archsearch.relax import RELAXATIONS, build_relaxation
from archsearch.search.config import SearchConfig, layered_config
from archsearch.search.drivers import DRIVERS
from archsearch.search.hooks import build_hooks
from archsearch.search.selectors import SELECTORS
from archsearch.search.task_select import check_task
from archsearch.spaces import get_space
from archsearch.checks import fits_in_memory
from archsearch.settings import build, check_options, keyword_options

#: SearchConfig keys that size a supernet; a space takes those its supernet() names
SUPERNET_KEYS = ("C", "N", "layers", "track_running_stats")
#: what the loop hands every supernet itself
SUPERNET_FIXED = ("num_classes", "relaxation", "in_channels", *SUPERNET_KEYS)


def resolve_config(method: str | None = None, config_file: str | Path | None = None,
                   overrides: dict | None = None) -> SearchConfig:
    """Defaults, then the method's preset, then the config file, then the overrides; then checked.

    The method is the one named by the overrides, else by the file, else the default.
    """
    overrides = dict(overrides or {})
    config = layered_config(method, config_file, overrides)
    # A size the space has no use for is an error where an override sets it off its default; a config
    # file may carry one (a saved config.yaml lists every key, and one file may serve several spaces).
    defaults = SearchConfig()
    check_config(config, explicit={k for k in overrides
                                   if k in SearchConfig.keys() and getattr(config, k) != getattr(defaults, k)})
    return config


def check_config(config: SearchConfig, explicit=()) -> None:
    """What no single key can tell: names that must exist, keys that must agree, options that must fit
    the parts they go to. ``explicit``: the keys the user set (a size key the space has no use for is
    an error then, not a silent no-op). Builds the cheap parts once, so that their own checks run
    before any data is read or any file written."""
    space = get_space(config.space)
    if config.arch_warmup_epochs >= config.epochs:
        raise ConfigError(f"arch_warmup_epochs ({config.arch_warmup_epochs}) must be below epochs "
                          f"({config.epochs}): otherwise the architecture is never trained")
    if config.w_nesterov and config.w_momentum == 0:
        raise ConfigError("w_nesterov needs momentum: set w_momentum above 0 or w_nesterov=false")
    takes = set(keyword_options(space.supernet))
    unused = [key for key in SUPERNET_KEYS if key in explicit and key not in takes]
    if unused:
        raise ConfigError(f"'{unused[0]}' does not apply to the {space.name} space "
                          f"(its supernet takes {', '.join(k for k in SUPERNET_KEYS if k in takes)})")
    supernet_options(space, config)
    network_takes = set(keyword_options(space.network))
    for key, value in (("train_C", config.train_C), ("train_N", config.train_N)):
        if value is not None and key[len("train_"):] not in network_takes:
            raise ConfigError(f"'{key}' does not apply to the {space.name} space's network")
    DATASETS.get(config.data)
    check_task(config, explicit)
    RELAXATIONS.get(config.relaxation)
    if config.driver is not None:
        DRIVERS.get(config.driver)
    elif config.driver_options:
        raise ConfigError("driver_options are given but no driver runs (driver is empty)")
    from archsearch.runtime import resolve_device

    resolve_device(config.device)
    check_arch_gradient(config, build_relaxation(config.relaxation, **config.relaxation_options))
    build_selector(config.selector, config.selector_options).check_space(space)
    build_hooks(config)
    dummy = [torch.zeros(shape, requires_grad=True) for shape in space.arch_shapes().values()]
    ARCH_OPTIMIZERS.get(config.arch_optimizer)(dummy, config, dataset_size=None)


def check_arch_gradient(config: SearchConfig, relaxation) -> None:
    """The architecture gradient must be the one the relaxation is trained by (search/estimators.py)."""
    if config.arch_gradient != relaxation.estimator:
        raise ConfigError(f"the '{config.relaxation}' relaxation is trained by arch_gradient={relaxation.estimator}, "
                          f"not {config.arch_gradient}")
    if config.arch_gradient == "reinforce":
        if config.order != 1:
            raise ConfigError("order=2 (the unrolled step) needs arch_gradient=pathwise: a score function has none")
        if config.hessian_every != 0:
            raise ConfigError("hessian_every must be 0 with arch_gradient=reinforce: there is no alpha to "
                              "take the Hessian of")
    if config.arch_steps and config.order != 1:  # after the epoch there is no train batch to unroll on
        raise ConfigError("arch_steps > 0 takes first-order steps only: set order=1 or arch_steps=0")
    if config.distributed and (config.arch_gradient == "reinforce" or config.arch_steps):
        raise ConfigError("a distributed search runs arch_gradient=pathwise with arch_steps=0 only")
    if config.arch_optimizer == "von" and (config.order != 1 or config.arch_gradient != "pathwise"
                                           or config.distributed):
        raise ConfigError("arch_optimizer=von takes the Hessian diagonal of the first-order architecture loss: "
                          "it runs with order=1, arch_gradient=pathwise and one process (vadam or vprop run "
                          "with any)")


def build_selector(name: str, options: dict):
    return build(f"selector '{name}'", SELECTORS.get(name), options)


def supernet_options(space, config: SearchConfig) -> dict:
    """``supernet_options`` checked against the space's supernet (sizes are configuration keys)."""
    return check_options(f"the {space.name} supernet", space.supernet, config.supernet_options, SUPERNET_FIXED)


def build_supernet(space, config: SearchConfig, relaxation, inputs: dict, device: torch.device) -> torch.nn.Module:
    """The space's supernet at the configured sizes, given what the task sizes it by (``inputs``: an image
    dataset's num_classes and in_channels, search/tasks.py), on ``device``; sizes whose parameters alone would not
    fit in the device's free memory are refused before anything is allocated (a shapes-only build on
    PyTorch's meta device counts them)."""
    takes = keyword_options(space.supernet)
    sizes = {key: getattr(config, key) for key in SUPERNET_KEYS if key in takes}
    what = f"the {space.name} supernet at {', '.join(f'{k}={v}' for k, v in sizes.items())}"

    def make():
        return space.supernet(relaxation=relaxation, **inputs, **sizes, **supernet_options(space, config))

    try:
        with torch.device("meta"):
            params = sum(p.numel() for p in make().parameters())
        # float32 weights, their gradients, SGD's momentum and the unrolled step's copy
        fits_in_memory(16 * params, f"{what} ({params:,} parameters)", device)
        return make().to(device)
    except (MemoryError, torch.OutOfMemoryError, OverflowError):
        raise ConfigError(f"{what} does not fit in memory: choose smaller sizes") from None
