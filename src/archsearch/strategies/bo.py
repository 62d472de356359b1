"""Bayesian optimisation over genotypes with a Gaussian-process surrogate (BoTorch / GPyTorch).

- Surrogate: ``SingleTaskGP`` on the space's one-hot encoding; kernel = Matern-5/2 with one lengthscale
  per input (ARD); Gaussian noise learned with the other hyper-parameters (noisy observations); outputs
  standardised by BoTorch's ``Standardize`` outcome transform, so no output-scale kernel is needed.
- Lengthscale prior: the dimension-scaled LogNormal(sqrt(2) + log(d)/2, sqrt(3)) of Hvarfner, Hellsten &
  Nardi (ICML 2024), started at its mode (exp(sqrt(2) + log(d)/2 - 3), about 1.1 for the 30 NB201
  inputs, median about 22). On one-hot inputs two cells that differ in k edges are sqrt(2k) apart, so the
  classic Gamma(3, 6) prior (mode 0.33) leaves unseen cells nearly uncorrelated with the data and the GP
  degenerates to its mean; the scaled prior lets it learn how much each edge's operation matters.
- Target warping (``warp="rank"``): the objective is replaced by normal scores of its ranks,
  Phi^-1((rank - 1/2) / n) (a Gaussian copula, as HEBO and Salinas et al., ICML 2020, do). Accuracy on
  NAS-Bench-201 is heavily skewed (12 epochs: median 72 %, best 84.9 %, 2 % of cells broken at 9.7 %);
  a GP with one stationary kernel fits the warped target far better. ``warp="none"`` fits the raw values.
- Hyper-parameters maximise the marginal likelihood (``fit_gpytorch_mll``, L-BFGS-B, at most
  ``fit_maxiter`` iterations, each fit starting from the last one's values), refitted every
  ``refit_every`` observations; in between, the model is conditioned on the new data with the last
  hyper-parameters. 10 and 50 are our choices: they keep an iteration at tens of milliseconds, and
  refitting every 5 or every step gave no better searches on NAS-Bench-201 (docs/black-box.md).
- Acquisition: EI, PI (improvement over best + xi) or UCB (mean + sqrt(beta) sd), in warped units.
  EI and PI are maximised in log form (BoTorch's LogEI / LogPI, Ament et al. 2023): the same argmax, but
  far from the data EI underflows to 0 and a plain argmax would pick the first of many ties;
  xi = 0.01 and beta = 2 are our choices (no single paper value fits a one-hot space).
- Maximised by enumeration over a candidate pool: ``pool_random`` uniform samples plus ``pool_mutations``
  one-edge mutations of each of the ``pool_parents`` best observed genotypes, never a genotype already told
  or pending. Mutating the incumbents is the acquisition optimiser of BANANAS (White et al., AAAI 2021:
  100 candidates, mutations of the best 1-2); the random part keeps global exploration.
- Pending genotypes (a batch ``ask(n)``, asynchronous workers) enter through BoTorch's ``X_pending``: the
  Monte-Carlo acquisitions qEI / qPI / qUCB integrate over fantasies of the pending outcomes, so each member
  of a batch is chosen knowing the others (sequential greedy, as ``optimize_acqf_discrete``).
- The first ``n_init`` genotypes are uniform random (10, as BANANAS).
"""

from __future__ import annotations

import math
import warnings

import torch
from botorch.acquisition import (LogExpectedImprovement, UpperConfidenceBound, qLogExpectedImprovement,
                                 qProbabilityOfImprovement, qUpperConfidenceBound)
from botorch.acquisition.analytic import LogProbabilityOfImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import MaternKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior
from scipy.stats import norm, rankdata

from archsearch.errors import ConfigError, UnknownNameError
from archsearch.strategies.base import Strategy

ACQUISITIONS = ("ei", "pi", "ucb")
WARPS = ("rank", "none")


def matern_with_scaled_prior(dims: int) -> MaternKernel:
    """Matern-5/2 ARD kernel, lengthscale prior LogNormal(sqrt(2) + log(d)/2, sqrt(3)) (Hvarfner et al. 2024)."""
    prior = LogNormalPrior(loc=math.sqrt(2.0) + 0.5 * math.log(dims), scale=math.sqrt(3.0))
    # lower bound 0.025 as BoTorch's default kernel, for a well-conditioned covariance
    return MaternKernel(nu=2.5, ard_num_dims=dims, lengthscale_prior=prior,
                        lengthscale_constraint=GreaterThan(0.025, transform=None, initial_value=prior.mode))


def normal_scores(y: torch.Tensor) -> torch.Tensor:
    """Gaussian-copula warp: Phi^-1((rank - 1/2) / n), ties sharing their average rank."""
    ranks = rankdata(y.numpy())
    return torch.as_tensor(norm.ppf((ranks - 0.5) / len(ranks)), dtype=torch.double)


class BayesianOptimisation(Strategy):
    name = "bo"

    def __init__(self, space, seed: int | None = None, acquisition: str = "ei", xi: float = 0.01,
                 beta: float = 2.0, n_init: int = 10, pool_random: int = 200, pool_mutations: int = 20,
                 pool_parents: int = 10, mc_samples: int = 128, refit_every: int = 10, fit_maxiter: int = 50,
                 warp: str = "rank"):
        super().__init__(space, seed)
        if acquisition not in ACQUISITIONS:
            raise UnknownNameError("acquisition", acquisition, ACQUISITIONS)
        if warp not in WARPS:
            raise UnknownNameError("warp", warp, WARPS)
        if n_init < 1 or refit_every < 1 or fit_maxiter < 1:
            raise ConfigError("bo needs n_init >= 1, refit_every >= 1 and fit_maxiter >= 1")
        self.acquisition, self.xi, self.beta, self.n_init = acquisition, xi, beta, n_init
        self.pool_random, self.pool_mutations, self.pool_parents = pool_random, pool_mutations, pool_parents
        self.mc_samples, self.refit_every, self.fit_maxiter, self.warp = mc_samples, refit_every, fit_maxiter, warp
        self.hyper: dict | None = None  # last fitted hyper-parameters
        self.fitted_at = 0  # number of observations at the last fit

    # -- surrogate ------------------------------------------------------------------------------
    def _data(self):
        X = torch.stack([self.space.encode(g) for g, _ in self.history]).double()
        y = torch.tensor([v for _, v in self.history], dtype=torch.double)
        finite = torch.isfinite(y)
        y = y.clamp_min(y[finite].min()) if finite.any() else torch.zeros_like(y)  # failed runs rank last
        return X, (normal_scores(y) if self.warp == "rank" else y).unsqueeze(-1)

    def _fit(self):
        X, Y = self._data()
        model = SingleTaskGP(X, Y, covar_module=matern_with_scaled_prior(X.shape[-1]),
                             outcome_transform=Standardize(m=1))
        refit = self.hyper is None or len(self.history) - self.fitted_at >= self.refit_every
        if self.hyper is not None:
            model.load_state_dict(self.hyper, strict=False)
        if refit:
            with warnings.catch_warnings(), torch.enable_grad():  # also when called under no_grad
                warnings.simplefilter("ignore")
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model),
                                 optimizer_kwargs={"options": {"maxiter": self.fit_maxiter}})
            # the data and the outcome transform's statistics are rebuilt from the history on every call
            self.hyper = {k: v.detach().clone() for k, v in model.state_dict().items()
                          if "train" not in k and not k.startswith("outcome_transform")}
            self.fitted_at = len(self.history)
        model.eval()
        return model, Y

    def surrogate(self) -> SingleTaskGP:
        """The GP on everything told so far (hyper-parameters refitted if due), in eval mode.

        Its outputs are in the warped units the acquisition sees (normal scores with ``warp="rank"``).
        """
        if not self.history:
            raise ConfigError("bo has no observations yet: tell it at least one result first")
        return self._fit()[0]

    # -- candidates -----------------------------------------------------------------------------
    def _pool(self):
        excluded = {g for g, _ in self.history} | set(self.pending)
        pool, seen = [], set(excluded)

        def add(genotype):
            if genotype not in seen:
                seen.add(genotype)
                pool.append(genotype)

        for _ in range(self.pool_random):
            add(self.space.sample(self.rng))
        parents = sorted(self.history, key=lambda item: -item[1])[: self.pool_parents]
        for parent, _ in parents:
            for _ in range(self.pool_mutations):
                add(self.space.mutate(parent, self.rng))
        while not pool:  # everything drawn was known: keep drawing
            add(self.space.sample(self.rng))
        return pool

    def _acquisition(self, model, best_f):
        if not self.pending:
            if self.acquisition == "ei":
                return LogExpectedImprovement(model, best_f=best_f)
            if self.acquisition == "pi":
                return LogProbabilityOfImprovement(model, best_f=best_f + self.xi)
            return UpperConfidenceBound(model, beta=self.beta)
        X_pending = torch.stack([self.space.encode(g) for g in self.pending]).double()
        sampler = SobolQMCNormalSampler(torch.Size([self.mc_samples]), seed=int(self.rng.integers(2**31)))
        if self.acquisition == "ei":
            return qLogExpectedImprovement(model, best_f=best_f, sampler=sampler, X_pending=X_pending)
        if self.acquisition == "pi":
            return qProbabilityOfImprovement(model, best_f=best_f + self.xi, sampler=sampler, X_pending=X_pending)
        return qUpperConfidenceBound(model, beta=self.beta, sampler=sampler, X_pending=X_pending)

    def _propose(self):
        if len(self.history) < self.n_init:
            known = {g for g, _ in self.history} | set(self.pending)
            genotype = self.space.sample(self.rng)
            while genotype in known and len(known) < (self.space.size() or math.inf):
                genotype = self.space.sample(self.rng)
            return genotype
        model, Y = self._fit()
        pool = self._pool()
        X = torch.stack([self.space.encode(g) for g in pool]).double().unsqueeze(1)  # b x q=1 x d
        acquisition = self._acquisition(model, Y.max().item())
        with torch.no_grad():
            values = torch.cat([acquisition(chunk) for chunk in X.split(1024)])
        return pool[int(values.argmax())]

    def _extra_state(self):
        return {"hyper": self.hyper, "fitted_at": self.fitted_at}

    def _load_extra_state(self, state):
        self.hyper, self.fitted_at = state["hyper"], int(state["fitted_at"])
