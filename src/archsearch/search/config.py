"""The resolved configuration of a differentiable search: every value a run depends on.

A method preset sets some fields (its paper's values); the user's config file and ``key=value``
overrides come last. ``config.yaml`` in a run directory is this object, so ``--config`` with it
reproduces the run.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from archsearch.errors import ConfigError


@dataclass
class SearchConfig:
    # -- what to search, on what
    space: str = "nb201"
    method: str = "balenas"  # the default method (docs/balenas.md)
    data: str = "digits"
    data_dir: str | None = None
    limit_train: int | None = None  # a seeded subset of the training set (CPU-scale searches)
    seed: int = 0
    deterministic: bool = False
    device: str | None = None  # None: CUDA when present, else CPU
    distributed: bool = False  # data-parallel under torchrun (search/distributed.py); batch_size is global
    # -- supernet (NAS-Bench-201 protocol: C=16, N=5; DARTS search: C=16, 8 layers)
    C: int = 16
    N: int = 5
    layers: int = 8
    track_running_stats: bool = True  # the NB201 scripts' BN=1 (see docs/search.md: it changes results)
    supernet_options: dict = field(default_factory=dict)  # passed to space.supernet (e.g. partial_channels)
    supernet_path: str = "fast"  # "fast": fused cells where the maths is the same; "reference": every op alone
    # -- the bilevel loop (DARTS, Liu et al. 2019, Sec. 3 / quark0/darts train_search.py)
    epochs: int = 50
    batch_size: int = 64
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_nesterov: bool = False
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    order: int = 1  # 1: first order; 2: the unrolled second-order step
    unrolled_lr: float | None = None  # xi; None: the current weight learning rate, as DARTS
    arch_warmup_epochs: int = 0  # epochs that train the weights only, before any architecture step
    drop_path_prob: float = 0.0  # ScheduledDropPath on mixed edges, raised linearly to this (RobustDARTS)
    # -- architecture optimizer (DARTS: Adam(3e-4, betas (0.5, 0.999), wd 1e-3))
    relaxation: str = "softmax"
    relaxation_options: dict = field(default_factory=dict)
    arch_optimizer: str = "adam"
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_options: dict = field(default_factory=dict)
    # -- selection
    selector: str = "argmax"
    selector_options: dict = field(default_factory=dict)
    # -- epoch hooks: early-stopping rules by name (see search/hooks.py), options per rule name
    early_stop: str | None = None
    early_stop_options: dict = field(default_factory=dict)
    # -- a driver composes several searches (P-DARTS' stages); None: one DifferentiableSearch
    driver: str | None = None
    driver_options: dict = field(default_factory=dict)
    # -- diagnostics
    hessian_every: int = 1  # epochs between dominant-eigenvalue estimates; 0 turns it off
    hessian_iters: int = 20
    # -- after the search: brief training of the found cell (0 to skip)
    train_epochs: int = 0
    train_C: int | None = None
    train_N: int | None = None

    # ---------------------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["arch_betas"] = list(self.arch_betas)
        return out

    def replace(self, **changes) -> SearchConfig:
        return apply_overrides(self, changes)

    def save(self, path: str | Path) -> None:
        from archsearch.utils.io import write_yaml_atomic

        write_yaml_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> SearchConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file '{path}' not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file '{path}' is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file '{path}' must hold a mapping of key: value")
        return apply_overrides(cls(), data)


def _closest(key: str) -> str:
    close = difflib.get_close_matches(key, SearchConfig.keys(), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _coerce(name: str, hint, value):
    """Coerce a YAML or command-line value to the field's type, with a clear error."""
    if isinstance(value, str) and hint is not str:
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"cannot read value '{value}' for '{name}'") from None
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"'{name}' cannot be empty")
    try:
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if hint is int or text.startswith("int"):
            if isinstance(value, bool) or float(value) != int(value):
                raise TypeError
            return int(value)
        if hint is float or text.startswith("float"):
            return float(value)
        if hint is str or text.startswith("str"):
            return str(value)
        if text.startswith("tuple"):
            return tuple(float(v) for v in value)
        if hint is dict or text.startswith("dict"):
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
    except (TypeError, ValueError):
        raise ConfigError(f"bad value {value!r} for '{name}' (expected {text.replace('typing.', '')})") from None
    return value


def apply_overrides(config: SearchConfig, overrides: dict[str, Any]) -> SearchConfig:
    """A copy of ``config`` with ``overrides`` applied; unknown keys name the closest valid key."""
    hints = get_type_hints(SearchConfig)
    changes = {}
    for key, value in overrides.items():
        if key not in hints:
            raise ConfigError(f"unknown configuration key '{key}'{_closest(key)}")
        changes[key] = _coerce(key, hints[key], value)
    return dataclasses.replace(config, **changes)


def parse_key_values(items: list[str]) -> dict[str, str]:
    """``["epochs=3", "w_lr=0.1"]`` -> ``{"epochs": "3", "w_lr": "0.1"}`` (values coerced later)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' must be key=value")
        out[key.strip()] = value
    return out
