"""ENAS' macro search space (Pham, Guan, Zoph, Le & Dean, "Efficient Neural Architecture Search via
Parameter Sharing", ICML 2018, Sec. 2.3; melodyguan/enas src/cifar10/general_child.py with
``--controller_search_whole_channels``): a network of L layers, each one op of six and a skip connection
from each node before its input, 6^L x 2^(L (L - 1) / 2) networks (about 1.6 x 10^29 for L = 12, the
paper's count).

The genotype and its text are in enas_macro_genotypes.py, the networks in enas_macro_network.py, the
shared-weights network in enas_macro_supernet.py; see docs/spaces-enas-macro.md. Its decisions are one
independent choice each (``choice_shape``): per layer the op (6 choices), then its skip bits (2 each).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from archsearch.checks import integer
from archsearch.errors import InvalidGenotypeError
from archsearch.spaces.base import SPACES, RandomSource, SearchSpace, as_rng
from archsearch.spaces.enas_macro_genotypes import (
    MAX_LAYERS, OPS, PUBLISHED, MacroGenotype, from_arc, layers_of_arc, parse_text, to_arc, to_text,
)
from archsearch.spaces.enas_macro_network import MacroNetwork
from archsearch.spaces.enas_macro_supernet import MacroSupernet, choice_sizes


@SPACES.register("enas-macro")
class EnasMacroSpace(SearchSpace):
    """ENAS' macro space: L layers, each one of 6 ops and skips from every earlier node (Pham et al. 2018)."""

    name = "enas-macro"
    ops = OPS
    genotype_type = MacroGenotype
    #: the final network's channels, scripts/cifar10_macro_final.sh:44 (``--child_out_filters=96``)
    network_defaults = {"C": 96}
    published_genotypes = dict(PUBLISHED)

    def __init__(self, layers: int = 12):
        # 12 layers in the search, scripts/cifar10_macro_search.sh:16
        self.layers = integer(layers, "the enas-macro space's layers", minimum=1, maximum=MAX_LAYERS)
        self.choice_shape = (self.layers * (self.layers + 1) // 2, len(OPS))

    @staticmethod
    def named(name: str) -> MacroGenotype:
        """A published genotype: ENAS_MACRO (24 layers)."""
        return parse_text(name)

    # -- genotypes ------------------------------------------------------------------------------
    def sample(self, rng: RandomSource = None) -> MacroGenotype:
        """Each op uniform over the six, each skip bit a fair coin."""
        rng = as_rng(rng)
        ops = tuple(OPS[int(i)] for i in rng.integers(len(OPS), size=self.layers))
        skips = tuple(tuple(int(b) for b in rng.integers(2, size=layer)) for layer in range(1, self.layers))
        return MacroGenotype(ops, skips)

    def neighbours(self, genotype) -> list[MacroGenotype]:
        """Layer by layer: each other op, then each skip bit flipped."""
        genotype = self.parse(genotype)
        arc, sizes, out = to_arc(genotype), choice_sizes(genotype.layers), []
        for k, (value, n) in enumerate(zip(arc, sizes)):
            for other in range(n):
                if other != value:
                    out.append(from_arc(arc[:k] + [other] + arc[k + 1:]))
        return out

    def mutate(self, genotype, rng: RandomSource = None) -> MacroGenotype:
        """One neighbour drawn uniformly."""
        options = self.neighbours(genotype)
        return options[int(as_rng(rng).integers(len(options)))]

    def size(self) -> int:
        return len(OPS) ** self.layers * 2 ** (self.layers * (self.layers - 1) // 2)

    def encode(self, genotype) -> torch.Tensor:
        """A one-hot of each layer's op, then the skip bits."""
        genotype = self.parse(genotype)
        onehot = torch.zeros(genotype.layers, len(OPS))
        onehot[torch.arange(genotype.layers), torch.tensor([OPS.index(op) for op in genotype.ops])] = 1.0
        bits = torch.tensor([float(b) for row in genotype.skips for b in row])
        return torch.cat([onehot.flatten(), bits])

    def choice_sizes(self) -> list[int]:
        return choice_sizes(self.layers)

    def from_choices(self, choices: Sequence[int]) -> MacroGenotype:
        """The reference's flat arc (any L: L (L + 1) / 2 choices)."""
        genotype = from_arc(choices)
        for k, (c, n) in enumerate(zip(choices, choice_sizes(genotype.layers))):
            if not 0 <= c < n:
                raise InvalidGenotypeError(f"choice {k} is {c}; that decision takes 0..{n - 1}")
        return genotype

    def to_choices(self, genotype) -> list[int]:
        return to_arc(self.parse(genotype))

    def to_string(self, genotype) -> str:
        return to_text(self.parse(genotype))

    def from_string(self, text: str) -> MacroGenotype:
        """The text format (``conv_3x3 / sep_conv_5x5 0 / ...``), the reference's flat arc or ENAS_MACRO."""
        return parse_text(text)

    # -- networks -------------------------------------------------------------------------------
    def network(self, genotype, num_classes: int = 10, C: int | None = None, in_channels: int = 3,
                dropout: float = 0.5, style: str = "fixed") -> MacroNetwork:
        """The discrete network (``style``: "fixed", the reference's final network; "search", the supernet's
        computation of this architecture). C: the first layers' channels (96, the final script's);
        dropout before the classifier 0.5 (``--child_keep_prob=0.50``, cifar10_macro_final.sh:48)."""
        return MacroNetwork(self.parse(genotype), self.network_defaults["C"] if C is None else C, num_classes,
                            in_channels, dropout, style)

    def supernet(self, num_classes: int = 10, relaxation=None, C: int = 36, layers: int | None = None,
                 in_channels: int = 3, dropout: float = 0.1, track_running_stats: bool = True) -> MacroSupernet:
        """The shared-weights network: C 36, 12 layers, dropout 0.1 (cifar10_macro_search.sh:16-17, :21)."""
        return MacroSupernet(C, self.layers if layers is None else layers, num_classes, relaxation, in_channels,
                             dropout, track_running_stats)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {"arc": self.choice_shape}

    def genotype_from_weights(self, weights, exclude: Sequence[str] = ("none",)) -> MacroGenotype:
        """Per op row the heaviest op not excluded; per skip row on where column 1 outweighs column 0."""
        w = weights["arc"].detach().float()
        sizes = choice_sizes(layers_of_arc(w.shape[0]))
        banned = [OPS.index(name) for name in exclude if name in OPS]
        arc = []
        for row, n in zip(w, sizes):
            row = row[:n].clone()
            if n == len(OPS) and len(banned) < n:
                row[banned] = float("-inf")
            arc.append(int(row.argmax()))
        return from_arc(arc)

    # -- drawing --------------------------------------------------------------------------------
    def cell_edges(self, genotype) -> dict[str, list[tuple[str, str, str]]]:
        """The whole network: node "stem", "0".."L-1" (layers) and "out"; each layer's input edge carries its
        op, its skips are "skip" edges."""
        genotype = self.parse(genotype)
        names = ["stem"] + [str(l) for l in range(genotype.layers)]
        edges = []
        for l, op in enumerate(genotype.ops):
            edges.append((names[l], names[l + 1], op))
            edges += [(names[i], names[l + 1], "skip") for i in genotype.inputs(l)]
        edges.append((names[-1], "out", "pool+fc"))
        return {"network": edges}


__all__ = ["EnasMacroSpace", "MacroGenotype"]
