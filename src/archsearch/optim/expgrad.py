"""ExpGrad: exponentiated gradient with wipeout, the architecture optimizer of XNAS.

XNAS (Nayman et al., "XNAS: Neural Architecture Search with Expert Advice", NeurIPS 2019) treats
the candidate ops of each edge as experts and the edge's op weights as a forecaster's prediction.
Each round t the forecaster receives the gradient g_t of the loss with respect to its prediction
(the experts' linearised losses) and updates, per expert i,

    v_{t,i} = v_{t-1,i} * exp(-eta * g_{t,i})      (multiplicative weights, reward r = -g)

which, in log space alpha = log v, is the additive step alpha <- alpha - eta * g followed by a
softmax: the same step as SGD on logits. It is follow-the-regularised-leader with the entropic
regulariser over the simplex of each edge.

Bounded losses. Gradients are clipped elementwise to [-L, L], the bound the regret analysis assumes.

Learning rate (XNAS Thm 1). For N experts, T rounds and rewards bounded by L, the regret against the
best expert in hindsight is at most

    Regret_T <= eta * T * L^2 / 2 + ln(N) / eta                                         (XNAS Thm 1)

(Hoeffding's lemma on rewards of range 2L; Cesa-Bianchi & Lugosi 2006, Thm 2.2), minimised by
eta* = sqrt(2 ln N / T) / L, where Regret_T <= L sqrt(2 T ln N). The theorem's text was not at hand when this
was written: docs/xnas.md says how the statement was checked. Microsoft Archai's XNAS
(archai/supergraph/algos/xnas/xnas_arch_trainer.py, ``pre_fit``) uses the same eta = sqrt(2 ln N / (T L^2)).
``lr=None`` takes eta* for the planned number of rounds T. N is the number of experts the forecaster starts
with: ln N is the divergence of the best expert from the uniform first prediction, so experts removed from
the start (``removed``) are not counted.

Wipeout (XNAS Alg. 1 and its wipeout theorem). Per round each difference alpha_i - alpha_j moves by at most
2 eta L, so an expert with alpha_i < max_j alpha_j - 2 eta L (T - t) can no longer become the leader in the
T - t rounds left (w_i < theta_t = w_max exp(-2 eta L (T - t)); Archai's xnas_op.py ``update_alphas`` uses
the same threshold). It is removed for good: its weight is zero from then on, the supernet stops computing
it, and selection never picks it. The removal mask lives in the optimizer state, so checkpoints remember it.

The last dimension of each parameter indexes the experts; every other index is one forecaster
(an (edges, ops) alpha is ``edges`` forecasters over ``ops`` experts).
"""

from __future__ import annotations

import math

import torch

from archsearch.checks import number, optional_integer
from archsearch.errors import ConfigError, shown
from archsearch.optim.base import ArchitectureOptimizer


def optimal_learning_rate(rounds: int, experts: int, bound: float) -> float:
    """eta* = sqrt(2 ln N / T) / L, the minimiser of XNAS Thm 1's bound eta T L^2 / 2 + ln N / eta."""
    if rounds < 1 or experts < 1 or bound <= 0:
        raise ConfigError(f"the learning rate needs rounds >= 1, experts >= 1 and bound > 0 "
                          f"(got T={rounds}, N={experts}, L={bound})")
    return math.sqrt(2.0 * math.log(max(experts, 2)) / rounds) / bound


def regret_bound(rounds: int, experts: int, bound: float, lr: float) -> float:
    """XNAS Thm 1: eta T L^2 / 2 + ln N / eta, the worst-case regret after T rounds at learning rate eta."""
    return math.log(experts) / lr + lr * rounds * bound ** 2 / 2.0


def masked_softmax(alpha: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """softmax over the alive experts of each forecaster; removed experts weigh exactly 0."""
    return torch.softmax(alpha.masked_fill(~alive, float("-inf")), dim=-1)


class ExpGrad(ArchitectureOptimizer, torch.optim.Optimizer):
    """Exponentiated gradient over the last dimension of each parameter, with wipeout.

    Args:
        lr: eta; None takes eta* = sqrt(2 ln N / T) / L once the number of rounds is known.
        rounds: the planned number of steps T (``plan_rounds`` sets it when left None).
        grad_bound: L, the clip bound of the gradients.
        wipeout: remove experts that can no longer lead (needs T).
        removed: per parameter, a bool mask of experts removed from the start (None: none).
    """

    def __init__(self, params, lr: float | None = None, *, rounds: int | None = None, grad_bound: float = 1.0,
                 wipeout: bool = True, removed=None):
        lr = None if lr is None else number(lr, "ExpGrad learning rate", positive=True)
        grad_bound = number(grad_bound, "ExpGrad gradient bound L", positive=True)
        rounds = optional_integer(rounds, "ExpGrad planned rounds", minimum=1)
        if not isinstance(wipeout, bool):  # 1.0 or "no" would pass as truthy and mean something else
            raise ConfigError(f"ExpGrad option wipeout: {shown(wipeout)} is not true or false")
        super().__init__(params, dict(lr=lr, rounds=rounds, grad_bound=grad_bound, wipeout=wipeout))
        params = [p for group in self.param_groups for p in group["params"]]
        removed = list(removed) if removed is not None else [None] * len(params)
        if len(removed) != len(params):
            raise ConfigError(f"'removed' needs one mask per parameter ({len(params)}), got {len(removed)}")
        for p, mask in zip(params, removed):
            alive = torch.ones_like(p, dtype=torch.bool)
            if mask is not None:
                alive &= ~torch.as_tensor(mask, dtype=torch.bool, device=p.device).expand_as(p)
            if not alive.any(dim=-1).all():
                raise ConfigError("every forecaster needs at least one expert that is not removed")
            self.state[p].update(step=0, alive=alive, weight_sum=torch.zeros_like(p))
        #: N of Thm 1 per parameter: the experts each forecaster starts with (not saved: the same masks rebuild it)
        self._experts = {p: int(self.state[p]["alive"].sum(dim=-1).max()) for p in params}
        #: bumped whenever an expert is removed, so that readers can cache masks on the host
        self.removals = 0

    # -- the horizon ------------------------------------------------------------------------------
    plans_rounds = True

    def plan_rounds(self, rounds: int) -> None:
        """Set T where it was left open (the search loop calls this with epochs x steps per epoch)."""
        for group in self.param_groups:
            if group["rounds"] is None:
                if rounds < 1:
                    raise ConfigError(f"ExpGrad planned rounds must be >= 1, got {rounds}")
                group["rounds"] = int(rounds)

    def learning_rate(self, group: dict) -> float:
        if group["lr"] is not None:
            return group["lr"]
        if group["rounds"] is None:
            raise ConfigError("ExpGrad needs a learning rate or the planned number of rounds T "
                              "(pass lr= or rounds=, or call plan_rounds(T) before stepping)")
        experts = max(self._experts[p] for p in group["params"])
        return optimal_learning_rate(group["rounds"], experts, group["grad_bound"])

    # -- the step ---------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        removed_now = False
        for group in self.param_groups:
            eta, bound, rounds = self.learning_rate(group), group["grad_bound"], group["rounds"]
            for p in group["params"]:
                state = self.state[p]
                alive = state["alive"]
                state["step"] += 1
                if p.grad is not None:
                    g = p.grad.clamp(-bound, bound)  # the losses' bound L of the analysis
                    p.sub_(torch.where(alive, eta * g, torch.zeros_like(g)))  # alpha <- alpha - eta g
                if group["wipeout"] and rounds is not None:
                    left = max(rounds - state["step"], 0)
                    leader = p.masked_fill(~alive, float("-inf")).amax(dim=-1, keepdim=True)
                    hopeless = alive & (p < leader - 2.0 * eta * bound * left)  # w_i < w_max e^{-2 eta L (T-t)}
                    if hopeless.any():
                        alive &= ~hopeless
                        removed_now = True
                state["weight_sum"] += masked_softmax(p, alive)  # sum_t p_t, for online-to-batch
        if removed_now:
            self.removals += 1
        return loss

    # -- what the rest of the search reads ----------------------------------------------------------
    def alive_mask(self, param: torch.Tensor) -> torch.Tensor:
        return self.state[param]["alive"]

    def weights(self, param: torch.Tensor) -> torch.Tensor:
        """The forecaster's current prediction: softmax of alpha over the alive experts."""
        return masked_softmax(param.detach(), self.alive_mask(param))

    def accumulated_weights(self, param: torch.Tensor) -> torch.Tensor:
        """sum_t p_t over the rounds so far (zero for removed experts after their removal)."""
        return self.state[param]["weight_sum"].masked_fill(~self.alive_mask(param), 0.0)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["alive"] = self.state[p]["alive"].to(dtype=torch.bool)
        self.removals += 1  # masks were replaced: readers must refresh
