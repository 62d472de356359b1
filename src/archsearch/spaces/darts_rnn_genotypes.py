"""DARTS recurrent-cell genotypes: the type, the text format and the published cells.

A cell has one input state ``s0`` (from x_t and h_{t-1}, state 0) and intermediate nodes 1..steps; node k
(1-based) takes one earlier state ``j`` in 0..k-1 through one activation. The cell's output is the mean of
the states in ``concat`` (quark0/darts ``rnn/model.py:71-88``). The DARTS space has 8 nodes, all averaged.

Text format (``str(quark0/darts rnn Genotype)``)::

    Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ...], concat=range(1, 9))

A concat is a list of state indices or ``range(a, b)``. The text is read through Python's ``ast`` with only
literals and ``range`` allowed; nothing is evaluated.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from archsearch.errors import InvalidGenotypeError, UnknownNameError, did_you_mean, shown

#: candidate ops in alpha-column order (quark0/darts rnn/genotypes.py:5-11)
OPS = ("none", "tanh", "relu", "sigmoid", "identity")
#: the ops a genotype may hold: a node always has an input, so ``none`` is only a supernet's column
ACTIVATIONS = OPS[1:]
STEPS = 8  #: intermediate nodes of the DARTS cell (rnn/genotypes.py:12; DARTS paper Sec. 2.1)
#: the most nodes a parsed genotype may have (the published ones have 8 and 11)
MAX_STEPS = 64
MAX_TEXT = 10_000
FIELDS = ("recurrent", "concat")

Edge = tuple[str, int]


def edge_rows(steps: int = STEPS) -> list[tuple[int, int]]:
    """(node, input state) of each alpha row: node k (1-based) has rows for states 0..k-1 (36 rows for 8)."""
    return [(node, source) for node in range(1, steps + 1) for source in range(node)]


EDGE_ROWS = edge_rows()
ROW_OF = {edge: row for row, edge in enumerate(EDGE_ROWS)}


@dataclass(frozen=True)
class DartsRnnGenotype:
    """``recurrent``: per node (in order) its ``(activation, input state)``; ``concat``: the states averaged."""

    recurrent: tuple[Edge, ...]
    concat: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "recurrent", _checked_edges(self.recurrent))
        object.__setattr__(self, "concat", _checked_concat(self.concat, len(self.recurrent)))

    @property
    def steps(self) -> int:
        return len(self.recurrent)

    def __str__(self) -> str:
        return to_genotype_str(self)


def _checked_edges(edges) -> tuple[Edge, ...]:
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
        raise InvalidGenotypeError(f"recurrent must be a list of (activation, input) pairs, got {shown(edges)}")
    edges = tuple(edges)
    if not 1 <= len(edges) <= MAX_STEPS:
        raise InvalidGenotypeError(f"a recurrent cell has 1..{MAX_STEPS} nodes, got {len(edges)}")
    out = []
    for i, edge in enumerate(edges):
        if not isinstance(edge, (tuple, list)) or len(edge) != 2:
            raise InvalidGenotypeError(f"node {i + 1} must be an (activation, input) pair, got {shown(edge)}")
        op, source = edge
        if op not in ACTIVATIONS:
            hint = did_you_mean(op, ACTIVATIONS) if isinstance(op, str) else ""
            raise InvalidGenotypeError(f"node {i + 1} has op {shown(op)}{hint}; a recurrent node's op is one of "
                                       f"{', '.join(ACTIVATIONS)}")
        if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source <= i:
            raise InvalidGenotypeError(f"node {i + 1} takes state {shown(source)}; it may only take states 0..{i}")
        out.append((str(op), int(source)))
    return tuple(out)


def _checked_concat(concat, steps: int) -> tuple[int, ...]:
    if isinstance(concat, (str, bytes)) or not isinstance(concat, Iterable):
        raise InvalidGenotypeError(f"concat must be a list of state indices, got {shown(concat)}")
    concat = tuple(concat)
    bad = [c for c in concat if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= steps]
    if not concat or bad or list(concat) != sorted(set(concat)):
        raise InvalidGenotypeError(f"concat {shown(list(concat))} is not an increasing, non-empty list of states "
                                   f"0..{steps} (the DARTS cell averages range(1, {steps + 1}))")
    return tuple(int(c) for c in concat)


# ---- text format ------------------------------------------------------------------------------
def to_genotype_str(genotype: DartsRnnGenotype) -> str:
    """``Genotype(recurrent=[...], concat=range(1, 9))`` as quark0/darts prints it; a concat other than
    every node is a list."""
    edges = ", ".join(f"({op!r}, {source})" for op, source in genotype.recurrent)
    every = tuple(range(1, genotype.steps + 1))
    concat = f"range(1, {genotype.steps + 1})" if genotype.concat == every else str(list(genotype.concat))
    return f"Genotype(recurrent=[{edges}], concat={concat})"


def _literal(node: ast.AST, field: str, text: str):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            args = None
        if node.keywords or not args or len(args) > 3 or not all(type(a) is int for a in args) or args[2:] == [0]:
            raise InvalidGenotypeError(f"bad recurrent genotype: {field} must be range(start, stop) of integers")
        values = range(*args)
        if len(values[: MAX_STEPS + 2]) > MAX_STEPS + 1:  # sliced: len() of range(10**30) overflows
            raise InvalidGenotypeError(f"bad recurrent genotype: {field} {shown(values)} is longer than a cell")
        return list(values)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        segment = ast.get_source_segment(text, node)
        raise InvalidGenotypeError(f"bad recurrent genotype: {field} must be a literal list, "
                                   f"got {shown(segment)}") from None


def parse_genotype_str(text: str) -> DartsRnnGenotype:
    """Parse the text format or a published name; raises InvalidGenotypeError with what was wrong."""
    if not isinstance(text, str):
        raise InvalidGenotypeError(f"a recurrent genotype is text (Genotype(...) or a published name), "
                                   f"got {shown(text)}")
    stripped = text.strip()
    if stripped in PUBLISHED:
        return PUBLISHED[stripped]
    usage = ("expected Genotype(recurrent=[('tanh', 0), ...], concat=range(1, 9)) or a published name "
             f"({', '.join(PUBLISHED)})")
    if len(stripped) > MAX_TEXT:
        raise InvalidGenotypeError(f"a recurrent genotype string of {len(stripped):,} characters is too long "
                                   f"(at most {MAX_TEXT:,}): {usage}")
    hint = did_you_mean(stripped, PUBLISHED, cutoff=0.75)
    try:
        tree = ast.parse(stripped, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as err:
        reason = (getattr(err, "msg", None) or type(err).__name__).splitlines()[0][:80]
        if hint:
            raise InvalidGenotypeError(f"unknown published recurrent genotype {shown(stripped)}{hint}") from None
        raise InvalidGenotypeError(f"bad recurrent genotype syntax ({reason}): {usage}") from None
    call = tree.body
    if isinstance(call, ast.Name) or hint:
        raise InvalidGenotypeError(f"unknown published recurrent genotype {shown(stripped)}{hint} ({usage})")
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise InvalidGenotypeError(f"bad recurrent genotype {shown(stripped)}: {usage}")
    if len(call.args) > len(FIELDS):
        raise InvalidGenotypeError(f"bad recurrent genotype: {len(call.args)} positional fields, at most 2: {usage}")
    values = {field: _literal(node, field, stripped) for field, node in zip(FIELDS, call.args)}
    for keyword in call.keywords:
        if keyword.arg not in FIELDS:
            raise InvalidGenotypeError(f"bad recurrent genotype: unknown field {shown(keyword.arg)}; {usage}")
        if keyword.arg in values:
            raise InvalidGenotypeError(f"bad recurrent genotype: field '{keyword.arg}' given twice")
        values[keyword.arg] = _literal(keyword.value, keyword.arg, stripped)
    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise InvalidGenotypeError(f"bad recurrent genotype: missing field(s) {', '.join(missing)}; {usage}")
    return DartsRnnGenotype(**values)


# ---- published cells (quark0/darts rnn/genotypes.py) -------------------------------------------
#: ENAS' recurrent cell as DARTS transcribes it (rnn/genotypes.py:15-30): 11 nodes, 6 of them averaged.
#: It is not a member of the 8-node DARTS space; it trains as DARTS trains it (rnn/model.py takes
#: ``len(genotype.recurrent)`` nodes) and its numbers index states 0..11 as DARTS' do.
ENAS = DartsRnnGenotype(
    recurrent=(("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3), ("relu", 4),
               ("relu", 7), ("relu", 8), ("relu", 8), ("relu", 8)),
    concat=(2, 5, 6, 9, 10, 11),
)
#: DARTS first order (rnn/genotypes.py:32); 57.6 test perplexity on PTB, 23M params (DARTS paper, Table 2)
DARTS_V1 = DartsRnnGenotype(
    recurrent=(("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1), ("relu", 5),
               ("relu", 1)),
    concat=tuple(range(1, 9)),
)
#: DARTS second order (rnn/genotypes.py:33); 55.7 test perplexity, 23M params (Table 2)
DARTS_V2 = DartsRnnGenotype(
    recurrent=(("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2), ("sigmoid", 5),
               ("tanh", 3), ("relu", 5)),
    concat=tuple(range(1, 9)),
)

PUBLISHED: dict[str, DartsRnnGenotype] = {
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "ENAS": ENAS,
    "DARTS": DARTS_V2,  # rnn/genotypes.py:35
}


def published(name: str) -> DartsRnnGenotype:
    """A published cell by name (DARTS_V1, DARTS_V2, ENAS; DARTS = DARTS_V2)."""
    try:
        return PUBLISHED[name]
    except (KeyError, TypeError):
        raise UnknownNameError("published recurrent genotype", name, PUBLISHED) from None
