"""Natural-gradient variational inference for a diagonal Gaussian q(theta) = N(mu, sigma^2).

The parameters of the model hold the mean mu. A step draws theta ~ q into them, evaluates the
closure there, puts mu back and moves (mu, s) by the Bayesian learning rule of Khan et al. (2018),
in the form BaLeNAS (Zhang et al., CVPR 2022, sec. 3.2) writes it:

    s_{t+1}  = (1 - beta) s_t + beta h_t                                                  (14)
    mu_{t+1} = mu_t - beta (g_t + delta~ mu_t) / (s_{t+1} + delta~)
               + gamma (s_t + delta~) / (s_{t+1} + delta~) o (mu_t - mu_{t-1})             (13), (17)
    sigma_t^2 = 1 / (N (s_t + delta~)),   delta~ = delta / N

g_t is the gradient of the closure's loss at theta_t ~ N(mu_t, sigma_t^2) and h_t a curvature
estimate there: the Hessian diagonal (VON), or g_t o g_t (Vprop, VAdam). The loss is the *average*
negative log-likelihood over N data points (plus nothing else: the prior enters through delta), so
the fixed point of the rule is the mean-field Gaussian posterior of N * loss with prior N(0, 1/delta).
See docs/balenas.md for the derivation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch.optim import Optimizer

from archsearch.errors import ConfigError
from archsearch.optim.base import ArchitectureOptimizer


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


class _VariationalOptimizer(ArchitectureOptimizer, Optimizer):
    """Shared sampling, bookkeeping and update of VON, Vprop and VAdam.

    Subclasses say how the curvature estimate h is formed (``_curvature``) and may replace the
    update (``_update``). Per-parameter state: ``s`` (the curvature average), ``prev`` (mu_{t-1},
    for the momentum term) and ``step``.
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float,
        prior_precision: float,
        dataset_size: int,
        mc_samples: int,
        init_precision: float | None,
        perturb: bool = True,
        generator: torch.Generator | None = None,
        **extra_defaults,
    ):
        _check(lr > 0, f"lr (beta) must be positive, got {lr}")
        _check(0 <= momentum < 1, f"momentum (gamma) must lie in [0, 1), got {momentum}")
        _check(prior_precision > 0, f"prior_precision (delta) must be positive, got {prior_precision}")
        _check(isinstance(dataset_size, int) and dataset_size >= 1,
               f"dataset_size (N) must be a positive integer, got {dataset_size!r}")
        _check(isinstance(mc_samples, int) and mc_samples >= 1,
               f"mc_samples must be a positive integer, got {mc_samples!r}")
        if init_precision is None:
            init_precision = prior_precision  # s_0 = 0: q starts as the prior
        _check(init_precision > 0, f"init_precision must be positive, got {init_precision}")
        defaults = dict(lr=lr, momentum=momentum, prior_precision=prior_precision, dataset_size=dataset_size,
                        init_precision=init_precision, **extra_defaults)
        super().__init__(params, defaults)
        self.mc_samples = mc_samples
        self.perturb = perturb
        self.generator = generator

    # -- state ----------------------------------------------------------------------------------
    def _state(self, p: torch.Tensor, group: dict) -> dict:
        state = self.state[p]
        if not state:
            n, delta = group["dataset_size"], group["prior_precision"]
            state["step"] = 0
            # Khan et al.'s initialisation: precision N (s_0 + delta~) = init_precision.
            state["s"] = torch.full_like(p, (group["init_precision"] - delta) / n, memory_format=torch.preserve_format)
            state["prev"] = p.detach().clone()
            self._init_extra_state(state, p)
        return state

    def _init_extra_state(self, state: dict, p: torch.Tensor) -> None:
        pass

    def _params(self) -> Iterator[tuple[torch.Tensor, dict]]:
        for group in self.param_groups:
            for p in group["params"]:
                yield p, group

    def precision(self) -> list[torch.Tensor]:
        """N (s + delta~) per parameter: the precision of q, i.e. 1 / sigma^2."""
        out = []
        for p, group in self._params():
            state = self._state(p, group)
            delta_t = group["prior_precision"] / group["dataset_size"]
            out.append(group["dataset_size"] * (state["s"] + delta_t))
        return out

    def sigma(self) -> list[torch.Tensor]:
        """Standard deviation of q per parameter, in the order of the parameters."""
        return [prec.rsqrt() for prec in self.precision()]

    def state_dict(self) -> dict:
        out = super().state_dict()
        if self.generator is not None:
            out["generator_state"] = self.generator.get_state()
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        gen_state = state_dict.pop("generator_state", None)
        super().load_state_dict(state_dict)
        if gen_state is not None and self.generator is not None:
            self.generator.set_state(gen_state)

    # -- sampling -------------------------------------------------------------------------------
    def _noise(self, p: torch.Tensor) -> torch.Tensor:
        if self.generator is None:
            return torch.randn_like(p)
        eps = torch.randn(p.shape, generator=self.generator, dtype=p.dtype, device=self.generator.device)
        return eps.to(p.device)

    @contextlib.contextmanager
    def sampled(self) -> Iterator[None]:
        """Inside the block the parameters hold one draw theta ~ N(mu, sigma^2); mu comes back after."""
        means = []
        with torch.no_grad():
            for (p, _), sigma in zip(list(self._params()), self.sigma()):
                means.append(p.detach().clone())
                if self.perturb:
                    p.add_(sigma * self._noise(p))  # theta = mu + sigma o eps
        try:
            yield
        finally:
            with torch.no_grad():
                for (p, _), mu in zip(list(self._params()), means):
                    p.copy_(mu)

    # -- the step -------------------------------------------------------------------------------
    def _curvature(self, p: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """h for this parameter at the current sample (called with the sample in place)."""
        raise NotImplementedError

    def _evaluate(self, closure: Callable) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Monte-Carlo averages of the loss, g and h over ``mc_samples`` draws of q."""
        params = [p for p, _ in self._params()]
        grads = [torch.zeros_like(p) for p in params]
        curvs = [torch.zeros_like(p) for p in params]
        loss_sum = None
        for _ in range(self.mc_samples):
            with self.sampled():
                for p in params:
                    p.grad = None
                with torch.enable_grad():
                    loss = closure()
                for i, p in enumerate(params):
                    g = torch.zeros_like(p) if p.grad is None else p.grad.detach()
                    grads[i] += g
                    curvs[i] += self._curvature(p, p.grad if p.grad is not None else g)
            loss = torch.as_tensor(loss).detach()
            loss_sum = loss if loss_sum is None else loss_sum + loss
        k = float(self.mc_samples)
        for i, p in enumerate(params):
            grads[i] /= k
            curvs[i] /= k
            p.grad = grads[i].clone()  # the MC-averaged gradient, for logging and diagnostics
        return loss_sum / k, grads, curvs

    def _update(self, p: torch.Tensor, group: dict, state: dict, g: torch.Tensor, h: torch.Tensor) -> None:
        """The Bayesian learning rule (13)-(14), with the momentum term of (17) when gamma > 0."""
        beta, gamma = group["lr"], group["momentum"]
        delta_t = group["prior_precision"] / group["dataset_size"]  # delta~ = delta / N
        s = state["s"]
        s_new = (1 - beta) * s + beta * h  # s_{t+1} = (1 - beta) s_t + beta h_t
        mu = p.detach().clone()
        step = beta * (g + delta_t * mu) / (s_new + delta_t)  # beta (g + delta~ mu) / (s_{t+1} + delta~)
        drift = gamma * (s + delta_t) / (s_new + delta_t) * (mu - state["prev"])
        p.data.add_(drift - step)
        state["prev"] = mu
        state["s"] = s_new

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """One step. ``closure`` must zero nothing it does not own, run forward and backward, and
        return the loss; it is called ``mc_samples`` times, each with a fresh draw of q in place."""
        if closure is None:
            raise ConfigError(
                f"{type(self).__name__} samples the parameters itself: call step(closure) with a closure "
                "that computes the loss and calls backward()"
            )
        loss, grads, curvs = self._evaluate(closure)
        for (p, group), g, h in zip(list(self._params()), grads, curvs):
            state = self._state(p, group)
            state["step"] += 1
            self._update(p, group, state, g, h)
        return loss
