"""VON, Vprop and VAdam: the Bayesian learning rule for a diagonal Gaussian (BaLeNAS eqs. 13-18).

All three share sampling and bookkeeping (``_VariationalOptimizer``); they differ in the curvature
estimate h and in the momentum term:

    VON    h = diag of the Hessian at the sample                       (eqs. 13-14)
    Vprop  h = g o g, the squared gradient at the sample               (eq. 15)
    VAdam  h = g o g, plus the momentum term gamma (s_t + delta~)/(s_{t+1} + delta~) o (mu_t - mu_{t-1})
                                                                        (eqs. 17-18)

``VAdam(adam_form=True)`` is instead Khan et al. (2018)'s Vadam, the Adam-like simplification
(square root of s, bias correction, momentum on the gradient), kept so the two can be compared.

Defaults. BaLeNAS takes its hyper-parameters from DARTS but does not state delta, N or gamma;
the values here are our choice (docs/balenas.md):
- lr = 3e-4: DARTS' architecture learning rate (Liu et al., 2019).
- momentum = 0.5: DARTS' Adam beta_1 for the architecture parameters.
- prior_precision = 1: Khan et al. (2018)'s reference default; init_precision = None means "equal to
  the prior precision", which is their default pairing (prec_init = prior_prec = 1): s_0 = 0 and q
  starts as the prior N(0, 1/delta). A search does not use it: the BaLeNAS presets set delta = 0.012 N
  (archsearch.optim.arch_optimizers; delta = 1 collapsed to skip connections at CPU scale).
- dataset_size = 25,000: the architecture step of a DARTS search sees half of the CIFAR-10
  training set.
- mc_samples = 1: one draw per step, as in Khan et al.'s experiments and BaLeNAS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from archsearch.errors import ConfigError
from archsearch.optim.variational import _check, _VariationalOptimizer

#: defaults shared by the three optimizers (see the module docstring for their sources)
DEFAULT_LR = 3e-4
DEFAULT_MOMENTUM = 0.5
DEFAULT_PRIOR_PRECISION = 1.0
DEFAULT_DATASET_SIZE = 25_000


class Vprop(_VariationalOptimizer):
    """Variational RMSprop in natural-gradient form (BaLeNAS eq. 15): h = g o g, no momentum.

    With ``mc_samples > 1`` h is the average of g o g over the draws (an estimate of E_q[g o g]),
    as in Khan et al.'s reference code, not the square of the averaged gradient.
    """

    def __init__(self, params, lr: float = DEFAULT_LR, prior_precision: float = DEFAULT_PRIOR_PRECISION,
                 dataset_size: int = DEFAULT_DATASET_SIZE, mc_samples: int = 1,
                 init_precision: float | None = None, perturb: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__(params, lr, 0.0, prior_precision, dataset_size, mc_samples, init_precision,
                         perturb, generator)

    def _curvature(self, p, grad):
        g = grad.detach()
        return g * g


class VAdam(_VariationalOptimizer):
    """Variational Adam.

    ``adam_form=False`` (default): BaLeNAS eqs. 17-18 exactly, ``lr`` = beta, ``momentum`` = gamma.
    ``adam_form=True``: Khan et al. (2018)'s Vadam: ``lr`` = alpha, ``betas`` = (beta_1, beta_2)
    (their defaults 0.9, 0.999); ``momentum`` is unused there.

        m     = beta_1 m + (1 - beta_1) (g + delta~ mu)
        s     = beta_2 s + (1 - beta_2) g o g
        mu   -= alpha (m / (1 - beta_1^t)) / (sqrt(s / (1 - beta_2^t)) + delta~)
        sigma^2 = 1 / (N (s + delta~))
    """

    def __init__(self, params, lr: float = DEFAULT_LR, momentum: float = DEFAULT_MOMENTUM,
                 prior_precision: float = DEFAULT_PRIOR_PRECISION, dataset_size: int = DEFAULT_DATASET_SIZE,
                 mc_samples: int = 1, init_precision: float | None = None, adam_form: bool = False,
                 betas: tuple[float, float] = (0.9, 0.999), perturb: bool = True,
                 generator: torch.Generator | None = None):
        _check(len(betas) == 2 and all(0 <= b < 1 for b in betas), f"betas must be two numbers in [0, 1), got {betas}")
        if adam_form and init_precision is not None:
            # sqrt(s) needs s_0 = (init_precision - delta) / N >= 0
            _check(init_precision >= prior_precision,
                   f"adam_form needs init_precision >= prior_precision, got {init_precision} < {prior_precision}")
        super().__init__(params, lr, momentum, prior_precision, dataset_size, mc_samples, init_precision,
                         perturb, generator, betas=tuple(betas))
        self.adam_form = adam_form

    def _init_extra_state(self, state, p):
        if self.adam_form:
            state["m"] = torch.zeros_like(p)

    def _curvature(self, p, grad):
        g = grad.detach()
        return g * g

    def _update(self, p, group, state, g, h):
        if not self.adam_form:
            return super()._update(p, group, state, g, h)
        alpha = group["lr"]
        beta1, beta2 = group["betas"]
        delta_t = group["prior_precision"] / group["dataset_size"]
        t = state["step"]
        mu = p.detach().clone()
        state["m"].mul_(beta1).add_((1 - beta1) * (g + delta_t * mu))  # m = b1 m + (1 - b1)(g + delta~ mu)
        state["s"].mul_(beta2).add_((1 - beta2) * h)  # s = b2 s + (1 - b2) g o g
        m_hat = state["m"] / (1 - beta1**t)
        s_hat = state["s"] / (1 - beta2**t)
        p.add_(-alpha * m_hat / (s_hat.sqrt() + delta_t))
        state["prev"] = mu


class VON(_VariationalOptimizer):
    """Variational online Newton (BaLeNAS eqs. 13-14): h is the diagonal of the Hessian at the sample.

    ``curvature`` chooses how that diagonal is obtained:
    - ``"hutchinson"`` (default): z o (H z) with Rademacher z, ``hutchinson_samples`` of them averaged
      (an unbiased estimate; AdaHessian's estimator);
    - ``"exact"``: one Hessian-vector product per element (exact; for small parameter tensors such as
      architecture parameters);
    - a callable ``f(params) -> list of tensors``, called with the sample in place, giving h for each
      parameter (e.g. a closed form).

    The first two need the graph of the gradient: the closure must call ``loss.backward(create_graph=True)``.
    A negative curvature estimate would make the precision N (s + delta~) negative; with
    ``nonnegative=True`` (default) h is clipped at 0, as Khan et al. (2018) require a positive
    definite Hessian (the Gauss-Newton variants, Vprop and VAdam, are positive by construction).
    """

    def __init__(self, params, lr: float = DEFAULT_LR, momentum: float = 0.0,
                 prior_precision: float = DEFAULT_PRIOR_PRECISION, dataset_size: int = DEFAULT_DATASET_SIZE,
                 mc_samples: int = 1, init_precision: float | None = None,
                 curvature: str | Callable[[Sequence[torch.Tensor]], Sequence[torch.Tensor]] = "hutchinson",
                 hutchinson_samples: int = 1, nonnegative: bool = True, perturb: bool = True,
                 generator: torch.Generator | None = None):
        if not callable(curvature) and curvature not in ("hutchinson", "exact"):
            raise ConfigError(f"VON curvature must be 'hutchinson', 'exact' or a callable, got {curvature!r}")
        _check(isinstance(hutchinson_samples, int) and hutchinson_samples >= 1,
               f"hutchinson_samples must be a positive integer, got {hutchinson_samples!r}")
        super().__init__(params, lr, momentum, prior_precision, dataset_size, mc_samples, init_precision,
                         perturb, generator)
        self.curvature = curvature
        self.hutchinson_samples = hutchinson_samples
        self.nonnegative = nonnegative
        self._given: dict[int, torch.Tensor] = {}

    @property
    def needs_gradient_graph(self) -> bool:
        """Whether the closure must leave the gradient's graph (``loss.backward(create_graph=True)``): for the
        Hutchinson and exact estimates, not for a given curvature."""
        return not callable(self.curvature)

    def _evaluate(self, closure):
        if callable(self.curvature):
            # A user-supplied h is computed for all parameters at once, at each sample.
            user = self.curvature
            params = [p for p, _ in self._params()]

            def closure_with_h():
                loss = closure()
                with torch.no_grad():
                    self._given = {id(p): torch.as_tensor(h, dtype=p.dtype, device=p.device).detach()
                                   for p, h in zip(params, user(params))}
                return loss

            return super()._evaluate(closure_with_h)
        return super()._evaluate(closure)

    def _curvature(self, p, grad):
        if callable(self.curvature):
            h = self._given[id(p)]
        else:
            h = self._hessian_diag(p, grad)
        return h.clamp(min=0) if self.nonnegative else h

    def _hessian_diag(self, p, grad):
        if grad is None or grad.grad_fn is None:
            raise ConfigError(
                "VON needs the graph of the gradient for its Hessian estimate: call "
                "loss.backward(create_graph=True) in the closure, or pass curvature=<callable>"
            )
        with torch.enable_grad():
            if self.curvature == "exact":
                flat = grad.reshape(-1)
                diag = torch.empty_like(flat)
                for i in range(flat.numel()):
                    (row,) = torch.autograd.grad(flat[i], p, retain_graph=True, allow_unused=True)
                    diag[i] = 0.0 if row is None else row.reshape(-1)[i]
                return diag.view_as(p).detach()
            total = torch.zeros_like(p)
            for _ in range(self.hutchinson_samples):
                if self.generator is None:
                    z = torch.randint_like(p, 2)
                else:
                    z = torch.randint(0, 2, p.shape, generator=self.generator, device=self.generator.device)
                    z = z.to(device=p.device, dtype=p.dtype)
                z = 2 * z - 1  # Rademacher
                (hz,) = torch.autograd.grad(grad, p, grad_outputs=z, retain_graph=True, allow_unused=True)
                if hz is not None:
                    total += z * hz.detach()  # E[z o Hz] = diag(H)
            return total / self.hutchinson_samples
