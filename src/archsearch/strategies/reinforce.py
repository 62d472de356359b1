"""REINFORCE with a controller (Williams 1992; Zoph & Le, ICLR 2017), one op per edge.

A space whose decisions have different numbers of choices (NASNet's inputs: block b picks from b + 2
states) states them in ``choice_sizes``; the choices a decision lacks get probability 0.

Controllers:
- ``lstm`` (default): Zoph & Le's recurrent controller: at each edge the LSTM reads the embedding of the
  previous decision and a linear head gives the logits of this edge's op. Two layers of 35 units
  (Zoph & Le, Sec. 4.1).
- ``categorical``: independent per-edge categoricals, logits initialised N(0, 1e-3^2): the controller of the
  NAS-Bench-201 paper's REINFORCE baseline (AutoDL-Projects exps/NAS-Bench-201-algos/reinforce.py).

Update per told result: loss = -(R - b) * log p(genotype) - entropy_weight * H(p); R = objective / 100
(accuracy as a fraction); b = exponential moving average of R with bias correction, momentum 0.9;
Adam with lr 1e-3. Momentum and optimiser are those of the NAS-Bench-201 runs (REINFORCE.sh:
--EMA_momentum 0.9; its usage line gives lr 0.001, and hps/GRID-RL.sh tunes lr over 0.01..0.5).
The entropy bonus 1e-4 is ENAS's (Pham et al. 2018); the NAS-Bench-201 code has none.
As in that code, the baseline is updated with R before the advantage is taken.
The log-probability is recomputed at tell time, so batches and unsolicited tells need no stored graph.
The controllers live in relax/controllers.py, shared with ENAS' controller relaxation.
"""

from __future__ import annotations

import torch

from archsearch.checks import integer, number
from archsearch.errors import ConfigError, UnknownNameError
from archsearch.relax.controllers import MASKED, CategoricalController, LSTMController, choice_mask  # noqa: F401
from archsearch.spaces import SPACES
from archsearch.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("reinforce")
class Reinforce(Strategy):
    name = "reinforce"

    def __init__(self, space, seed: int | None = None, controller: str = "lstm", lr: float = 1e-3,
                 baseline_momentum: float = 0.9, entropy_weight: float = 1e-4, hidden: int = 35, layers: int = 2):
        super().__init__(space, seed)
        lr = number(lr, "reinforce lr", positive=True)
        baseline_momentum = number(baseline_momentum, "reinforce baseline_momentum", minimum=0.0)
        if baseline_momentum >= 1:  # m = 1 would keep the first reward as the baseline for ever
            raise ConfigError(f"reinforce baseline_momentum must be below 1, got {baseline_momentum}")
        entropy_weight = number(entropy_weight, "reinforce entropy_weight", minimum=0.0)
        hidden = integer(hidden, "reinforce hidden", minimum=1, maximum=4096)
        layers = integer(layers, "reinforce layers", minimum=1, maximum=64)
        if space.choice_shape is None:  # the controller draws one op per edge, independently of the others
            raise UnknownNameError("space for reinforce (one cell type)", space.name,
                                   [name for name, cls in SPACES.items() if cls.choice_shape is not None])
        num_edges, num_ops = space.choice_shape
        mask = choice_mask(space, num_edges, num_ops)  # NASNet: block b chooses among b + 2 inputs only
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(2**62)))
            if controller == "lstm":
                self.controller = LSTMController(num_edges, num_ops, hidden, layers, mask)
            elif controller == "categorical":
                self.controller = CategoricalController(num_edges, num_ops, mask)
            else:
                raise UnknownNameError("reinforce controller", controller, ("lstm", "categorical"))
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.momentum, self.entropy_weight = baseline_momentum, entropy_weight
        self.ema_numerator, self.ema_denominator = 0.0, 0.0

    @property
    def baseline(self) -> float:
        """Bias-corrected EMA: sum m^k (1-m) R_{t-k} / sum m^k (1-m)."""
        return self.ema_numerator / self.ema_denominator if self.ema_denominator else 0.0

    def _propose(self):
        with torch.no_grad():
            actions, _, _ = self.controller(generator=self.generator)
        return self.space.from_choices(actions.tolist())

    def _observe(self, genotype, value):
        reward = value / 100.0  # accuracy as a fraction
        self.ema_numerator = self.momentum * self.ema_numerator + (1 - self.momentum) * reward
        self.ema_denominator = self.momentum * self.ema_denominator + (1 - self.momentum)
        actions = torch.tensor(self.space.to_choices(genotype))
        _, log_prob, entropy = self.controller(actions)
        loss = -(reward - self.baseline) * log_prob - self.entropy_weight * entropy  # REINFORCE + entropy bonus
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def probabilities(self) -> torch.Tensor:
        """Per-edge op probabilities of the categorical controller (greedy path for the LSTM)."""
        with torch.no_grad():
            if isinstance(self.controller, CategoricalController):
                return torch.softmax(self.controller.logits, -1)
            raise NotImplementedError("the LSTM controller has no per-edge marginals in closed form")

    def _extra_state(self):
        return {"controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "ema": (self.ema_numerator, self.ema_denominator)}

    def _load_extra_state(self, state):
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.ema_numerator, self.ema_denominator = state["ema"]
