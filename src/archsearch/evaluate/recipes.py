"""Training recipes for a found architecture: the papers' hyper-parameters as named presets.

A recipe is a frozen dataclass; ``recipe.replace(epochs=3)`` or ``get_recipe("nb201", epochs=3)``
returns a copy with fields overridden, and an unknown field raises ConfigError naming the closest
valid one. ``network`` holds the options of ``space.network`` (C, N, layers, auxiliary, ...); an
override of ``network`` is merged into the preset's dict, so ``network={"C": 8}`` keeps the rest.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from archsearch.errors import ConfigError, did_you_mean, shown
from archsearch.registry import Registry
from archsearch.settings import coerce

SCHEDULES = ("cosine", "constant")
SCHEDULE_UNITS = ("epoch", "step")


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a discrete network is trained from scratch."""

    name: str = "custom"
    epochs: int = 200
    batch_size: int = 256
    eval_batch_size: int = 256
    lr: float = 0.1
    lr_min: float = 0.0
    schedule: str = "cosine"
    #: cosine steps once per epoch (quark0/darts) or once per batch (xautodl, NAS-Bench-201)
    schedule_unit: str = "epoch"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    #: max global gradient norm; 0 turns clipping off
    grad_clip: float = 0.0
    #: random crop (4-pixel zero padding) + horizontal flip on images of side >= 16
    crop_flip: bool = True
    cutout: int = 0
    #: final drop-path probability, scheduled linearly from 0 over the epochs (DARTS); 0 is off
    drop_path_prob: float = 0.0
    auxiliary_weight: float = 0.0
    label_smoothing: float = 0.0
    #: share of the training set held out as the validation split (0 trains on all of it)
    valid_fraction: float = 0.1
    network: dict = field(default_factory=dict)

    def __post_init__(self):
        hints = typing.get_type_hints(Recipe)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, coerce(f.name, hints[f.name], getattr(self, f.name)))
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            # batch norm in training mode normalises over the batch: one image per batch has nothing to
            # normalise against on the 1x1 features of the DARTS auxiliary head
            (self.batch_size >= 2, f"batch_size must be >= 2 (batch norm needs two images), got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (self.lr > 0 and self.lr_min >= 0, f"lr must be > 0 and lr_min >= 0, got {self.lr}, {self.lr_min}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {shown(self.schedule)}"),
            (self.schedule_unit in SCHEDULE_UNITS,
             f"schedule_unit must be one of {SCHEDULE_UNITS}, got {shown(self.schedule_unit)}"),
            (0 <= self.momentum < 1, f"momentum must lie in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.label_smoothing <= 1, f"label_smoothing must lie in [0, 1], got {self.label_smoothing}"),
            (self.grad_clip >= 0 and self.cutout >= 0, "grad_clip and cutout must be >= 0"),
            (0.0 <= self.drop_path_prob < 1.0, f"drop_path_prob must lie in [0, 1), got {self.drop_path_prob}"),
            (self.auxiliary_weight >= 0, f"auxiliary_weight must be >= 0, got {self.auxiliary_weight}"),
            (0.0 <= self.valid_fraction < 1.0, f"valid_fraction must lie in [0, 1), got {self.valid_fraction}"),
            (isinstance(self.network, dict), f"network must be a dict of network options, got {self.network!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"recipe '{self.name}': {message}")
        object.__setattr__(self, "network", dict(self.network))

    def replace(self, **overrides: Any) -> Recipe:
        """A copy with fields overridden; ``network`` is merged, not replaced."""
        valid = [f.name for f in dataclasses.fields(self)]
        for key in overrides:
            if key not in valid:
                raise ConfigError(f"unknown recipe field {str(key)!r}{did_you_mean(key, valid)} "
                                  f"(fields: {', '.join(valid)})")
        if "network" in overrides:
            network = coerce("network", dict | None, overrides["network"])
            overrides["network"] = {**self.network, **(network or {})}
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES: Registry[Recipe] = Registry("training recipe")

# NAS-Bench-201 (Dong & Yang, ICLR 2020), Table 1 / Sec. 2.4: SGD with Nesterov momentum 0.9,
# lr 0.1 annealed to 0 by cosine, weight decay 5e-4, batch 256, 200 epochs, random crop + flip;
# the benchmark's code (xautodl) anneals per iteration. C=16, N=5 as the benchmark's network.
# The held-out share (10%) is our choice: the paper's "cifar10-valid" setting uses a 25k/25k split.
RECIPES.register("nb201")(Recipe(
    name="nb201", epochs=200, batch_size=256, lr=0.1, lr_min=0.0, schedule="cosine", schedule_unit="step",
    momentum=0.9, nesterov=True, weight_decay=5e-4, crop_flip=True, cutout=0, network={"C": 16, "N": 5},
))

# DARTS (Liu, Simonyan & Yang, ICLR 2019), Sec. 4.2 / Appendix A.2, and quark0/darts train.py:
# 600 epochs, batch 96, SGD momentum 0.9, lr 0.025 cosine to 0 (stepped per epoch), weight decay
# 3e-4, cutout 16, drop-path 0.2 raised linearly from 0 (drop_path_prob * epoch / epochs), auxiliary
# towers weighted 0.4, gradient norm clipped at 5; 20 cells of 36 initial channels.
RECIPES.register("darts")(Recipe(
    name="darts", epochs=600, batch_size=96, lr=0.025, lr_min=0.0, schedule="cosine", schedule_unit="epoch",
    momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0, crop_flip=True, cutout=16,
    drop_path_prob=0.2, auxiliary_weight=0.4, network={"C": 36, "layers": 20, "auxiliary": True},
))

# NASNet-A on CIFAR-10 (Zoph et al., CVPR 2018), tensorflow/models research/slim/nets/nasnet/nasnet.py
# ("Notes for training NASNet Cifar Model" and cifar_config, lines 32-56 of the copy at
# Max-Reger-Institut/MeasureDetector ff46218) and nasnet_cifar_arg_scope
# (weight decay 5e-4): batch 32, lr 0.025 with one cosine period stepped per batch, auxiliary head 0.4,
# global gradient norm clipped at 5, 600 epochs (937,500 steps of 32), ScheduledDropPath keep 0.6 (drop 0.4).
# Momentum 0.9 is our choice (the notes leave the optimizer's momentum out). No cutout: the paper's
# 2.65% row adds cutout (cutout=16). Network sizes: those of the genotype's paper (space.network).
RECIPES.register("nasnet")(Recipe(
    name="nasnet", epochs=600, batch_size=32, lr=0.025, lr_min=0.0, schedule="cosine", schedule_unit="step",
    momentum=0.9, nesterov=False, weight_decay=5e-4, grad_clip=5.0, crop_flip=True, cutout=0,
    drop_path_prob=0.4, auxiliary_weight=0.4, network={"auxiliary": True},
))

# ENAS' macro network (Pham et al., ICML 2018), melodyguan/enas scripts/cifar10_macro_final.sh: 310 epochs
# (:38), batch 100 (:37), SGD with Nesterov momentum 0.9 (src/utils.py:212-214), lr 0.05 cosine to 0.001
# stepped per epoch (:49-51; utils.py:162 reads the epoch), the l2 term 2e-4 sum w^2 (:45, utils.py:118-123)
# i.e. weight decay 4e-4, no gradient clipping (utils.py:141-150 applies the unclipped gradients), random
# crop (4-pixel padding) and flip (src/cifar10/models.py:88-90), no cutout, all 50,000 training images
# (main.py:219, num_valids=0); 96 channels (:44), dropout 0.5 before the classifier (:48, the network's
# default). The reference restarts its cosine (T_0 10, T_mul 2, :52-53): ours anneals once.
RECIPES.register("enas-macro")(Recipe(
    name="enas-macro", epochs=310, batch_size=100, eval_batch_size=100, lr=0.05, lr_min=0.001,
    schedule="cosine", schedule_unit="epoch", momentum=0.9, nesterov=True, weight_decay=4e-4, grad_clip=0.0,
    crop_flip=True, cutout=0, valid_fraction=0.0, network={"C": 96},
))

#: the recipe a space's networks are trained with unless told otherwise
DEFAULT_RECIPE_FOR_SPACE = {"nb201": "nb201", "darts": "darts", "nasnet": "nasnet", "enas-macro": "enas-macro"}


def get_recipe(name: str | Recipe = "nb201", **overrides: Any) -> Recipe:
    """A registered recipe (or the given one) with ``overrides`` applied."""
    recipe = name if isinstance(name, Recipe) else RECIPES.get(name)
    return recipe.replace(**overrides) if overrides else recipe


def default_recipe(space) -> Recipe:
    """The paper recipe of a space (a space object or its name)."""
    space_name = space if isinstance(space, str) else space.name
    if space_name not in DEFAULT_RECIPE_FOR_SPACE:
        raise ConfigError(
            f"no default training recipe for space '{space_name}'; pass one of: {', '.join(RECIPES.names())}"
        )
    return RECIPES.get(DEFAULT_RECIPE_FOR_SPACE[space_name])
