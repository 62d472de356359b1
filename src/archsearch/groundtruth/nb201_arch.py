"""The NAS-Bench-201 cell as text: op names, edges, genotypes and the benchmark's arch strings.

Pure text (no numpy, no torch), so that the ground-truth table can parse and validate what it is asked
for, and the search space (spaces/nb201.py) builds on the same genotype.
The 6 edges, in the benchmark's (lexicographically sorted) order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from archsearch.errors import InvalidGenotypeError, shown

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (target node, source node) of each edge, in alpha-row order
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@dataclass(frozen=True)
class NB201Genotype:
    """One op per edge, in EDGES order."""

    ops: tuple[str, ...]

    def __post_init__(self):
        if isinstance(self.ops, (str, bytes)) or not isinstance(self.ops, Iterable):
            raise InvalidGenotypeError(f"a NAS-Bench-201 genotype takes a sequence of {len(EDGES)} op names, "
                                       f"got {shown(self.ops)}")
        ops = tuple(self.ops)
        object.__setattr__(self, "ops", ops)
        if len(ops) != len(EDGES):
            raise InvalidGenotypeError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(ops)} ops")
        for op in ops:
            if not isinstance(op, str) or op not in OPS:
                raise InvalidGenotypeError(f"unknown NAS-Bench-201 op {shown(op)} (ops: {', '.join(OPS)})")

    def __str__(self) -> str:
        return to_arch_str(self)


def to_arch_str(genotype: NB201Genotype) -> str:
    nodes, k = [], 0
    for target in range(1, NUM_NODES):
        nodes.append("|" + "|".join(f"{genotype.ops[k + j]}~{j}" for j in range(target)) + "|")
        k += target
    return "+".join(nodes)


def parse_arch_str(text: str) -> NB201Genotype:
    """Parse the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    if not isinstance(text, str):
        raise InvalidGenotypeError(f"a NAS-Bench-201 arch string is text such as '{EXAMPLE}', got {shown(text)}")
    text = text.strip()
    bad = f"bad NAS-Bench-201 string {shown(text)}"
    nodes = text.split("+", NUM_NODES - 1)  # bounded: a string of a million '+' is refused as fast
    if len(nodes) != NUM_NODES - 1:
        got = len(nodes) if len(nodes) < NUM_NODES - 1 else f"more than {NUM_NODES - 1}"
        raise InvalidGenotypeError(f"{bad}: expected 3 nodes separated by '+', got {got} (e.g. '{EXAMPLE}')")
    ops = []
    for target, node in enumerate(nodes, start=1):
        if not (len(node) > 1 and node.startswith("|") and node.endswith("|")):
            raise InvalidGenotypeError(f"{bad}: node {shown(node)} must be '|op~j|...|'")
        edges = node[1:-1].split("|", target)
        if len(edges) != target:
            got = len(edges) if len(edges) <= target else f"more than {target}"
            raise InvalidGenotypeError(f"{bad}: node {target} needs {target} incoming edges, got {got}")
        for source, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep or src != str(source):
                raise InvalidGenotypeError(f"{bad}: edge {shown(edge)} of node {target} must be 'op~{source}'")
            ops.append(op)
    return NB201Genotype(tuple(ops))
