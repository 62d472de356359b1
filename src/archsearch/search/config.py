"""The resolved configuration of a differentiable search: every value a run depends on.

A method preset sets some fields (its paper's values); the user's config file and ``key=value``
overrides come last. ``config.yaml`` in a run directory is this object, so ``--config`` with it
reproduces the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from archsearch.errors import ConfigError
from archsearch.utils.io import read_yaml, write_yaml_atomic
from archsearch.errors import did_you_mean
from archsearch.settings import NON_NEGATIVE, POSITIVE, PROBABILITY, SEED, Rule, at_least, coerce, one_of


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
    # -- epoch hooks: early-stopping rules by name (see search/hooks/), options per rule name
    early_stop: str | None = None
    early_stop_options: dict = field(default_factory=dict)
    # -- a driver composes several searches (P-DARTS' stages); None: one DifferentiableSearch
    driver: str | None = None
    driver_options: dict = field(default_factory=dict)
    # -- diagnostics
    # epochs between estimates of the Hessian's largest eigenvalue; 0 turns it off; "auto": as often as
    # keeps it within 10% of the search's time (search/eigenvalue.py)
    hessian_every: int | str = "auto"
    hessian_iters: int = 10  # Lanczos steps at most (our choice: the top Ritz value settles in about 8)
    # -- after the search: brief training of the found cell (0 to skip)
    train_epochs: int = 0
    train_C: int | None = None
    train_N: int | None = None

    def __post_init__(self):
        hints = _hints()
        for f in fields(self):
            value = coerce(f.name, hints[f.name], getattr(self, f.name))
            rule = RULES.get(f.name)
            if rule is not None:
                rule.check(f.name, value)
            object.__setattr__(self, f.name, value)

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
        write_yaml_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> SearchConfig:
        return apply_overrides(cls(), read_config_file(path))


#: the range of each value (types come from the annotations above)
RULES: dict[str, Rule] = {
    "seed": SEED,
    "limit_train": at_least(1),
    "C": at_least(1),
    # A supernet is built whole in memory: past these depths construction alone takes minutes
    # (NB201 has 3N+2 cells: 5 in the benchmark; DARTS searches with 8 and trains with 20).
    "N": Rule(lambda v: 1 <= v <= 100, "in 1..100"),
    "layers": Rule(lambda v: 1 <= v <= 300, "in 1..300"),
    "supernet_path": one_of("fast", "reference"),
    "epochs": at_least(1),
    "batch_size": at_least(1),
    "w_lr": POSITIVE,
    "w_lr_min": NON_NEGATIVE,
    "w_momentum": PROBABILITY,
    "w_weight_decay": NON_NEGATIVE,
    "grad_clip": POSITIVE,
    "order": one_of(1, 2),
    "unrolled_lr": POSITIVE,
    "arch_warmup_epochs": NON_NEGATIVE,
    "drop_path_prob": PROBABILITY,
    "arch_lr": POSITIVE,
    "arch_betas": Rule(lambda b: all(0.0 <= v < 1.0 for v in b), "two values in [0, 1)"),
    "arch_weight_decay": NON_NEGATIVE,
    "hessian_every": Rule(lambda v: v == "auto" or (isinstance(v, int) and v >= 0), "'auto' or an integer >= 0"),
    "hessian_iters": at_least(1),
    "train_epochs": NON_NEGATIVE,
    "train_C": at_least(1),
    "train_N": at_least(1),
}


def _hints() -> dict:
    return get_type_hints(SearchConfig)


def read_config_file(path: str | Path) -> dict:
    """The mapping a YAML config file holds (a run's config.yaml, or a user's partial one)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found (or not a regular file)")
    try:
        data = read_yaml(path)
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text") from None
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
        raise ConfigError(f"config file '{path}' is not valid YAML: {first}") from None
    except RecursionError:
        raise ConfigError(f"config file '{path}' is nested too deeply to read") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file '{path}': {err.strerror or err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of key: value, not a {type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"config file '{path}' has a key that is not a name: {bad[0]!r}")
    return data


def apply_overrides(config: SearchConfig, overrides: dict[str, Any]) -> SearchConfig:
    """A copy of ``config`` with ``overrides`` applied; unknown keys name the closest valid key."""
    hints = _hints()
    changes = {}
    for key, value in overrides.items():
        if key not in hints:
            raise ConfigError(f"unknown configuration key {str(key)!r}{did_you_mean(key, hints)}")
        changes[key] = coerce(key, hints[key], value)
    return dataclasses.replace(config, **changes)  # __post_init__ checks the ranges


def parse_key_values(items: list[str]) -> dict[str, str]:
    """``["epochs=3", "w_lr=0.1"]`` -> ``{"epochs": "3", "w_lr": "0.1"}`` (values coerced later)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must be key=value")
        if key in out:
            raise ConfigError(f"'{key}' is given twice")
        out[key] = value
    return out
