"""ENAS' controller as a relaxation (Pham, Guan, Zoph, Le & Dean, "Efficient Neural Architecture Search via
Parameter Sharing", ICML 2018), on NAS-Bench-201 as its authors ran it (D-X-Y/AutoDL-Projects
exps/NAS-Bench-201-algos/ENAS.py, xautodl/models/cell_searchs/search_model_enas_utils.py).

The architecture is not a tensor alpha but an LSTM controller (relax/controllers.py) over one op per edge:
hidden 32, 2 layers, logits <- 2.5 tanh(logits / 5), U(-0.1, 0.1) initialisation
(search_model_enas_utils.py:17-20, 42-46, 55-57). Its parameters are what the architecture optimizer steps
(``arch_parameters``); the supernet's own alpha is left unused.

- Weight phase: every supernet forward draws one cell from the controller (no gradient) and the op weights
  are its one-hot rows, so only the sampled op of each edge is computed (``hard``; ENAS.py:55-60).
- Architecture phase: the search's ``reinforce`` estimator (search/estimators.py) samples cells itself and
  asks ``policy_loss`` for each one's REINFORCE loss; this object keeps the moving-average baseline.
- Not sampling (logging, argmax): the controller's greedy path, each edge's probabilities given the most
  likely ops before it.

Other spaces (ENAS' micro search, Sec. 2.3: DARTS', NASNet's): the controller samples the space's decisions
(``choice_shape``, ``choice_sizes``: per node its inputs and their ops), one cell per forward for every cell
type; ``path_weights`` hands each cell type the one-hot weights of the genotype they decode to, ``none`` on
the rows it leaves out (``Supernet.path_weights``, the weights the shared-weights selector scores it with),
and not sampling, the greedy path's cell in the same form.

``policy_loss`` of a sample with accuracy A (a fraction), log-probability log p and entropy H, with
R = A + w H (w: ``entropy_weight``) and baseline decay d (``baseline_decay``):

    rule "xautodl" (ENAS.py:144-152, the NAS-Bench-201 runs): b_e is the baseline the epoch started with
        b = A                          in the first epoch (b_0 is None)
        b = b_e - (1 - d) (b_e - R)    otherwise, and the epoch's last b becomes b_{e+1}
        loss = -log p * (R - b)        H keeps its gradient (R - b = d (R - b_e), or w H in epoch one)
    rule "enas" (melodyguan/enas src/cifar10/micro_controller.py, build_trainer): H without gradient,
        b <- b - (1 - d) (b - R) per sample from b = 0, then loss = -log p * (R - b) with the new b.

``kind``: "lstm" (the controller above, one categorical per alpha row; where the supernet states
``choice_sizes`` the choices a row lacks get probability 0) or "macro" (ENAS' macro controller,
relax/macro_controller.py: per layer an op, then skip bits by attention over earlier layers; the supernet's
alpha has L (L + 1) / 2 rows in the reference's arc order, spaces/enas_macro_supernet.py). With "macro" the
loss adds ``skip_weight`` times the sample's skip penalty, KL toward the skip rate ``skip_target``
(general_controller.py:291-292). ``temperature`` / ``grad_clip`` None: no temperature / no clipping.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.checks import integer, number
from archsearch.errors import ConfigError, UnknownNameError
from archsearch.relax.base import RELAXATIONS, Relaxation
from archsearch.relax.controllers import LSTMController, choice_mask
from archsearch.relax.macro_controller import MacroController
from archsearch.spaces.supernet import one_hot_path

RULES = ("xautodl", "enas")
KINDS = ("lstm", "macro")


@RELAXATIONS.register("controller")
class ControllerRelaxation(Relaxation):
    """An LSTM controller's sample as one-hot op weights; REINFORCE's baseline and per-sample loss."""

    #: the architecture gradient this relaxation needs (search/estimators.py)
    estimator = "reinforce"

    def __init__(self, hidden: int = 32, layers: int = 2, temperature: float | None = 5.0,
                 tanh_constant: float = 2.5, init_range: float = 0.1, entropy_weight: float = 1e-4,
                 baseline_decay: float = 0.99, aggregate: int = 20, grad_clip: float | None = 5.0,
                 rule: str = "xautodl", kind: str = "lstm", skip_target: float = 0.4, skip_weight: float = 0.8):
        # search_model_enas_utils.py:17-20 (lstm_size 32, 2 layers, tanh 2.5, T 5), :42 (U(-0.1, 0.1));
        # ENAS.sh:43-46 (entropy weight 1e-4, bl_dec 0.99, num_aggregate 20); ENAS.py:169 (clip 5)
        self.hidden = integer(hidden, "controller hidden", minimum=1, maximum=4096)
        self.layers = integer(layers, "controller layers", minimum=1, maximum=64)
        self.temperature = None if temperature is None else number(temperature, "controller temperature",
                                                                    positive=True)
        self.tanh_constant = number(tanh_constant, "controller tanh_constant", positive=True)
        self.init_range = number(init_range, "controller init_range", minimum=0.0)
        self.entropy_weight = number(entropy_weight, "controller entropy_weight", minimum=0.0)
        self.baseline_decay = number(baseline_decay, "controller baseline_decay", minimum=0.0)
        if self.baseline_decay > 1:
            raise ConfigError(f"controller baseline_decay must be in [0, 1], got {baseline_decay}")
        self.aggregate = integer(aggregate, "controller aggregate", minimum=1, maximum=10**6)
        self.grad_clip = None if grad_clip is None else number(grad_clip, "controller grad_clip", positive=True)
        if rule not in RULES:
            raise UnknownNameError("controller rule", rule, RULES)
        if kind not in KINDS:
            raise UnknownNameError("controller kind", kind, KINDS)
        self.rule, self.kind = rule, kind
        # general_controller.py's macro search: --controller_skip_target=0.4, --controller_skip_weight=0.8
        # (scripts/cifar10_macro_search.sh:38-39); read by kind "macro" only
        self.skip_target = number(skip_target, "controller skip_target", minimum=0.0)
        if not 0 < self.skip_target < 1:
            raise ConfigError(f"controller skip_target must lie in (0, 1), got {skip_target}")
        self.skip_weight = number(skip_weight, "controller skip_weight", minimum=0.0)
        self._skip_penalty: torch.Tensor | None = None  # the last sample's, for its policy_loss
        self.controller: LSTMController | MacroController | None = None
        self.space = None  #: the space whose decisions the controller samples (None: one per alpha row)
        #: the baseline: "xautodl" b_e (None before the first epoch ends) and the last b computed; "enas" b
        self.baseline: float | None = None if rule == "xautodl" else 0.0
        self.last_baseline: float | None = self.baseline

    # -- the controller ------------------------------------------------------------------------
    def bind(self, supernet, space=None) -> None:
        """One decision per alpha row (NAS-Bench-201; ``space`` None or its decisions the rows of one alpha),
        or the space's decisions (``choice_shape``: DARTS', NASNet's inputs and ops) mapped to alpha rows
        through the genotype they make (``from_choices``, ``selected_edges``)."""
        alphas = supernet.named_arch_parameters()
        # the supernet asks for each cell type's weights in this order, by its alpha (FixedPath's rule)
        self._names, self._first = {id(a): name for name, a in alphas.items()}, next(iter(alphas))
        self._supernet_layout = ({name: tuple(a.shape) for name, a in alphas.items()}, supernet.op_names,
                                 supernet.alpha_columns)
        self._drawn: dict[str, torch.Tensor] = {}
        shape = None if space is None else space.choice_shape
        first = tuple(next(iter(alphas.values())).shape)
        # one decision per alpha row (NB201, enas-macro), or the space's decisions mapped to rows (DARTS, NASNet)
        # (a supernet that lists its own decisions, enas-macro's at any depth, is read directly)
        direct = len(alphas) == 1 and supernet.alpha_columns is None and (
            space is None or shape == first or getattr(supernet, "choice_sizes", None) is not None)
        if not direct and (shape is None or self.kind == "macro"):
            raise ConfigError("the controller relaxation needs a space of independent decisions (choice_shape: "
                              "nb201, darts, nasnet-enas, enas-macro) or one cell type whose alpha has a column "
                              "per op")
        self.space = None if direct else space
        num_edges, num_ops = first if direct else shape
        if self.kind == "macro":
            num_layers = int(round(((8 * num_edges + 1) ** 0.5 - 1) / 2))
            layout = [n for layer in range(num_layers) for n in [num_ops] + [2] * layer]
            if getattr(supernet, "choice_sizes", None) != layout:
                raise ConfigError("controller kind 'macro' needs a supernet whose alpha has a row per macro "
                                  "decision, L (L + 1) / 2 rows (the enas-macro space)")
            self.controller = MacroController(num_layers, num_ops, self.hidden, self.layers, self.temperature,
                                              self.tanh_constant, self.skip_target)
        else:
            if direct:
                sizes = getattr(supernet, "choice_sizes", None)
                mask = None if sizes is None else choice_mask(supernet, num_edges, num_ops)
            else:
                mask = choice_mask(space, num_edges, num_ops)
            self.controller = LSTMController(num_edges, num_ops, self.hidden, self.layers, mask=mask,
                                             temperature=self.temperature, tanh_constant=self.tanh_constant)
        if self.init_range:
            self.controller.uniform_init_(self.init_range)

    def _bound(self) -> LSTMController:
        if self.controller is None:
            raise ConfigError("the controller relaxation is not bound to a supernet: call relaxation.bind(model)")
        return self.controller

    def arch_parameters(self, supernet) -> list[torch.Tensor]:
        return list(self._bound().parameters())

    def sample(self, generator=None):
        """(actions, log p, H) of a cell drawn from the controller, with gradient."""
        controller = self._bound()
        actions, log_prob, entropy = controller(generator=generator)
        if self.kind == "macro":
            self._skip_penalty = controller.skip_penalty
        return actions, log_prob, entropy

    def path_weights(self, actions) -> dict[str, torch.Tensor]:
        """Per cell type, the one-hot op weights (alpha rows x columns, on the host) of the cell ``actions``
        describe: its op on each edge it keeps, ``none`` (never computed) on every other."""
        shapes, op_names, columns = self._supernet_layout
        if self.space is None:
            ((name, (_, num_ops)),) = shapes.items()
            return {name: F.one_hot(torch.as_tensor(actions).cpu(), num_ops).float()}
        genotype = self.space.from_choices([int(a) for a in actions])
        return one_hot_path(self.space.selected_edges(genotype), shapes, op_names, columns)

    # -- op weights ----------------------------------------------------------------------------
    @property
    def hard(self) -> bool:  # one-hot while sampling; the greedy path's probabilities weigh every op
        return self.sampling

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        if not self.sampling:
            return self.deterministic_weights(alpha)
        name = self._name(alpha)
        if name == self._first:  # one cell drawn per forward, its weights for every cell type
            with torch.no_grad():
                actions, _, _ = self._bound()()
            self._drawn = self.path_weights(actions)
        return self._drawn[name].to(alpha)

    def deterministic_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        if self.space is None:
            return self._bound().greedy_probabilities().to(alpha)
        with torch.no_grad():  # the greedy path's cell, one-hot: what the space's argmax rule reads back
            actions, _, _ = self._bound()(greedy=True)
        return self.path_weights(actions)[self._name(alpha)].to(alpha)

    def _name(self, alpha: torch.Tensor) -> str:
        """The cell type ``alpha`` stands for (one: whatever alpha is handed)."""
        if len(self._names) == 1:
            return self._first
        try:
            return self._names[id(alpha)]
        except KeyError:
            raise ConfigError("the controller relaxation was handed an alpha of another supernet than the one "
                              "it is bound to") from None

    def sampler(self, view):
        """rng -> genotype drawn from the controller."""
        controller, space = self._bound(), view.space

        def draw(rng: np.random.Generator):
            generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            with torch.no_grad():
                actions, _, _ = controller(generator=generator)
            return space.from_choices(actions.tolist())

        return draw

    # -- REINFORCE -----------------------------------------------------------------------------
    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        if self.rule == "xautodl":  # ENAS.py:403-421: the epoch's last baseline is the next epoch's b_e
            self.baseline = self.last_baseline

    def policy_loss(self, accuracy: float, log_prob: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
        """REINFORCE's loss of one sample (see the module's docstring); updates the baseline."""
        if self.rule == "enas":
            entropy = entropy.detach()  # micro_controller.py: tf.stop_gradient on the entropy
        reward = accuracy + self.entropy_weight * entropy  # R = A + w H
        if self.rule == "xautodl":
            b_e = self.baseline
            baseline = torch.as_tensor(accuracy) if b_e is None else b_e - (1 - self.baseline_decay) * (b_e - reward)
            self.last_baseline = float(baseline.detach())
        else:
            self.baseline = self.baseline - (1 - self.baseline_decay) * (self.baseline - float(reward))
            self.last_baseline, baseline = self.baseline, self.baseline
        loss = -log_prob * (reward - baseline)
        if self.kind == "macro" and self._skip_penalty is not None:  # general_controller.py:291-292
            loss = loss + self.skip_weight * self._skip_penalty
            self._skip_penalty = None
        return loss

    def describe(self, view) -> dict:
        return {"controller_baseline": self.last_baseline}

    def state_dict(self) -> dict:
        return {"controller": self._bound().state_dict(), "baseline": self.baseline,
                "last_baseline": self.last_baseline}

    def load_state_dict(self, state: dict) -> None:
        self._bound().load_state_dict(state["controller"])
        self.baseline, self.last_baseline = state["baseline"], state["last_baseline"]


__all__ = ["ControllerRelaxation", "KINDS", "RULES"]
