"""DSCD: doubly stochastic coordinate descent around any local optimizer.

Bodin, Tomasi & Dai, "Making Differentiable Architecture Search less local" (ICLR 2021 NAS workshop).
The search alternates two kinds of step on the architecture parameters:

* local: one step of the wrapped optimizer (Adam in the paper) on the closure's gradient;
* global: one coordinate i of alpha drawn uniformly; a new value proposed from a Beta distribution
  over the bounded domain [-a, a] (min-max normalised to [0, 1]); the proposal is kept only if its
  loss is below the best loss of the last K steps, else the coordinate is restored.

"Doubly stochastic": a random coordinate and a random mini-batch per step. Switching between the two
kinds (``switch``):

* ``"paper"`` (default), the paper's rule: once at least n (``patience``) steps of the current kind
  have been taken, switch to the other kind as soon as the last step did not improve on the previous
  one (loss_t >= loss_{t-1}). A local step's loss is the closure's value at the point it starts from;
  a global step's is its proposal's loss if accepted, and a rejected proposal leaves the point, so it
  counts as no improvement.
* ``"window"``, our earlier rule: switch after n consecutive steps of the current kind that brought no
  loss below the best of the last K. Its local phases are longer (1.1-3 times the paper's rule's on
  optbench's Styblinski-Tang and Rastrigin), so it takes fewer global steps (docs/fairdarts-dscd.md).

Only the paper's abstract and introduction (arXiv 2104.10450) were at hand when this was written:
the switching rule above follows the paper's summary of it (n steps of one kind, then a switch when
the last step did not improve on the previous one), and the acceptance of a global step (below the
best loss of the last K) is our choice, the same under both rules.

The proposal (the paper's appendix C) is annealed on a cosine schedule s = (1 - cos(pi t / T)) / 2
from uniform over the domain (s = 0: mean 1/2, standard deviation 1/sqrt(12)) to a Dirac at the
current normalised position u (s = 1: mean u, standard deviation 0): the mean and the standard
deviation are interpolated linearly between the two extremes,

    m = (1 - s) / 2 + s u,      sd = (1 - s) / sqrt(12),

and the Beta's (a, b) solved from them: nu = m (1 - m) / sd^2 - 1, a = m nu, b = (1 - m) nu
(nu > 0 always holds on this path, since m(1-m) >= (1-s)/4 > (1-s)^2/12).

The paper leaves a, K and n out; our choices (arguments, documented in docs/fairdarts-dscd.md):
``bound`` a = 3 for architecture logits (sigmoid(+-3) = 0.05 / 0.95 spans FairDARTS' decision range),
``memory`` K = 10, ``patience`` n = 10.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch

from archsearch.checks import MAX_REPEATS, integer, number, optional_integer
from archsearch.checks import seed as check_seed
from archsearch.errors import ConfigError, shown
from archsearch.optim.base import ArchitectureOptimizer

_UNIFORM_SD = 1.0 / math.sqrt(12.0)
_EDGE = 1e-6  # keeps the normalised position inside (0, 1), where the Beta is defined
#: when DSCD changes between local and global steps: the paper's rule, or our earlier loss window
SWITCH_RULES = ("paper", "window")


def cosine_progress(step: int, rounds: int) -> float:
    """s in [0, 1]: 0 at the start (uniform proposals), 1 at the end (a Dirac at the current value)."""
    tau = min(max(step / rounds, 0.0), 1.0)
    return 0.5 * (1.0 - math.cos(math.pi * tau))


def beta_parameters(position: float, progress: float) -> tuple[float, float] | None:
    """(a, b) of the proposal Beta for normalised position u and progress s; None for the Dirac (s = 1)."""
    u = min(max(position, _EDGE), 1.0 - _EDGE)
    mean = (1.0 - progress) * 0.5 + progress * u
    sd = (1.0 - progress) * _UNIFORM_SD
    if sd <= 0.0:
        return None
    nu = mean * (1.0 - mean) / sd ** 2 - 1.0
    return mean * nu, (1.0 - mean) * nu


class DSCD(ArchitectureOptimizer, torch.optim.Optimizer):
    """Wraps ``local`` (any torch optimizer over the parameters to search); ``step`` needs a closure
    that zeroes the gradients, evaluates the loss, writes the gradients and returns the loss.

    Args:
        local: the local optimizer (its param_groups are shared, so schedulers act on it).
        bound: a, the domain [-a, a] of the global proposals (a float, or (low, high)).
        memory: K, the window of past losses a proposal must beat.
        patience: n; "paper": the least number of steps of one kind before a non-improving step
            switches to the other; "window": consecutive non-improving steps before switching.
        switch: "paper" (the paper's rule, the default) or "window" (our earlier rule).
        rounds: the planned number of steps T for the annealing (``plan_rounds`` sets it if None).
        seed: seed of the proposals' random generator.
    """

    def __init__(self, local: torch.optim.Optimizer, *, bound: float | tuple[float, float] = 3.0,
                 memory: int = 10, patience: int = 10, rounds: int | None = None, seed: int = 0,
                 switch: str = "paper"):
        if isinstance(bound, (tuple, list)) and len(bound) == 2:
            low, high = (number(b, "DSCD bound") for b in bound)
        else:
            high = number(bound, "DSCD bound a (the domain is [-a, a])", positive=True)
            low = -high
        if not high > low:
            raise ConfigError(f"DSCD needs a non-empty domain [low, high], got [{low}, {high}]")
        memory = integer(memory, "DSCD memory K", minimum=1, maximum=MAX_REPEATS)
        patience = integer(patience, "DSCD patience n", minimum=1, maximum=MAX_REPEATS)
        rounds = optional_integer(rounds, "DSCD planned rounds", minimum=1)
        seed = check_seed(seed, "DSCD seed")
        if not isinstance(switch, str) or switch not in SWITCH_RULES:
            raise ConfigError(f"DSCD switch must be one of {', '.join(SWITCH_RULES)}, got {shown(switch)}")
        params = [p for group in local.param_groups for p in group["params"]]
        super().__init__(params, {})
        self.param_groups = local.param_groups
        self.local = local
        self.low, self.high = low, high
        self.memory, self.patience, self.rounds = int(memory), int(patience), rounds
        self.switch = switch
        self.rng = np.random.default_rng(seed)
        self.losses: deque[float] = deque(maxlen=self.memory)
        self.mode = "local"
        self.run = 0  # steps of the current kind since the last switch
        self.stale = 0  # consecutive steps of the current kind without improvement (the window rule)
        self.steps = 0
        self.counts = {"local": 0, "global": 0, "accepted": 0, "switches": 0}

    # -- the horizon --------------------------------------------------------------------------------
    plans_rounds = True

    def plan_rounds(self, rounds: int) -> None:
        if self.rounds is None:
            if rounds < 1:
                raise ConfigError(f"DSCD planned rounds must be >= 1, got {rounds}")
            self.rounds = int(rounds)
        inner = getattr(self.local, "plan_rounds", None)
        if inner is not None:
            inner(rounds)

    # -- the step -----------------------------------------------------------------------------------
    def _improves(self, loss: float) -> bool:
        """Below the best loss of the last K steps (the acceptance of a proposal; the window rule)."""
        return not self.losses or loss < min(self.losses)

    def _local_improves(self, loss: float) -> bool:
        if self.switch == "window":
            return self._improves(loss)
        # the paper: loss_t < loss_{t-1}; the window's last entry is the loss of the current point,
        # written by the previous local step or accepted proposal (a rejected one writes nothing)
        return not self.losses or loss < self.losses[-1]

    def _record(self, improved: bool) -> None:
        self.run += 1
        self.stale = 0 if improved else self.stale + 1
        if self.switch == "paper":
            due = self.run >= self.patience and not improved
        else:
            due = self.stale >= self.patience
        if due:
            self.mode = "global" if self.mode == "local" else "local"
            self.run = self.stale = 0
            self.counts["switches"] += 1

    def _coordinate(self) -> tuple[torch.Tensor, int]:
        """A parameter and a flat index in it, uniformly over all coordinates."""
        params = [p for group in self.param_groups for p in group["params"]]
        sizes = [p.numel() for p in params]
        flat = int(self.rng.integers(sum(sizes)))
        for p, size in zip(params, sizes):
            if flat < size:
                return p, flat
            flat -= size
        raise AssertionError("unreachable")

    def propose(self, current: float) -> float:
        """A new value in [low, high] from the annealed Beta around ``current``."""
        if self.rounds is None:
            raise ConfigError("DSCD needs the planned number of rounds T for its annealing "
                              "(pass rounds= or call plan_rounds(T) before stepping)")
        width = self.high - self.low
        position = (current - self.low) / width
        ab = beta_parameters(position, cosine_progress(self.steps, self.rounds))
        if ab is None:
            return current
        return self.low + float(self.rng.beta(*ab)) * width

    def step(self, closure=None):
        if closure is None:
            raise ConfigError("DSCD needs a closure that evaluates the loss (optimizer.step(closure))")
        if self.mode == "local":
            loss = self.local.step(closure)  # loss at the current point, then the local move
            value = float(loss)
            improved = self._local_improves(value)
            self.losses.append(value)
            self.counts["local"] += 1
        else:
            loss, improved = self._global_step(closure)
            self.counts["global"] += 1
        self.steps += 1
        self._record(improved)
        return loss

    @torch.no_grad()
    def _global_step(self, closure):
        param, index = self._coordinate()
        flat = param.view(-1)
        old = float(flat[index])
        flat[index] = self.propose(old)
        with torch.enable_grad():
            loss = closure()  # L(alpha with coordinate i replaced)
        value = float(loss)
        # below the best loss of the last K steps, so also below the previous step's: an accepted
        # proposal is an improvement under either switching rule, a rejected one is not
        accepted = self._improves(value)
        if accepted:
            self.losses.append(value)
            self.counts["accepted"] += 1
        else:
            flat[index] = old
        return loss, accepted

    def record(self) -> dict:
        """Counts of local, global and accepted global steps so far (a field of metrics.jsonl)."""
        return {"dscd": {**self.counts, "mode": self.mode}}

    # -- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"local": self.local.state_dict(), "losses": list(self.losses), "mode": self.mode,
                "run": self.run, "stale": self.stale, "steps": self.steps, "rounds": self.rounds,
                "counts": dict(self.counts),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.local.load_state_dict(state["local"])
        self.losses = deque(state["losses"], maxlen=self.memory)
        self.mode, self.stale, self.steps = state["mode"], state["stale"], state["steps"]
        self.run = state.get("run", 0)  # absent from checkpoints written before the paper's rule
        self.rounds = state["rounds"] if state["rounds"] is not None else self.rounds
        self.counts = dict(state["counts"])
        self.rng.bit_generator.state = state["rng"]
