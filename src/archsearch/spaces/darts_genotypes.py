"""DARTS CNN genotypes: the type, the text format papers print, and the published cells.

A cell has 2 input nodes (the outputs of the two previous cells, indices 0 and 1) and 4
intermediate nodes (indices 2..5). Intermediate node k (0-based, k = 0..3) takes exactly 2 edges,
each ``(op, input)`` with input in 0..k+1; the cell output concatenates the nodes in ``concat``.

Text format (``str(quark0/darts Genotype)``)::

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

``range(2, 6)`` is accepted for a concat. The text is read through Python's ``ast`` with only
literals and ``range`` allowed; nothing is evaluated.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from archsearch.errors import InvalidGenotypeError, UnknownNameError, did_you_mean, shown
from archsearch.spaces.darts_ops import OPS

STEPS = 4  #: intermediate nodes per cell (DARTS, Sec. 3.1)
EDGES_PER_NODE = 2  #: incoming edges kept per intermediate node
FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
CELL_TYPES = ("normal", "reduce")
#: the longest genotype text parsed (a printed genotype takes about 400 characters)
MAX_TEXT = 10_000
#: the longest concat a range may spell out
MAX_CONCAT = STEPS

Edge = tuple[str, int]


def node_inputs(node: int) -> range:
    """Allowed inputs of intermediate node ``node`` (0-based): both cell inputs and the earlier nodes."""
    return range(node + 2)


def edge_rows(steps: int = STEPS) -> list[tuple[int, int]]:
    """(intermediate node, input) of each architecture-parameter row, in row order."""
    return [(node, source) for node in range(steps) for source in node_inputs(node)]


EDGE_ROWS = edge_rows()
ROW_OF = {edge: row for row, edge in enumerate(EDGE_ROWS)}


@dataclass(frozen=True, eq=False)
class DartsGenotype:
    """A normal and a reduction cell; 8 ``(op, input)`` edges each, listed node by node.

    Equality and hash see each node's two edges as a set: listing them in the other order
    describes the same network (the node sums them), so both orders compare equal, while
    ``to_string`` keeps the order given. Use ``canonical()`` for the order the space generates
    (the edges of each node sorted by input).
    """

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self):
        for cell in CELL_TYPES:
            object.__setattr__(self, cell, _checked_edges(cell, getattr(self, cell)))
            object.__setattr__(self, f"{cell}_concat", _checked_concat(cell, getattr(self, f"{cell}_concat")))

    def _key(self):
        return tuple(
            (_node_sets(getattr(self, cell)), getattr(self, f"{cell}_concat")) for cell in CELL_TYPES
        )

    def __eq__(self, other) -> bool:
        if not isinstance(other, DartsGenotype):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return to_genotype_str(self)

    def canonical(self) -> DartsGenotype:
        """The same genotype with each node's edges ordered by input."""
        return DartsGenotype(
            _sorted_nodes(self.normal), self.normal_concat, _sorted_nodes(self.reduce), self.reduce_concat
        )

    def cell(self, cell: str) -> tuple[Edge, ...]:
        return getattr(self, cell)

    def concat(self, cell: str) -> tuple[int, ...]:
        return getattr(self, f"{cell}_concat")


def _node_sets(edges: tuple[Edge, ...]) -> tuple[frozenset, ...]:
    return tuple(frozenset(edges[2 * k: 2 * k + 2]) for k in range(STEPS))


def _sorted_nodes(edges: tuple[Edge, ...]) -> tuple[Edge, ...]:
    return tuple(e for k in range(STEPS) for e in sorted(edges[2 * k: 2 * k + 2], key=lambda e: (e[1], e[0])))


def _checked_edges(cell: str, edges) -> tuple[Edge, ...]:
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
        raise InvalidGenotypeError(f"the {cell} cell must be a list of (op, input) pairs, got {shown(edges)}")
    edges = tuple(edges)
    want = STEPS * EDGES_PER_NODE
    if len(edges) != want:
        raise InvalidGenotypeError(
            f"the {cell} cell has {len(edges)} edges; a DARTS cell needs {want} "
            f"({EDGES_PER_NODE} (op, input) pairs for each of its {STEPS} intermediate nodes)"
        )
    out = []
    for i, edge in enumerate(edges):
        node = i // EDGES_PER_NODE
        if not isinstance(edge, (tuple, list)) or len(edge) != 2:
            raise InvalidGenotypeError(f"edge {i} of the {cell} cell must be an (op, input) pair, got {shown(edge)}")
        op, source = edge
        if op not in OPS:
            raise InvalidGenotypeError(
                f"unknown DARTS op {shown(op)} in edge {i} of the {cell} cell (valid ops: {', '.join(OPS)})"
            )
        allowed = node_inputs(node)
        if isinstance(source, bool) or not isinstance(source, int) or source not in allowed:
            raise InvalidGenotypeError(
                f"edge {i} of the {cell} cell feeds intermediate node {node} (node {node + 2} of the cell) "
                f"from input {shown(source)}; that node may only take inputs {allowed.start}..{allowed.stop - 1}"
            )
        out.append((str(op), int(source)))
    for node in range(STEPS):
        (_, a), (_, b) = out[2 * node: 2 * node + 2]
        if a == b:
            raise InvalidGenotypeError(
                f"intermediate node {node} of the {cell} cell takes input {a} twice; "
                "the two edges of a node must come from distinct inputs"
            )
    return tuple(out)


def _checked_concat(cell: str, concat) -> tuple[int, ...]:
    valid = range(2, STEPS + 2)
    if isinstance(concat, (str, bytes)) or not isinstance(concat, Iterable):
        raise InvalidGenotypeError(f"{cell}_concat must be a list of node indices, got {shown(concat)}")
    concat = tuple(concat)
    bad = [c for c in concat if isinstance(c, bool) or not isinstance(c, int) or c not in valid]
    if not concat or bad or len(set(concat)) != len(concat):
        raise InvalidGenotypeError(
            f"{cell}_concat {shown(list(concat))} is not a non-empty list of distinct intermediate nodes "
            f"{valid.start}..{valid.stop - 1} (the DARTS cell concatenates [2, 3, 4, 5])"
        )
    return tuple(int(c) for c in concat)


def keep_edges(genotype: DartsGenotype, rows: dict[str, Collection[int]]) -> DartsGenotype:
    """FairDARTS' sparse cell: the edges of ``genotype`` whose alpha row (``ROW_OF``) is not in ``rows[cell]``
    become ``none``; so does every edge leaving a node that is left without input, and each concat keeps the
    nodes that still have an input (all of them where none has: a cell of zeros, which no search reports).

    The reference's sparse cell holds only the kept edges, with fewer than 2 inputs on some nodes, ignores
    an edge from an isolated node and concatenates the nodes that have inputs (xiaomi-automl/FairDARTS
    ``fairdarts/model.py:76-117``, DCOCell: ``if from_i not in states: continue``; multiplier = nodes with
    ops); ``none`` edges give that network here, where every node lists 2 edges.
    """
    cells = {}
    for cell in CELL_TYPES:
        live, edges = {0, 1}, []
        for i, (op, source) in enumerate(genotype.cell(cell)):
            node = i // EDGES_PER_NODE
            keep = op != "none" and source in live and ROW_OF[(node, source)] in rows[cell]
            edges.append((op if keep else "none", source))
            if keep:
                live.add(node + 2)
        concat = tuple(n for n in genotype.concat(cell) if n in live) or genotype.concat(cell)
        cells[cell] = (tuple(edges), concat)
    return DartsGenotype(*cells["normal"], *cells["reduce"])


# ---- text format ------------------------------------------------------------------------------
def to_genotype_str(genotype: DartsGenotype) -> str:
    """``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])`` as papers print it."""
    parts = []
    for cell in CELL_TYPES:
        edges = ", ".join(f"({op!r}, {source})" for op, source in genotype.cell(cell))
        parts.append(f"{cell}=[{edges}]")
        parts.append(f"{cell}_concat={list(genotype.concat(cell))}")
    return f"Genotype({', '.join(parts)})"


def _literal(node: ast.AST, field: str, text: str):
    """A literal list/tuple, or ``range(a, b)`` with integer literals, from the syntax tree."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            args = None
        if node.keywords or not args or len(args) > 3 or not all(type(a) is int for a in args) or args[2:] == [0]:
            raise InvalidGenotypeError(f"bad DARTS genotype: {field} must be range(start, stop) of integers")
        values = range(*args)
        if len(values[: MAX_CONCAT + 1]) > MAX_CONCAT:  # sliced: len() of range(10**30) overflows, list() never ends
            raise InvalidGenotypeError(f"bad DARTS genotype: {field} {shown(values)} is longer than a cell has nodes")
        return list(values)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # e.g. {[1]}: an unhashable set item
        segment = ast.get_source_segment(text, node)
        raise InvalidGenotypeError(f"bad DARTS genotype: {field} must be a literal list, got {shown(segment)}") from None


def parse_genotype_str(text: str) -> DartsGenotype:
    """Parse the text format (see the module docstring); raises InvalidGenotypeError with what was wrong."""
    if not isinstance(text, str):
        raise InvalidGenotypeError(f"a DARTS genotype is text (Genotype(...) or a published name), got {shown(text)}")
    stripped = text.strip()
    if stripped in PUBLISHED:
        return PUBLISHED[stripped]
    usage = ("expected Genotype(normal=[('op', input), ...], normal_concat=[2, 3, 4, 5], "
             "reduce=[...], reduce_concat=[2, 3, 4, 5]) or a published name "
             f"({', '.join(PUBLISHED)})")
    if len(stripped) > MAX_TEXT:  # the parser's memory grows with the text: refuse what no genotype needs
        raise InvalidGenotypeError(f"a DARTS genotype string of {len(stripped):,} characters is too long "
                                   f"(at most {MAX_TEXT:,}): {usage}")
    # a stricter cutoff than the default: a mistyped Genotype(...) must not read as a misspelt published name
    hint = did_you_mean(stripped, PUBLISHED, cutoff=0.75)
    try:
        tree = ast.parse(stripped, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as err:
        reason = (getattr(err, "msg", None) or type(err).__name__).splitlines()[0][:80]
        if hint:
            raise InvalidGenotypeError(f"unknown published DARTS genotype {shown(stripped)}{hint} ({usage})") from None
        raise InvalidGenotypeError(f"bad DARTS genotype syntax ({reason}): {usage}") from None
    call = tree.body
    if isinstance(call, ast.Name) or hint:
        raise InvalidGenotypeError(f"unknown published DARTS genotype {shown(stripped)}{hint} ({usage})")
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise InvalidGenotypeError(f"bad DARTS genotype {shown(stripped)}: {usage}")
    if len(call.args) > len(FIELDS):
        raise InvalidGenotypeError(f"bad DARTS genotype: {len(call.args)} positional fields, at most 4: {usage}")
    values = {}
    for field, node in zip(FIELDS, call.args):
        values[field] = _literal(node, field, stripped)
    for keyword in call.keywords:
        if keyword.arg not in FIELDS:
            raise InvalidGenotypeError(f"bad DARTS genotype: unknown field {shown(keyword.arg)}; {usage}")
        if keyword.arg in values:
            raise InvalidGenotypeError(f"bad DARTS genotype: field '{keyword.arg}' given twice")
        values[keyword.arg] = _literal(keyword.value, keyword.arg, stripped)
    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise InvalidGenotypeError(f"bad DARTS genotype: missing field(s) {', '.join(missing)}; {usage}")
    return DartsGenotype(**values)


# ---- published cells --------------------------------------------------------------------------
def _g(normal, reduce, concat=(2, 3, 4, 5)) -> DartsGenotype:
    return DartsGenotype(tuple(normal), tuple(concat), tuple(reduce), tuple(concat))


#: DARTS (first order), quark0/darts cnn/genotypes.py; 3.3M params on CIFAR-10 (Liu et al., Table 1)
DARTS_V1 = _g(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
)
#: DARTS (second order), quark0/darts cnn/genotypes.py; 3.3M params, 2.76% CIFAR-10 error
DARTS_V2 = _g(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)
#: PC-DARTS on CIFAR-10 (Xu et al., ICLR 2020), yuhuixu1993/PC-DARTS genotypes.py ``PC_DARTS_cifar``; 3.6M
PC_DARTS = _g(
    normal=[("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
            ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
    reduce=[("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
)
#: P-DARTS on CIFAR-10 (Chen et al., ICCV 2019), chenxin061/pdarts genotypes.py ``PDARTS``; 3.4M
PDARTS = _g(
    normal=[("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4)],
    reduce=[("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
            ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3)],
)
#: GDAS on CIFAR-10 (Dong & Yang, CVPR 2019), the authors' ``GDAS_V1`` (D-X-Y/NAS-Projects); 3.4M
GDAS = _g(
    normal=[("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 3), ("skip_connect", 0), ("sep_conv_5x5", 4), ("sep_conv_3x3", 3)],
    reduce=[("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 2), ("sep_conv_5x5", 1),
            ("dil_conv_5x5", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_5x5", 1)],
)

PUBLISHED: dict[str, DartsGenotype] = {
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "PC_DARTS": PC_DARTS,
    "PDARTS": PDARTS,
    "GDAS": GDAS,
    "DARTS": DARTS_V2,  # quark0/darts' default ``--arch DARTS`` is the second-order cell
}


def published(name: str) -> DartsGenotype:
    """A published cell by name (DARTS_V1, DARTS_V2, PC_DARTS, PDARTS, GDAS; DARTS = DARTS_V2)."""
    try:
        return PUBLISHED[name]
    except (KeyError, TypeError):
        raise UnknownNameError("published DARTS genotype", name, PUBLISHED) from None
