"""Search spaces behind one interface and one registry."""

from archsearch.spaces.base import SPACES, SearchSpace, as_rng, get_space
from archsearch.spaces.nb201 import NB201Genotype, NB201Space  # noqa: F401  (registers the space)
from archsearch.spaces.darts import DartsGenotype, DartsSpace  # noqa: F401  (registers the space)
from archsearch.spaces.nasnet import NasnetSpace  # noqa: F401  (registers the space)
from archsearch.spaces.nasnet_genotypes import NasnetGenotype
from archsearch.spaces.enas_macro import EnasMacroSpace, MacroGenotype  # noqa: F401  (registers the space)

__all__ = ["SPACES", "SearchSpace", "as_rng", "get_space", "NB201Genotype", "NB201Space", "DartsGenotype",
           "DartsSpace", "NasnetGenotype", "NasnetSpace",
           "EnasMacroSpace", "MacroGenotype"]
