"""The DARTS recurrent-cell space (Liu, Simonyan & Yang, ICLR 2019, Sec. 2.1 and 3.2) on Penn Treebank.

A cell has 8 intermediate nodes; node k (1-based) takes one earlier state (0..k-1) through one of tanh, relu,
sigmoid, identity, and the cell's output averages nodes 1..8 (quark0/darts ``rnn/genotypes.py``,
``rnn/model.py``). Architecture parameters have one row per (node, input state), node by node:
node 1 <- {0}, node 2 <- {0, 1}, ..., node 8 <- {0..7} (36 rows), and one column per op in ``OPS`` order
(``none`` first, as rnn/genotypes.py lists them). Genotype type and text: darts_rnn_genotypes.py; the cell and
its language model: darts_rnn_network.py; see docs/rnn.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch

from archsearch.errors import ConfigError, InvalidGenotypeError, ShapeError, shown
from archsearch.spaces.base import SPACES, RandomSource, SearchSpace, as_rng
from archsearch.spaces.darts_rnn_genotypes import (
    ACTIVATIONS, EDGE_ROWS, OPS, PUBLISHED, ROW_OF, STEPS, DartsRnnGenotype, parse_genotype_str, published,
    to_genotype_str,
)
from archsearch.spaces.darts_rnn_network import RNNModel, language_model

#: the vocabulary of Penn Treebank (Mikolov's form, <eos> included): the model's width where none is given
PTB_VOCABULARY = 10_000
CELL = "recurrent"
CONCAT = tuple(range(1, STEPS + 1))


@SPACES.register("darts-rnn")
class DartsRnnSpace(SearchSpace):
    """The DARTS recurrent cell: 8 nodes, each one earlier state and one of 4 activations."""

    name = "darts-rnn"
    ops = OPS
    genotype_type = DartsRnnGenotype
    #: per node: its input state (node k has k of them), then its activation
    choice_shape = (2 * STEPS, max(STEPS, len(ACTIVATIONS)))
    #: the model ``network`` builds when no size is given: rnn/train.py's emsize = nhid = 850 (lines 24-27)
    network_defaults = {"emsize": 850, "nhid": 850}
    published_genotypes = dict(PUBLISHED)
    inputs_per_node = 1
    #: a network of this space reads token ids, not images
    input_kind = "tokens"

    @staticmethod
    def named(name: str) -> DartsRnnGenotype:
        """A published genotype: DARTS_V1, DARTS_V2 (= DARTS), ENAS (11 nodes: trainable, not a member)."""
        return published(name)

    def _member(self, genotype) -> DartsRnnGenotype:
        genotype = self.parse(genotype)
        if genotype.steps != STEPS or genotype.concat != CONCAT:
            raise InvalidGenotypeError(
                f"the cell has {genotype.steps} nodes averaging {list(genotype.concat)}; the darts-rnn space's "
                f"cells have {STEPS} nodes averaging all of them (such a cell trains and draws, but is no member)")
        return genotype

    # -- genotypes ---------------------------------------------------------------------------
    def sample(self, rng: RandomSource = None) -> DartsRnnGenotype:
        """Uniform: node k's input uniform over 0..k-1, its activation uniform over the 4."""
        rng = as_rng(rng)
        edges = []
        for node in range(1, STEPS + 1):
            source = int(rng.integers(node))
            edges.append((ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))], source))
        return DartsRnnGenotype(tuple(edges), CONCAT)

    def neighbours(self, genotype) -> list[DartsRnnGenotype]:
        """One node's activation (to another) or input (to another earlier state); node by node, ops first."""
        base = self._member(genotype)
        out = []
        for i, (op, source) in enumerate(base.recurrent):
            changes = [(new, source) for new in ACTIVATIONS if new != op]
            changes += [(op, new) for new in range(i + 1) if new != source]
            for change in changes:
                edges = list(base.recurrent)
                edges[i] = change
                out.append(DartsRnnGenotype(tuple(edges), CONCAT))
        return out

    def mutate(self, genotype, rng: RandomSource = None) -> DartsRnnGenotype:
        """One neighbour drawn uniformly."""
        options = self.neighbours(genotype)
        return options[int(as_rng(rng).integers(len(options)))]

    def size(self) -> int:
        """prod over nodes of k inputs x 4 activations = 8! * 4^8 = 2,642,411,520."""
        return math.factorial(STEPS) * len(ACTIVATIONS) ** STEPS

    def encode(self, genotype) -> torch.Tensor:
        """Flat (36 rows x 5 ops) = 180 one-hot, rows and columns as the alphas'."""
        genotype = self._member(genotype)
        onehot = torch.zeros(len(EDGE_ROWS), len(OPS))
        for k, (op, source) in enumerate(genotype.recurrent):
            onehot[ROW_OF[(k + 1, source)], OPS.index(op)] = 1.0
        return onehot.flatten()

    def to_string(self, genotype) -> str:
        return to_genotype_str(self.parse(genotype))

    def from_string(self, text: str) -> DartsRnnGenotype:
        """The reference's ``Genotype(recurrent=[...], concat=...)`` text, or a published name."""
        return parse_genotype_str(text)

    def choice_sizes(self) -> list[int]:
        """Node k's input takes k choices, its activation 4 (the first 4 of ``choice_shape[1]``)."""
        return [n for node in range(1, STEPS + 1) for n in (node, len(ACTIVATIONS))]

    def from_choices(self, choices: Sequence[int]) -> DartsRnnGenotype:
        """Decisions in ``choice_sizes`` order: per node its input state, then its activation's index."""
        choices, sizes = list(choices), self.choice_sizes()
        if len(choices) != len(sizes):
            raise InvalidGenotypeError(f"expected {len(sizes)} choices ({STEPS} nodes x input, activation), "
                                       f"got {len(choices)}")
        for k, (c, n) in enumerate(zip(choices, sizes)):
            if isinstance(c, bool) or not isinstance(c, Integral) or not 0 <= c < n:
                raise InvalidGenotypeError(f"choice {k} is {shown(c)}; that decision takes 0..{n - 1}")
        edges = tuple((ACTIVATIONS[int(choices[2 * i + 1])], int(choices[2 * i])) for i in range(STEPS))
        return DartsRnnGenotype(edges, CONCAT)

    def to_choices(self, genotype) -> list[int]:
        return [c for op, source in self._member(genotype).recurrent for c in (source, ACTIVATIONS.index(op))]

    # -- networks ----------------------------------------------------------------------------
    def network(self, genotype, num_classes: int = PTB_VOCABULARY, emsize: int = 850, nhid: int | None = None,
                dropout: float = 0.75, dropouth: float = 0.25, dropoutx: float = 0.75, dropouti: float = 0.2,
                dropoute: float = 0.1) -> RNNModel:
        """The language model: ``num_classes`` is the vocabulary; defaults are rnn/train.py's (lines 24-49);
        ``nhid`` is ``emsize`` where not given (the tied decoder needs them equal)."""
        nhid = emsize if nhid is None else nhid
        for what, value in (("num_classes", num_classes), ("emsize", emsize), ("nhid", nhid)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ConfigError(f"{what} must be an integer >= 1, got {shown(value)}")
        return language_model(self.parse(genotype), int(num_classes), int(emsize), int(nhid), dropout, dropouth,
                              dropoutx, dropouti, dropoute)

    def supernet(self, num_classes: int = PTB_VOCABULARY, relaxation=None, emsize: int = 300, nhid: int | None = None,
                 dropout: float = 0.75, dropouth: float = 0.25, dropoutx: float = 0.75, dropouti: float = 0.2,
                 dropoute: float = 0.0, batch_norm: bool = True):
        """The search supernet (spaces/darts_rnn_supernet.py): ``num_classes`` is the vocabulary; defaults are
        rnn/train_search.py's (lines 23-48: emsize = nhid = 300, dropoute 0); ``batch_norm`` False drops the
        search cell's BN (model_search.py:14), for comparing it with the discrete cell."""
        from archsearch.spaces.darts_rnn_supernet import DartsRnnSupernet

        nhid = emsize if nhid is None else nhid
        for what, value in (("num_classes", num_classes), ("emsize", emsize), ("nhid", nhid)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ConfigError(f"{what} must be an integer >= 1, got {shown(value)}")
        return DartsRnnSupernet(int(num_classes), relaxation, int(emsize), int(nhid), dropout, dropouth, dropoutx,
                                dropouti, dropoute, batch_norm)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {CELL: (len(EDGE_ROWS), len(OPS))}

    def cell_graph(self) -> tuple[list[tuple[int, int]], set[int], set[int]]:
        # state 0 is the cell's input; every node feeds the average
        return [(source, node) for node, source in EDGE_ROWS], {0}, set(CONCAT)

    def selected_edges(self, genotype) -> dict[str, list[tuple[int, str]]]:
        genotype = self._member(genotype)
        return {CELL: [(ROW_OF[(k + 1, source)], op) for k, (op, source) in enumerate(genotype.recurrent)]}

    def genotype_from_weights(self, weights, exclude: Sequence[str] = ("none",)) -> DartsRnnGenotype:
        """The DARTS rule (quark0/darts ``rnn/model_search.py:75-95``): per node, the input state whose
        strongest op outside ``exclude`` weighs most, then that row's argmax op outside ``exclude``.

        ``weights``: {"recurrent": (36, 5)} (or the tensor), the relaxed op weights (the reference ranks softmax
        probabilities). Ties go to the lower state / op index, as the reference's stable sort and strict ``>``.
        """
        for name in exclude:
            if name not in OPS:
                raise ConfigError(f"cannot exclude unknown op {shown(name)} (ops: {', '.join(OPS)})")
        keep = [k for k, name in enumerate(OPS) if name not in exclude and name != "none"]
        if not keep:
            raise ConfigError("exclude removes every activation; keep at least one")
        w = weights[CELL] if isinstance(weights, dict) else weights
        w = np.asarray(torch.as_tensor(w).detach().cpu().double())
        if w.shape != (len(EDGE_ROWS), len(OPS)):
            raise ShapeError(f"weights['{CELL}'] has shape {w.shape}; the darts-rnn space needs "
                             f"{(len(EDGE_ROWS), len(OPS))} (rows x ops)")
        edges = []
        for node in range(1, STEPS + 1):
            rows = w[[ROW_OF[(node, source)] for source in range(node)]][:, keep]
            source = sorted(range(node), key=lambda s: -rows[s].max())[0]
            edges.append((OPS[keep[int(np.argmax(rows[source]))]], source))
        return DartsRnnGenotype(tuple(edges), CONCAT)

    # -- drawing -----------------------------------------------------------------------------
    def cell_edges(self, genotype) -> dict[str, list[tuple[str, str, str]]]:
        """Nodes: "x_{t}" and "h_{t-1}" into "0" (s0), "1".."k" the nodes, "h_{t}" the average ("concat"),
        as the DARTS paper draws the cell (Fig. 5)."""
        genotype = self.parse(genotype)
        edges = [("x_{t}", "0", "init"), ("h_{t-1}", "0", "init")]
        edges += [(str(source), str(k + 1), op) for k, (op, source) in enumerate(genotype.recurrent)]
        edges += [(str(node), "h_{t}", "concat") for node in genotype.concat]
        return {CELL: edges}
