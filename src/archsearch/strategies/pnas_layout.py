"""How PNAS's blocks map onto a space: which decisions a block fixes, its tokens, and the genotype that a
cell of fewer blocks stands for.

A partial cell is a prefix of the space's choice indices (``space.to_choices`` order) covering its first b
blocks. ``complete(prefix)`` is the genotype evaluated for it: the evaluator (a table, a training run, a
proxy) only ever sees complete genotypes of the space.

- ``nodes`` (NAS-Bench-201): block j is node j with its j incoming edges, B = 3. A PNAS block computes a
  new hidden state as the sum of ops applied to earlier states (Sec. 3.1, combination by addition); NB201's
  node j is exactly that, over all earlier nodes, with 'none' for an input it does not use. The edges are
  already ordered node by node (1<-0 | 2<-0, 2<-1 | 3<-0, 3<-1, 3<-2), so block b's decisions follow block
  b-1's. A cell of b < 3 blocks outputs, as PNAS's cell does, its grown nodes that no other grown node reads
  (PNAS concatenates them; NB201's output node sums): the output node takes a skip connection from each,
  'none' from the cell's input and from nodes not yet grown, and a node not yet grown takes 'none' on its
  edges. That is a member of the space, scored by the table like any other. Leaving the output node without
  inputs instead (every edge not yet grown 'none') would make every cell of 1 or 2 blocks the same broken
  cell, and steps 1 and 2 would learn nothing.
- ``decisions`` (any space with a ``choice_shape``): each decision is a block with one input token (its
  position) and one op token, over the choices the decision has (``choice_sizes``); decisions not yet grown
  take choice 0 (our choice; on NAS-Bench-201, 'none').
"""

from __future__ import annotations

import itertools

from archsearch.errors import ConfigError, UnknownNameError
from archsearch.groundtruth.nb201_arch import EDGES, NUM_NODES, OPS

LAYOUTS = ("nodes", "decisions")


class Layout:
    """Blocks of a space with one choice per decision; subclasses say how a partial cell is completed."""

    def __init__(self, space, block_sizes: tuple[int, ...], block_inputs: tuple[tuple[int, ...], ...], inputs: int):
        self.space = space
        self.num_decisions, self.num_choices = space.choice_shape
        # decisions may have fewer choices than the widest (NASNet: block b picks from b + 2 inputs)
        sizes = space.choice_sizes() if hasattr(space, "choice_sizes") else None
        self.choice_sizes = list(sizes) if sizes is not None else [self.num_choices] * self.num_decisions
        self.block_sizes, self.block_inputs = block_sizes, block_inputs
        self.ends = tuple(itertools.accumulate(block_sizes))  # prefix length after each block
        self.inputs = inputs  # input tokens are 0..inputs-1, op tokens inputs..inputs+choices-1
        self.vocabulary = inputs + self.num_choices
        self.width = 2 * max(block_sizes)  # tokens of the widest block

    @property
    def depth(self) -> int:
        """B, the number of blocks of a complete cell."""
        return len(self.block_sizes)

    def expansions(self, prefix: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Every cell of one more block whose first blocks are ``prefix`` (PNAS's expand-cell)."""
        block = self.ends.index(len(prefix)) + 1 if prefix else 0
        start = self.ends[block] - self.block_sizes[block]
        choices = [range(self.choice_sizes[k]) for k in range(start, self.ends[block])]
        return [prefix + extra for extra in itertools.product(*choices)]

    def tokens(self, prefix: tuple[int, ...]) -> list[list[int]]:
        """Per block: its input tokens, then its op tokens (PNAS's I1, I2, O1, O2 order)."""
        blocks, start = [], 0
        for size, inputs in zip(self.block_sizes, self.block_inputs):
            if start >= len(prefix):
                break
            blocks.append(list(inputs) + [self.inputs + c for c in prefix[start: start + size]])
            start += size
        return blocks

    def prefix_of(self, genotype) -> tuple[int, ...]:
        """A complete genotype as the cell of B blocks (for results told without being asked)."""
        return tuple(self.space.to_choices(genotype))

    def complete(self, prefix: tuple[int, ...]):
        raise NotImplementedError


class NodeLayout(Layout):
    """NAS-Bench-201: block j = node j and its j incoming edges (see the module's docstring)."""

    def __init__(self, space):
        sizes = tuple(range(1, NUM_NODES))  # node j has j incoming edges
        super().__init__(space, sizes, tuple(tuple(range(j)) for j in sizes), inputs=NUM_NODES - 1)
        self.none, self.skip = OPS.index("none"), OPS.index("skip_connect")

    def complete(self, prefix):
        if len(prefix) == self.num_decisions:
            return self.space.from_choices(prefix)
        ops = {edge: (prefix[k] if k < len(prefix) else self.none) for k, edge in enumerate(EDGES)}
        grown = self.ends.index(len(prefix)) + 1  # nodes 1..grown have their edges
        output = NUM_NODES - 1
        for node in range(1, grown + 1):
            read = any(ops[(later, node)] != self.none for later in range(node + 1, grown + 1))
            ops[(output, node)] = self.none if read else self.skip
        return self.space.from_choices([ops[edge] for edge in EDGES])


class DecisionLayout(Layout):
    """Any space with a ``choice_shape``: one decision per block, the rest filled with choice 0."""

    def __init__(self, space):
        n = space.choice_shape[0]
        super().__init__(space, (1,) * n, tuple((k,) for k in range(n)), inputs=n)

    def complete(self, prefix):
        return self.space.from_choices(list(prefix) + [0] * (self.num_decisions - len(prefix)))


def make_layout(space, name: str | None):
    """The layout ``name`` of ``space``; None: ``nodes`` on NAS-Bench-201, ``decisions`` elsewhere."""
    from archsearch.spaces.nb201 import NB201Space

    if getattr(space, "choice_shape", None) is None:
        raise ConfigError(f"pnas grows cells one block at a time over one choice per decision; the space "
                          f"{getattr(space, 'name', space)!r} has no choice_shape (NAS-Bench-201 has)")
    if name is None:
        name = "nodes" if isinstance(space, NB201Space) else "decisions"
    if name not in LAYOUTS:
        raise UnknownNameError("pnas layout", name, LAYOUTS)
    if name == "nodes":
        if not isinstance(space, NB201Space):
            raise ConfigError(f"the pnas layout 'nodes' is NAS-Bench-201's; space {space.name!r} takes 'decisions'")
        return NodeLayout(space)
    return DecisionLayout(space)
