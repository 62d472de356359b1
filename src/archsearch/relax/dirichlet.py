"""DrNAS' relaxation (Chen, Wang, Cheng, Tang & Hsieh, "DrNAS: Dirichlet Neural Architecture Search",
ICLR 2021; xiangning-chen/DrNAS ``201-space``): each edge's op weights are a Dirichlet sample

    w ~ Dir(beta),   beta = elu(alpha) + 1 > 0,

drawn once per supernet forward with pathwise (reparameterised) gradients (implicit
reparameterisation, ``torch.distributions.Dirichlet.rsample``), in the architecture and the weight
steps alike, as the reference's ``process_step_matrix(..., 'dirichlet')``. The architecture loss adds

    kl_weight * sum_edges KL( Dir(beta_edge) || Dir(prior * 1) )

(the reference's ``--reg_type kl``: anchor ``Dirichlet(ones)``, ``reg_scale`` 1e-3). What was learned
is the Dirichlet's mean beta / sum(beta), which has alpha's argmax (elu + 1 is increasing).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet as _Dir
from torch.distributions import kl_divergence

from archsearch.errors import ConfigError
from archsearch.relax.base import RELAXATIONS, Relaxation


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """beta = elu(alpha) + 1 (DrNAS ``F.elu(x) + 1``)."""
    return F.elu(alpha) + 1.0


@RELAXATIONS.register("dirichlet")
class Dirichlet(Relaxation):
    def __init__(self, kl_weight: float = 1e-3, prior: float = 1.0):  # DrNAS: reg_scale 1e-3, anchor Dir(1)
        if kl_weight < 0:
            raise ConfigError(f"kl_weight must be >= 0, got {kl_weight}")
        if not prior > 0:
            raise ConfigError(f"the prior concentration must be > 0, got {prior}")
        self.kl_weight, self.prior = float(kl_weight), float(prior)

    def mean(self, alpha: torch.Tensor) -> torch.Tensor:
        beta = concentration(alpha)
        return beta / beta.sum(dim=-1, keepdim=True)  # E[w] = beta / beta_0

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        if not self.sampling:
            return self.mean(alpha)
        return _Dir(concentration(alpha)).rsample()  # w ~ Dir(beta), pathwise gradient

    def deterministic_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        return self.mean(alpha.detach())

    def kl(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor:
        """sum over every edge of every cell type of KL(Dir(beta) || Dir(prior))."""
        total = 0.0
        for alpha in alphas.values():
            beta = concentration(alpha)
            total = total + kl_divergence(_Dir(beta), _Dir(torch.full_like(beta, self.prior))).sum()
        return total

    def extra_loss(self, alphas: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.kl_weight:
            return None
        return self.kl_weight * self.kl(alphas)

    def sampler(self, view):
        """rng -> genotype: w ~ Dir(beta) on every edge, then the space's argmax rule (excluding none)."""
        alphas = view.supernet.named_arch_parameters()

        def draw(rng: np.random.Generator):
            weights = {}
            for name, alpha in alphas.items():
                beta = concentration(alpha.detach().cpu().double()).numpy()
                weights[name] = torch.from_numpy(np.stack([rng.dirichlet(row) for row in beta])).float()
            return view.space.genotype_from_weights(view.supernet.selection_weights(weights), exclude=("none",))

        return draw

    def describe(self, view) -> dict:
        with torch.no_grad():
            return {"kl_to_prior": float(self.kl(view.supernet.named_arch_parameters()))}
