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

from archsearch.errors import ConfigError, shown
from archsearch.utils.io import read_yaml, write_yaml_atomic
from archsearch.errors import did_you_mean
from archsearch.settings import NON_NEGATIVE, POSITIVE, PROBABILITY, SEED, Rule, at_least, coerce, one_of


def setting(default, meaning: str):
    """A SearchConfig field with its one-line meaning (``archsearch config`` prints it); a mutable default
    is copied for each instance."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"meaning": meaning})
    return field(default=default, metadata={"meaning": meaning})


@dataclass
class SearchConfig:
    # -- what to search, on what
    space: str = setting("nb201", "the search space ('archsearch spaces')")
    method: str = setting("balenas", "the method preset ('archsearch methods'; balenas: docs/balenas.md)")
    data: str = setting("digits", "the dataset: digits | cifar10 | cifar100 | imagefolder | synthetic")
    data_dir: str | None = setting(None, "where the dataset lies (null: the dataset's default place)")
    limit_train: int | None = setting(None, "a seeded subset of the training set of this size (CPU-scale searches)")
    seed: int = setting(0, "the seed of every random choice of the run")
    deterministic: bool = setting(False, "deterministic kernels: bit-for-bit repeatable runs (slower)")
    device: str | None = setting(None, "torch device; null: CUDA when present, else CPU")
    distributed: bool = setting(False, "data-parallel under torchrun (search/distributed.py); batch_size is global")
    # -- supernet (NAS-Bench-201 protocol: C=16, N=5; DARTS search: C=16, 8 layers)
    C: int = setting(16, "initial channels of the supernet")
    N: int = setting(5, "NB201 cells per stage of the supernet")
    layers: int = setting(8, "DARTS cells of the supernet")
    track_running_stats: bool = setting(
        True, "BN running statistics in the supernet: the NB201 scripts' BN=1 (docs/search.md: it changes results)")
    supernet_options: dict = setting({}, "options passed to space.supernet (e.g. partial_channels)")
    supernet_path: str = setting(
        "fast", "fast: fused cells where the maths is the same; reference: every op alone (docs/architecture.md)")
    task_options: dict = setting({}, "options of the search task: for ptb, bptt, ar, tar, batches (docs/rnn.md)")
    # -- the bilevel loop (DARTS, Liu et al. 2019, Sec. 3 / quark0/darts train_search.py)
    epochs: int = setting(50, "search epochs")
    batch_size: int = setting(64, "images per batch (global when distributed)")
    w_lr: float = setting(0.025, "learning rate of the weights (SGD), annealed by cosine")
    w_lr_min: float = setting(0.001, "the weights' learning rate at the end of the cosine")
    w_momentum: float = setting(0.9, "SGD momentum of the weights")
    w_nesterov: bool = setting(False, "Nesterov momentum for the weights")
    w_weight_decay: float = setting(3e-4, "weight decay of the weights")
    grad_clip: float | None = setting(5.0, "max global norm of the weights' gradient; null: no clipping (SETN)")
    order: int = setting(1, "1: first-order architecture gradient; 2: the unrolled second-order step")
    step_order: str = setting(
        "arch-first", "per iteration: arch-first (DARTS) or weights-first (XNAS Alg. 1: alpha's step at the new w)")
    unrolled_lr: float | None = setting(None, "xi of the unrolled step; null: the current weight learning rate, "
                                              "as DARTS")
    # exact by default: the reference's finite difference (quark0/darts cnn/architect.py:76-91, r = 0.01)
    # measures ReLU and max-pool kinks rather than the derivative (docs/search.md, benchmarks/second_order_hvp.py)
    hvp: str = setting("exact", "the second-order step's Hessian-vector product: exact (double backward) | "
                                "finite-difference (DARTS' central difference, r = 0.01)")
    arch_warmup_epochs: int = setting(0, "epochs that train the weights only, before any architecture step")
    arch_gradient: str = setting(
        "pathwise", "pathwise: through the op weights (order 1 or 2); reinforce: a score function (ENAS' controller)")
    arch_steps: int = setting(
        0, "0: an architecture step beside each weight step; K: K architecture steps after each epoch's (ENAS)")
    drop_path_prob: float = setting(
        0.0, "ScheduledDropPath on mixed edges, raised linearly to this (RobustDARTS); 0 is off")
    # -- architecture optimizer (DARTS: Adam(3e-4, betas (0.5, 0.999), wd 1e-3))
    relaxation: str = setting("softmax", "how alpha becomes op weights (relax/: softmax, gaussian, gumbel, ...)")
    relaxation_options: dict = setting({}, "options of the relaxation")
    arch_optimizer: str = setting("adam", "optimizer of the architecture parameters (optim/)")
    arch_lr: float = setting(3e-4, "learning rate of the architecture optimizer")
    arch_betas: tuple[float, float] = setting((0.5, 0.999), "Adam betas of the architecture optimizer")
    arch_weight_decay: float = setting(1e-3, "weight decay of the architecture parameters")
    arch_options: dict = setting({}, "further options of the architecture optimizer")
    # -- selection
    selector: str = setting("argmax", "how the genotype is chosen at the end (search/selectors/)")
    selector_options: dict = setting({}, "options of the selector")
    # -- epoch hooks: early-stopping rules by name (see search/hooks/), options per rule name
    early_stop: str | None = setting(None, "early-stopping rule(s) by name, e.g. dartsplus or rdarts; null: none")
    early_stop_options: dict = setting({}, "options per early-stopping rule name")
    # -- a driver composes several searches (P-DARTS' stages); None: one DifferentiableSearch
    driver: str | None = setting(None, "a driver composing several searches (P-DARTS' stages); null: one search")
    driver_options: dict = setting({}, "options of the driver")
    # -- diagnostics
    hessian_every: int | str = setting("auto", "epochs between estimates of the Hessian's largest eigenvalue; 0 "
                                       "turns it off; auto: as often as keeps it within 5% of the search's "
                                       "time (search/eigenvalue.py)")
    # our choice: the top Ritz value settles in about 8 steps on both spaces (benchmarks/diagnostic_cost.py)
    hessian_iters: int = setting(10, "Lanczos steps at most per Hessian eigenvalue estimate")
    # RobustDARTS' Hessian is first order (automl/RobustDARTS src/search/train_search.py:393, search/eigenvalue.py)
    hessian_order: int = setting(1, "1: Hessian of L_val(w, alpha), as RobustDARTS; 2: of the unrolled "
                                    "L_val(w - xi grad_w L_train, alpha)")
    # -- after the search: brief training of the found cell (0 to skip)
    train_epochs: int = setting(0, "epochs of a brief training of the found cell after the search; 0 skips it")
    train_C: int | None = setting(None, "initial channels of that training's network; null: the space's default")
    train_N: int | None = setting(None, "NB201 cells per stage of that training's network; null: the default")

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


#: the one-line meaning of each key, from the fields above
MEANINGS: dict[str, str] = {f.name: f.metadata["meaning"] for f in fields(SearchConfig)}

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
    "step_order": one_of("arch-first", "weights-first"),
    "unrolled_lr": POSITIVE,
    "hvp": one_of("exact", "finite-difference"),
    "arch_warmup_epochs": NON_NEGATIVE,
    "arch_gradient": one_of("pathwise", "reinforce"),
    "arch_steps": NON_NEGATIVE,
    "drop_path_prob": PROBABILITY,
    "arch_lr": POSITIVE,
    "arch_betas": Rule(lambda b: all(0.0 <= v < 1.0 for v in b), "two values in [0, 1)"),
    "arch_weight_decay": NON_NEGATIVE,
    "hessian_every": Rule(lambda v: v == "auto" or (isinstance(v, int) and v >= 0), "'auto' or an integer >= 0"),
    "hessian_iters": at_least(1),
    "hessian_order": one_of(1, 2),
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
            raise ConfigError(f"unknown configuration key {shown(str(key))}{did_you_mean(key, hints, n=5)} "
                              "('archsearch config METHOD' lists every key)")
        changes[key] = coerce(key, hints[key], value)
    return dataclasses.replace(config, **changes)  # __post_init__ checks the ranges


def layered_config(method: str | None = None, config_file: str | Path | None = None,
                   overrides: dict | None = None) -> SearchConfig:
    """Defaults, then the method's preset, then the space's settings where it has its own task (the DARTS
    recurrent cell's), then the config file, then the overrides, each key checked for its type and range (``resolve.resolve_config`` checks the combination on top).

    The method is the one named by the argument, else by the overrides, else by the file, else the default.
    """
    from archsearch.search.methods import METHODS
    from archsearch.search.methods.spaces import space_settings

    from_file = read_config_file(config_file) if config_file is not None else {}
    overrides = dict(overrides or {})
    given = [m for m in (method, overrides.get("method"), from_file.get("method")) if m is not None]
    name = given[0] if given else SearchConfig.method
    if not isinstance(name, str) or not name.strip():  # an empty name is no method, not the default one
        raise ConfigError(f"method must be a name, got {shown(name)}")
    preset = METHODS.get(name)
    config = apply_overrides(SearchConfig(), {**preset.settings, "method": name})
    # a space searched on other data than images brings its task's recipe, over the method's (search/methods/spaces.py)
    space = overrides.get("space", from_file.get("space", config.space))
    config = apply_overrides(config, space_settings(name, space) if isinstance(space, str) else {})
    config = apply_overrides(config, from_file)
    return apply_overrides(config, {**overrides, "method": name})


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


#: SearchConfig keys a resumed run may change (``archsearch search --resume DIR key=value``); every other
#: key defines the run. The learning rates and their kin are for a run stopped by a NaN loss; a new
#: ``epochs`` re-plans every schedule over the new total (docs/reliability.md); the rest are diagnostics,
#: the training after the search, and where the data lives or the run computes.
RESUMABLE = frozenset({
    "epochs", "w_lr", "w_lr_min", "w_momentum", "w_weight_decay", "grad_clip", "unrolled_lr",
    "arch_lr", "arch_betas", "arch_weight_decay",
    "hessian_every", "hessian_iters", "train_epochs", "device", "deterministic", "data_dir",
})

#: the weight and architecture optimizers' param-group keys behind config keys a resume may change
W_GROUP_KEYS = {"w_momentum": "momentum", "w_weight_decay": "weight_decay"}
A_GROUP_KEYS = {"arch_lr": "lr", "arch_betas": "betas", "arch_weight_decay": "weight_decay"}
