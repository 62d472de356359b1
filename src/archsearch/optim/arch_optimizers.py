"""The architecture optimizers a configuration names (``arch_optimizer``), with their builders.

A builder is ``builder(params, config, dataset_size=None) -> optimizer`` over the architecture
parameters; ``dataset_size`` is the number of search-valid examples (what a Bayesian rule calls N).
``arch_options`` in the configuration are the optimizer's own options.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from archsearch.checks import number
from archsearch.settings import build, check_options
from archsearch.errors import ConfigError, shown
from archsearch.optim.base import Adam, NoArchitectureLearning
from archsearch.optim.dscd import DSCD
from archsearch.optim.expgrad import ExpGrad
from archsearch.optim.vadam import VAdam, VON, Vprop
from archsearch.registry import Registry

ARCH_OPTIMIZERS: Registry[Callable] = Registry("architecture optimizer")


@ARCH_OPTIMIZERS.register("adam")
def build_adam(params, config, dataset_size=None) -> torch.optim.Optimizer:
    # DARTS: Adam(lr 3e-4, betas (0.5, 0.999), weight decay 1e-3); arch_options: Adam's other arguments
    if "eps" in config.arch_options:  # torch takes 0, and a zero second moment then makes 0 / 0 = NaN steps
        number(config.arch_options["eps"], "architecture optimizer 'adam' option eps", positive=True)
    return build("architecture optimizer 'adam'", Adam, config.arch_options, params=params,
                 lr=config.arch_lr, betas=tuple(config.arch_betas), weight_decay=config.arch_weight_decay)


@ARCH_OPTIMIZERS.register("none")
def build_none(params, config, dataset_size=None) -> NoArchitectureLearning:
    """No architecture learning (RSPS, Li & Talwalkar 2019): alpha is never stepped, no arch step is taken."""
    if config.arch_options:
        raise ConfigError(f"the 'none' architecture optimizer takes no options, got {', '.join(sorted(config.arch_options))}")
    return NoArchitectureLearning(params)


# ---- BaLeNAS: the Bayesian learning rule (Zhang et al., CVPR 2022) ---------------------------------
#: In a search, the prior precision is set per search-valid example: delta = delta~ N. Khan et al. (2018)
#: read delta~ = delta / N as the weight decay of mu; fixing it (not delta) keeps both the step on mu,
#: about beta N g / (N s + delta) where N s << delta, and sigma = 1 / sqrt(N s + delta) the same whatever
#: the size of the split. BaLeNAS does not state delta; 0.012 is our choice from a sweep at 2,500
#: examples (docs/balenas.md#choosing-the-prior-precision): delta = 1 and 2.5 collapsed to
#: skip connections, 10 less often, 30 (delta~ = 0.012) did not.
PRIOR_PRECISION_PER_EXAMPLE = 0.012


def _variational(name, cls):
    def build_variational(params, config, dataset_size: int | None = None):
        what = f"architecture optimizer '{name}'"
        options = check_options(what, cls, config.arch_options, fixed=("params", "lr"))
        # N: the number of data points behind the architecture loss (the search-valid split).
        if dataset_size is not None:
            options.setdefault("dataset_size", dataset_size)
        if options.get("dataset_size") is not None:  # an explicit prior_precision in arch_options wins
            options.setdefault("prior_precision", PRIOR_PRECISION_PER_EXAMPLE * options["dataset_size"])
        return build(what, cls, options, params=params, lr=config.arch_lr)

    return build_variational


for _name, _cls in (("vadam", VAdam), ("von", VON), ("vprop", Vprop)):
    ARCH_OPTIMIZERS.register(_name)(_variational(_name, _cls))


# ---- DSCD around Adam (Bodin, Tomasi & Dai, ICLR 2021 NAS workshop) --------------------------------
_DSCD_OPTIONS = {"bound", "memory", "patience", "seed", "rounds", "switch"}


@ARCH_OPTIMIZERS.register("dscd-adam")
def build_dscd_adam(params, config, dataset_size=None) -> DSCD:
    """DSCD around Adam(arch_lr, arch_betas, arch_weight_decay); ``arch_options``: bound (a), memory (K),
    patience (n), switch ("paper", the default, or "window"), seed (default: the search's seed)."""
    options = dict(config.arch_options)
    unknown = set(options) - _DSCD_OPTIONS
    if unknown:
        raise ConfigError(f"unknown dscd option(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_DSCD_OPTIONS))})")
    options.setdefault("seed", config.seed)
    adam = torch.optim.Adam(params, lr=config.arch_lr, betas=tuple(config.arch_betas),
                            weight_decay=config.arch_weight_decay)
    return DSCD(adam, **options)


# ---- XNAS: exponentiated gradient with wipeout (Nayman et al., NeurIPS 2019) -----------------------
#: L, the clip bound of the experts' losses dL/dp: the L of XNAS Thm 1, whose learning rate is
#: eta* = sqrt(2 ln N / T) / L (optim/expgrad.py). Our choice (the paper states the bound, not a
#: value): 1.0 bounds the per-step dL/dp we measured on NB201 supernets by a wide margin, so the
#: clip rarely binds and the regret bound holds as stated.
DEFAULT_GRAD_BOUND = 1.0


@ARCH_OPTIMIZERS.register("expgrad")
def build_expgrad(params, config, dataset_size=None) -> ExpGrad:
    """ExpGrad over the alphas. ``arch_options``: ``lr`` (None: eta* of XNAS Thm 1 for the planned rounds,
    set by the loop, over the experts left after ``remove_ops``), ``grad_bound`` (L), ``wipeout``,
    ``remove_ops`` (ops removed from the start; default ["none"]: the zero op's loss dL/dp is identically 0,
    so it is no expert, and a DARTS genotype cannot express an edge whose only survivor is the zero op)."""
    from archsearch.spaces import get_space  # the ops' names; spaces need not load with the optimizers

    options = dict(config.arch_options)
    remove_ops = options.pop("remove_ops", ["none"])
    if not isinstance(remove_ops, (list, tuple)) or not all(isinstance(op, str) for op in remove_ops):
        raise ConfigError(f"remove_ops takes a list of op names, got {shown(remove_ops)}")
    ops = get_space(config.space).ops
    unknown = [op for op in remove_ops if op not in ops]
    if unknown:
        raise ConfigError(f"remove_ops names ops the {config.space} space lacks: {', '.join(unknown)} "
                          f"(ops: {', '.join(ops)})")
    params = list(params)
    removed = [torch.tensor([op in remove_ops for op in ops]) for _ in params]
    allowed = {"lr", "grad_bound", "wipeout", "rounds"}
    if set(options) - allowed:
        raise ConfigError(f"unknown expgrad option(s) {', '.join(sorted(set(options) - allowed))} "
                          f"(known: {', '.join(sorted(allowed | {'remove_ops'}))})")
    options.setdefault("grad_bound", DEFAULT_GRAD_BOUND)
    return ExpGrad(params, removed=removed, **options)
