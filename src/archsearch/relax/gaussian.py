"""BaLeNAS' relaxation (Zhang et al., CVPR 2022): alpha ~ q = N(mu, sigma^2), weights softmax(alpha).

The supernet's alpha parameters hold the mean mu; sigma lives in the variational optimizer (VAdam,
VON, Vprop), which draws alpha ~ q into the parameters around each architecture step's closure
(``_VariationalOptimizer.step``). So in the architecture step the op weights are softmax of a sample
of q; in the weight step they are softmax(mu) by default. BaLeNAS' Algorithm 1 samples alpha only to
update q and trains w on the mean; ``weight_sample=True`` draws a fresh sample for every weight
step too (an option, for comparison).

After the search, ``sampler`` draws genotypes from q (sample alpha, argmax per edge), which the
sample-and-rank selector ranks with a training-free proxy (BaLeNAS-TF).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from archsearch.relax.base import RELAXATIONS, Relaxation


@RELAXATIONS.register("gaussian")
class Gaussian(Relaxation):
    def __init__(self, weight_sample: bool = False, entropy_samples: int = 4000):
        self.weight_sample = weight_sample
        self.entropy_samples = entropy_samples
        self._sigma = None  # callable: alpha parameter -> its sigma tensor

    def attach(self, optimizer) -> None:
        """Read sigma from the variational optimizer that owns q."""
        if not hasattr(optimizer, "sigma"):
            from archsearch.errors import ConfigError

            raise ConfigError("the gaussian relaxation needs a variational architecture optimizer "
                              "(vadam, von, vprop) that holds sigma")
        self._optimizer = optimizer

    def sigmas(self, alphas: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        sigma_of = {}
        params = [p for group in self._optimizer.param_groups for p in group["params"]]
        for p, s in zip(params, self._optimizer.sigma()):
            sigma_of[id(p)] = s
        return {name: sigma_of[id(alpha)].detach() for name, alpha in alphas.items()}

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        if self.weight_sample and self.sampling and self.phase == "weights":
            sigma = self.sigmas({"a": alpha})["a"]
            alpha = alpha + sigma * torch.randn_like(alpha)  # a fresh alpha ~ q for this weight step
        return torch.softmax(alpha, dim=-1)

    def deterministic_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        """softmax(mu), whichever step ran last (with weight_sample a weight step would draw)."""
        return torch.softmax(alpha, dim=-1).detach()

    def sample_alphas(self, alphas: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        sigmas = self.sigmas(alphas)
        return {name: alpha.detach().cpu() + sigmas[name].cpu() * torch.from_numpy(
                    rng.standard_normal(tuple(alpha.shape))).to(alpha.dtype)
                for name, alpha in alphas.items()}

    def sampler(self, view):
        """rng -> genotype: alpha ~ q, then the space's argmax rule (excluding none)."""
        alphas = view.supernet.named_arch_parameters()

        def draw(rng: np.random.Generator):
            return view.space.genotype_from_weights(self.sample_alphas(alphas, rng), exclude=("none",))

        return draw

    def describe(self, view) -> dict:
        """mu and sigma per edge, and the entropy (nats) of the distribution over architectures that q
        implies through argmax per edge (excluding none): sum over edges of the entropy of each edge's
        op-choice distribution, estimated from ``entropy_samples`` draws. For NAS-Bench-201 the
        genotype is exactly the tuple of per-edge choices, so this is the genotype entropy; for the
        DARTS space it is that of the per-edge choices before the top-2 edge selection."""
        alphas = view.supernet.named_arch_parameters()
        sigmas = self.sigmas(alphas)
        rng = np.random.default_rng(view.config.seed * 7919 + view.epoch)
        none = view.space.ops.index("none") if "none" in view.space.ops else None
        entropy = 0.0
        for name, alpha in alphas.items():
            mu, sigma = alpha.detach().cpu().double().numpy(), sigmas[name].cpu().double().numpy()
            draws = mu + sigma * rng.standard_normal((self.entropy_samples, *mu.shape))
            if none is not None:
                draws[..., none] = -np.inf
            choice = draws.argmax(axis=-1)  # (samples, edges)
            for edge in range(mu.shape[0]):
                p = np.bincount(choice[:, edge], minlength=mu.shape[1]) / self.entropy_samples
                p = p[p > 0]
                entropy += float(-(p * np.log(p)).sum())
        return {
            "mu": {name: [[round(v, 6) for v in row] for row in a.detach().cpu().tolist()] for name, a in alphas.items()},
            "sigma": {name: [[round(v, 6) for v in row] for row in s.cpu().tolist()] for name, s in sigmas.items()},
            "arch_entropy": entropy,
            "arch_entropy_max": sum(a.shape[0] * math.log(a.shape[1] - (none is not None)) for a in alphas.values()),
        }
