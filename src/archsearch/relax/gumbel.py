"""Gumbel-softmax relaxations: GDAS' hard straight-through sample and SNAS' soft concrete sample.

Both draw, once per supernet forward, Gumbel noise g_k = -log(E_k), E_k ~ Exp(1), per edge and op and
form the concrete sample (Maddison et al. 2017; Jang et al. 2017)

    z = softmax((log_softmax(alpha) + g) / tau).

GDAS (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours", CVPR 2019;
``search_model_gdas.py`` of D-X-Y/AutoDL-Projects): the op weights are the straight-through one-hot

    h = one_hot(argmax z) - stop_gradient(z) + z

whose value is exactly one-hot and whose gradient is that of z, so only the sampled op of each edge
is computed (``hard``) while every alpha receives gradient. Resampled if any entry is inf or NaN.
tau falls linearly per epoch from 10 to 0.1, tau_e = tau_max - (tau_max - tau_min) e / (E - 1)
(``GDAS.py``: ``set_tau``; ``GDAS.sh``: --tau_max 10 --tau_min 0.1).

SNAS (Xie, Zheng, Liu & Lin, "SNAS: Stochastic Neural Architecture Search", ICLR 2019; SNAS-Series
``SNAS/train_search.py``): the op weights are z itself (soft, every op computed), with tau annealed
linearly from 1 to 0.03 over the search (``--temp 1 --temp_min 0.03 --temp_annealing``;
``utils.Temp_Scheduler``, stepped before each epoch, so epoch e uses
tau_min + (tau_0 - tau_min)(1 - (e + 1)/E)). Its resource constraint, as an option, adds

    lambda * log R(z),    R(z) = sum_{edge, op} z_{edge, op} * C_{edge, op}

to the architecture loss, with z the very sample of the forward (the released code's
``--method reparametrization --log_penalty``, lambda = 1e-2) and C the parameter count of each
candidate summed over the cells that share the edge's alpha row (SNAS sums size, FLOPs and memory
access; we count parameters only, which needs no input size).

When not sampling (Hessian estimates, logging) both return softmax(alpha), the distribution's class
probabilities, with every op computed.
"""

from __future__ import annotations

import numpy as np
import torch

from archsearch.errors import ConfigError
from archsearch.relax.base import RELAXATIONS, Relaxation


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """g = -log(E), E ~ Exp(1), of ``like``'s shape (torch's global generator, as dropout)."""
    return -torch.empty_like(like).exponential_().log()


def _check_temperatures(tau_max: float, tau_min: float) -> tuple[float, float]:
    if not (tau_min > 0 and tau_max >= tau_min):
        raise ConfigError(f"temperatures must satisfy tau_max >= tau_min > 0, got tau_max={tau_max}, "
                          f"tau_min={tau_min}")
    return float(tau_max), float(tau_min)


class _Gumbel(Relaxation):
    def __init__(self, tau_max: float, tau_min: float):
        self.tau_max, self.tau_min = _check_temperatures(tau_max, tau_min)
        self.tau = self.tau_max

    def deterministic_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.softmax(alpha.detach(), dim=-1)

    def sampler(self, view):
        """rng -> genotype: a concrete sample at tau = 1 per edge, then the space's argmax rule, i.e. a
        Gumbel-max draw of each edge's op from softmax(alpha) (conditioned on not ``none``)."""
        alphas = view.supernet.named_arch_parameters()

        def draw(rng: np.random.Generator):
            weights = {}
            for name, alpha in alphas.items():
                log_p = torch.log_softmax(alpha.detach().cpu().double(), dim=-1)
                g = torch.from_numpy(rng.gumbel(size=tuple(alpha.shape)))
                weights[name] = torch.softmax(log_p + g, dim=-1).float()
            return view.space.genotype_from_weights(view.supernet.selection_weights(weights), exclude=("none",))

        return draw

    def describe(self, view) -> dict:
        return {"tau": self.tau}

    def state_dict(self) -> dict:
        return {"tau": self.tau}

    def load_state_dict(self, state: dict) -> None:
        self.tau = state.get("tau", self.tau)


@RELAXATIONS.register("gumbel_hard")
class GumbelHard(_Gumbel):
    """GDAS: one op per edge, sampled once per forward, straight-through gradient to every alpha."""

    def __init__(self, tau_max: float = 10.0, tau_min: float = 0.1):  # GDAS.sh: --tau_max 10 --tau_min 0.1
        super().__init__(tau_max, tau_min)

    @property
    def hard(self) -> bool:  # one-hot only while sampling; the mean (softmax) weighs every op
        return self.sampling

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        # GDAS.py: tau_max - (tau_max - tau_min) * epoch / (total_epoch - 1)
        self.tau = self.tau_max - (self.tau_max - self.tau_min) * epoch / max(1, total_epochs - 1)

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        if not self.sampling:
            return torch.softmax(alpha, dim=-1)
        log_p = torch.log_softmax(alpha, dim=-1)
        while True:  # the reference resamples when the noise or the probabilities are not finite
            g = gumbel_noise(alpha)
            z = torch.softmax((log_p + g) / self.tau, dim=-1)  # concrete sample
            if bool(torch.isfinite(g).all() and torch.isfinite(z).all()):
                break
        one_hot = torch.zeros_like(z).scatter_(-1, z.argmax(dim=-1, keepdim=True), 1.0)
        return one_hot - z.detach() + z  # h: value one-hot, gradient of z


@RELAXATIONS.register("gumbel")
class GumbelSoft(_Gumbel):
    """SNAS: the soft concrete sample, tau annealed; optional resource constraint (``resource_weight``)."""

    def __init__(self, tau_max: float = 1.0, tau_min: float = 0.03, resource_weight: float = 0.0,
                 log_penalty: bool = True):
        # SNAS README search command: --temp 1 --temp_min 0.03 --resource_lambda 1e-2 --log_penalty
        super().__init__(tau_max, tau_min)
        if resource_weight < 0:
            raise ConfigError(f"resource_weight (SNAS' lambda) must be >= 0, got {resource_weight}")
        self.resource_weight, self.log_penalty = float(resource_weight), bool(log_penalty)
        self.costs: dict[str, torch.Tensor] | None = None
        self._samples: dict[int, torch.Tensor] = {}

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        # SNAS utils.Temp_Scheduler, stepped once before each epoch's training
        progress = min(1.0, (epoch + 1) / max(1, total_epochs))
        self.tau = max(self.tau_min, self.tau_min + (self.tau_max - self.tau_min) * (1.0 - progress))

    def bind(self, model, space=None) -> None:
        """C_{edge, op}: parameters of each candidate, summed over the cells that read the alpha row."""
        self.costs = {}
        for name, alpha in model.named_arch_parameters().items():
            cost = torch.zeros(alpha.shape, dtype=torch.float64)
            for row, mixed in model.mixed_ops(name):
                for k, op in enumerate(mixed.ops):
                    cost[row, k] += sum(p.numel() for p in op.parameters())
            self.costs[name] = cost

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        if not self.sampling:
            return torch.softmax(alpha, dim=-1)
        z = torch.softmax((torch.log_softmax(alpha, dim=-1) + gumbel_noise(alpha)) / self.tau, dim=-1)
        if self.resource_weight and self.phase == "arch":
            self._samples[id(alpha)] = z  # the resource term differentiates this very sample
        return z

    def resource(self, alphas: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """R = sum_{edge, op} w_{edge, op} * C_{edge, op} over every cell type."""
        if self.costs is None:
            raise ConfigError("the gumbel relaxation's resource constraint needs the supernet: call "
                              "relaxation.bind(model) first (the search loop does)")
        total = 0.0
        for name, w in weights.items():
            total = total + (w * self.costs[name].to(w.device, w.dtype)).sum()
        return total

    def extra_loss(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.resource_weight:
            return None
        weights = {name: self._samples.pop(id(alpha), None) for name, alpha in alphas.items()}
        if any(w is None for w in weights.values()):  # no sample drawn for this step: use the expectation
            weights = {name: torch.softmax(alpha, dim=-1) for name, alpha in alphas.items()}
        r = self.resource(alphas, weights)
        penalty = torch.log(r) if self.log_penalty else r
        return self.resource_weight * penalty  # lambda * log R(z)

    def describe(self, view) -> dict:
        out = {"tau": self.tau}
        if self.resource_weight and self.costs is not None:
            alphas = view.supernet.named_arch_parameters()
            with torch.no_grad():
                expected = self.resource(alphas, {n: torch.softmax(a, dim=-1) for n, a in alphas.items()})
            out["expected_params"] = float(expected)  # E_{z ~ softmax(alpha)}[R]
        return out


__all__ = ["GumbelHard", "GumbelSoft", "gumbel_noise"]
