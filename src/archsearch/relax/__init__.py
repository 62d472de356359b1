"""Relaxations: how architecture parameters become op weights on an edge.

Each relaxation is called once per supernet forward with one (edges, ops) parameter tensor and
returns weights of the same shape. A relaxation may also say how to sample a discrete genotype
from what was learned (``sample_weights``), which sample-and-rank selection uses.
"""

from archsearch.relax.base import RELAXATIONS, Relaxation, build_relaxation
from archsearch.relax import gaussian, softmax  # noqa: F401  (registers)
from archsearch.relax import experts, sigmoid  # noqa: F401  (XNAS, FairDARTS)
from archsearch.relax import dirichlet, gumbel  # noqa: F401  (GDAS, SNAS, DrNAS)
from archsearch.relax import uniform  # noqa: F401  (RSPS, SETN)
from archsearch.relax import controller  # noqa: F401  (ENAS)

__all__ = ["RELAXATIONS", "Relaxation", "build_relaxation"]
