"""Resuming a run with changed settings: which differences are allowed, and how they take effect.

A search and a training each keep their own list of the settings that may change on resume (next to
their resume code); these helpers compare, refuse in one line, and re-plan what a change touches.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from archsearch.errors import CheckpointError, ConfigError


def differences(before: dict, after: dict) -> list[str]:
    """Keys whose values differ (a key missing on one side differs), in ``after``'s order."""
    keys = list(after) + [k for k in before if k not in after]
    return [k for k in keys if k not in before or k not in after or before[k] != after[k]]


def refuse_changes(saved: dict, wanted: dict, may_change: set[str], where) -> list[str]:
    """The keys ``wanted`` changes from ``saved``; ConfigError naming the first one that may not change."""
    changed = differences(saved, wanted)
    fixed = [k for k in changed if k not in may_change]
    if fixed:
        raise ConfigError(f"cannot change '{fixed[0]}' when resuming '{where}' (it defines the run; start a new "
                          f"run for another value); what may change: {', '.join(sorted(may_change))}")
    return changed


def check_fits(saved: dict | None, current: dict, may_change: set[str], path) -> list[str]:
    """Compare the configuration a checkpoint was written with to the run's: the keys that changed in a
    permitted way; CheckpointError when the checkpoint is another run's."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint '{path}' does not say which run wrote it (no 'config'): it is not "
                              "this run's")
    changed = differences(saved, current)
    fixed = [k for k in changed if k not in may_change]
    if fixed:
        key = fixed[0]
        raise CheckpointError(f"checkpoint '{path}' belongs to another run or configuration: its {key} is "
                              f"{saved.get(key)!r}, this run's {current.get(key)!r}")
    return changed


def replan_cosine(scheduler: torch.optim.lr_scheduler.CosineAnnealingLR, *, total: int, lr: float,
                  lr_min: float) -> None:
    """Re-plan a cosine schedule where it stands: from the current step on, the learning rate follows the
    cosine from ``lr`` to ``lr_min`` over ``total`` steps, as a run planned that way from the start would
    (the steps already taken keep the old plan)."""
    step = scheduler.last_epoch
    scheduler.T_max, scheduler.eta_min = int(total), float(lr_min)
    scheduler.base_lrs = [float(lr)] * len(scheduler.optimizer.param_groups)
    now = lr_min + (lr - lr_min) * (1 + math.cos(math.pi * step / total)) / 2
    for group in scheduler.optimizer.param_groups:
        group["initial_lr"], group["lr"] = float(lr), now
    scheduler._last_lr = [now] * len(scheduler.optimizer.param_groups)


def set_hyperparameters(optimizer: torch.optim.Optimizer, changes: dict[str, tuple[str, Any, Any]],
                        what: str) -> None:
    """Apply ``{config key: (param-group key, old value, new value)}`` to every param group (a loaded
    state dict brings back the old values). A group that did not take the old value from the configuration
    (an optimizer that plans its own step size, say) refuses the change."""
    def same(a, b):
        return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b

    for key, (group_key, old, new) in changes.items():
        if not all(group_key in group and same(group[group_key], old) for group in optimizer.param_groups):
            raise ConfigError(f"cannot change '{key}' when resuming: the {what} ({type(optimizer).__name__}) does "
                              "not take its value from the configuration")
        for group in optimizer.param_groups:
            group[group_key] = tuple(new) if isinstance(group[group_key], tuple) else new
