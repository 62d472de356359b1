"""A uniformly drawn path for the weight step: random-sampling one-shot search and SETN.

RSPS (Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture Search", UAI 2019) and
SETN (Dong & Yang, "One-Shot Neural Architecture Search via Self-Evaluated Template Network", ICCV 2019)
train the shared weights one architecture at a time: before each weight step an architecture is drawn
uniformly, one op per edge, and only its path is computed,

    o_e ~ U{ops}   independently per edge e,   h_e = one_hot(o_e),

the same draw for every cell that reads the alpha row (D-X-Y/AutoDL-Projects
``xautodl/models/cell_searchs/search_model_random.py:75-87`` ``random_genotype`` with
``search_cells.py:156-166`` ``forward_dynamic``; SETN's weight step draws the same way,
``exps/NAS-Bench-201-algos/SETN.py:54-55`` with ``search_model_setn.py:114-130`` ``dync_genotype(True)``).
``none`` is among the ops, as there. h holds no alpha: the draw owes alpha no gradient.

In the architecture step (``phase == "arch"``) the weights are softmax(alpha) and every op is computed:
SETN's "joint" mode (``SETN.py:71``, ``search_cells.py:103-117``). RSPS takes no architecture step
(``arch_optimizer: none``); there alpha stays at its initial value and only logging reads its softmax.

On the DARTS space the draw is per edge as well, which is not the space's uniform genotype (two inputs
per node, never ``none``): every edge then trains with probability 7/8 of a non-zero op.
"""

from __future__ import annotations

import numpy as np
import torch

from archsearch.relax.base import RELAXATIONS, Relaxation


@RELAXATIONS.register("uniform_path")
class UniformPath(Relaxation):
    """Weight step: one op per edge drawn uniformly (hard one-hot); arch step and logging: softmax(alpha)."""

    @property
    def hard(self) -> bool:
        return self.sampling and self.phase == "weights"

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        if not self.hard:
            return torch.softmax(alpha, dim=-1)
        # torch's global generator, as dropout and the Gumbel noise: seeded by the run's seed
        drawn = torch.randint(alpha.shape[-1], alpha.shape[:-1], device=alpha.device)
        return torch.nn.functional.one_hot(drawn, alpha.shape[-1]).to(alpha.dtype)

    def deterministic_weights(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.softmax(alpha.detach(), dim=-1)

    def sampler(self, view):
        """rng -> genotype: one op per edge drawn from softmax(alpha) (SETN's templates, ``dync_genotype``
        with use_random=False, ``search_model_setn.py:124-127``); on spaces that keep a few inputs per node,
        the space's rule then reads the one-hot draw."""
        alphas = view.supernet.named_arch_parameters()
        exclude = ("none",) if view.space.inputs_per_node else ()

        def draw(rng: np.random.Generator):
            weights = {}
            for name, alpha in alphas.items():
                p = torch.softmax(alpha.detach().cpu().double(), dim=-1).numpy()
                chosen = [int(rng.choice(len(row), p=row / row.sum())) for row in p]
                weights[name] = torch.nn.functional.one_hot(torch.tensor(chosen), p.shape[-1]).double()
            return view.space.genotype_from_weights(view.supernet.selection_weights(weights), exclude=exclude)

        return draw


__all__ = ["UniformPath"]
