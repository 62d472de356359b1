"""NASNet-space genotypes: the type, the text format, and the published cells.

A cell has two input states, 0 = h_{i-2} and 1 = h_{i-1} (the outputs of the two previous cells, numbered
as quark0/darts numbers them), and B blocks whose outputs are states 2..B+1. Block b takes two edges,
each ``(op, input)`` with input in 0..b+1 (the same input may feed both, as in PNASNet-5's first
block), and combines their outputs by ``add`` or ``concat``. The cell output concatenates the states
listed in ``concat``.

Text format (quark0/darts' ``Genotype``, which lists NASNet and AmoebaNet in this form)::

    Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ...], normal_concat=[0, 2, 3, 4, 5, 6],
             reduce=[...], reduce_concat=[3, 4, 5, 6])

with ``normal_combine=['add', 'concat', ...]`` / ``reduce_combine=[...]`` only where a block concatenates.
It is read through Python's ``ast`` with only literals and ``range`` allowed; nothing is evaluated.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from archsearch.errors import InvalidGenotypeError, UnknownNameError, did_you_mean, shown
from archsearch.spaces.nasnet_ops import COMBINES, OPS

CELL_TYPES = ("normal", "reduce")
FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat", "normal_combine", "reduce_combine")
MAX_BLOCKS = 32  #: the most blocks a cell may have (NASNet's B is 5; beyond this nothing is meant)
MAX_TEXT = 20_000  #: the longest genotype text parsed

Edge = tuple[str, int]


def derived_concat(edges: tuple[Edge, ...]) -> tuple[int, ...]:
    """NASNet's output rule (Sec. 3): the block outputs that no block takes as an input, in order."""
    used = {source for _, source in edges}
    return tuple(s for s in range(2, len(edges) // 2 + 2) if s not in used)


@dataclass(frozen=True, eq=False)
class NasnetGenotype:
    """A normal and a reduction cell of B blocks each; ``*_combine`` defaults to ``add`` for every block.

    Equality and hash see an ``add`` block's two edges as a multiset (a sum does not depend on the order)
    and ``concat`` as a set (the order of the channels changes no network's function); ``to_string``
    keeps the order given.
    """

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    normal_combine: tuple[str, ...] | None = None
    reduce_combine: tuple[str, ...] | None = None

    def __post_init__(self):
        for cell in CELL_TYPES:
            edges = _checked_edges(cell, getattr(self, cell))
            object.__setattr__(self, cell, edges)
            blocks = len(edges) // 2
            object.__setattr__(self, f"{cell}_concat", _checked_concat(cell, getattr(self, f"{cell}_concat"), blocks))
            object.__setattr__(self, f"{cell}_combine", _checked_combine(cell, getattr(self, f"{cell}_combine"), blocks))
        if len(self.normal) != len(self.reduce):
            raise InvalidGenotypeError(f"the normal cell has {len(self.normal) // 2} blocks and the reduction cell "
                                       f"{len(self.reduce) // 2}; both cells of a genotype have the same B")

    @property
    def blocks(self) -> int:
        return len(self.normal) // 2

    def cell(self, cell: str) -> tuple[Edge, ...]:
        return getattr(self, cell)

    def concat(self, cell: str) -> tuple[int, ...]:
        return getattr(self, f"{cell}_concat")

    def combine(self, cell: str) -> tuple[str, ...]:
        return getattr(self, f"{cell}_combine")

    def _key(self):
        key = []
        for cell in CELL_TYPES:
            edges, combine = self.cell(cell), self.combine(cell)
            blocks = tuple((tuple(sorted(edges[2 * b: 2 * b + 2])) if combine[b] == "add" else edges[2 * b: 2 * b + 2],
                            combine[b]) for b in range(len(combine)))
            key.append((blocks, frozenset(self.concat(cell))))
        return tuple(key)

    def __eq__(self, other) -> bool:
        if not isinstance(other, NasnetGenotype):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return to_genotype_str(self)


def _checked_edges(cell: str, edges) -> tuple[Edge, ...]:
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
        raise InvalidGenotypeError(f"the {cell} cell must be a list of (op, input) pairs, got {shown(edges)}")
    edges = tuple(edges)
    if not edges or len(edges) % 2 or len(edges) > 2 * MAX_BLOCKS:
        raise InvalidGenotypeError(f"the {cell} cell has {len(edges)} edges; a NASNet cell has 2 (op, input) pairs "
                                   f"per block, 1 to {MAX_BLOCKS} blocks (B=5: 10 pairs)")
    out = []
    for i, edge in enumerate(edges):
        if not isinstance(edge, (tuple, list)) or len(edge) != 2:
            raise InvalidGenotypeError(f"edge {i} of the {cell} cell must be an (op, input) pair, got {shown(edge)}")
        op, source = edge
        if op not in OPS:
            raise InvalidGenotypeError(f"unknown NASNet op {shown(op)}{did_you_mean(str(op), OPS)} in edge {i} of "
                                       f"the {cell} cell (ops: {', '.join(OPS)})")
        block = i // 2
        if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source <= block + 1:
            raise InvalidGenotypeError(f"edge {i} of the {cell} cell feeds block {block} from state {shown(source)}; "
                                       f"that block may take states 0..{block + 1} (the two cell inputs and the "
                                       "blocks before it)")
        out.append((str(op), int(source)))
    return tuple(out)


def _checked_concat(cell: str, concat, blocks: int) -> tuple[int, ...]:
    if isinstance(concat, (str, bytes)) or not isinstance(concat, Iterable):
        raise InvalidGenotypeError(f"{cell}_concat must be a list of state indices, got {shown(concat)}")
    concat = tuple(concat)
    bad = [c for c in concat if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= blocks + 1]
    if not concat or bad or len(set(concat)) != len(concat):
        raise InvalidGenotypeError(f"{cell}_concat {shown(list(concat))} is not a non-empty list of distinct states "
                                   f"0..{blocks + 1} (0, 1: the cell inputs; 2..{blocks + 1}: the blocks)")
    return tuple(int(c) for c in concat)


def _checked_combine(cell: str, combine, blocks: int) -> tuple[str, ...]:
    if combine is None:
        return ("add",) * blocks
    if isinstance(combine, (str, bytes)) or not isinstance(combine, Iterable):
        raise InvalidGenotypeError(f"{cell}_combine must be a list of {blocks} of {COMBINES}, got {shown(combine)}")
    combine = tuple(combine)
    if len(combine) != blocks or any(c not in COMBINES for c in combine):
        raise InvalidGenotypeError(f"{cell}_combine {shown(list(combine))} must name one of {', '.join(COMBINES)} "
                                   f"for each of the cell's {blocks} blocks")
    return tuple(str(c) for c in combine)


# ---- text format ------------------------------------------------------------------------------
def to_genotype_str(genotype: NasnetGenotype) -> str:
    parts = []
    for cell in CELL_TYPES:
        parts.append(f"{cell}=[{', '.join(f'({op!r}, {source})' for op, source in genotype.cell(cell))}]")
        parts.append(f"{cell}_concat={list(genotype.concat(cell))}")
    for cell in CELL_TYPES:
        if any(c != "add" for c in genotype.combine(cell)):
            parts.append(f"{cell}_combine={list(genotype.combine(cell))}")
    return f"Genotype({', '.join(parts)})"


def _literal(node: ast.AST, field: str):
    """A literal, or ``range(a, b)`` of small integers."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if node.keywords or not 1 <= len(node.args) <= 3 or len(args) != len(node.args) \
                or not all(type(a) is int and abs(a) <= 10 * MAX_BLOCKS for a in args) or args[2:] == [0]:
            raise InvalidGenotypeError(f"bad NASNet genotype: {field} must be range(start, stop) of small integers")
        return list(range(*args))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidGenotypeError(f"bad NASNet genotype: {field} must be a literal list") from None


def parse_genotype_str(text: str) -> NasnetGenotype:
    """Parse the text format or a published name; raises InvalidGenotypeError with what was wrong."""
    if not isinstance(text, str):
        raise InvalidGenotypeError(f"a NASNet genotype is text (Genotype(...) or a published name), got {shown(text)}")
    stripped = text.strip()
    if stripped in PUBLISHED:
        return PUBLISHED[stripped]
    usage = ("expected Genotype(normal=[('op', input), ...], normal_concat=[...], reduce=[...], reduce_concat=[...]) "
             f"or a published name ({', '.join(PUBLISHED)})")
    if len(stripped) > MAX_TEXT:
        raise InvalidGenotypeError(f"a NASNet genotype string of {len(stripped):,} characters is too long "
                                   f"(at most {MAX_TEXT:,}): {usage}")
    hint = did_you_mean(stripped, PUBLISHED, cutoff=0.75)
    try:
        call = ast.parse(stripped, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        call = None
    if hint or isinstance(call, ast.Name):
        raise InvalidGenotypeError(f"unknown published NASNet genotype {shown(stripped)}{hint} ({usage})")
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise InvalidGenotypeError(f"bad NASNet genotype {shown(stripped)}: {usage}")
    if len(call.args) > 4:
        raise InvalidGenotypeError(f"bad NASNet genotype: {len(call.args)} positional fields, at most 4: {usage}")
    values = {field: _literal(node, field) for field, node in zip(FIELDS, call.args)}
    for keyword in call.keywords:
        if keyword.arg not in FIELDS:
            raise InvalidGenotypeError(f"bad NASNet genotype: unknown field {shown(keyword.arg)} "
                                       f"(fields: {', '.join(FIELDS)})")
        if keyword.arg in values:
            raise InvalidGenotypeError(f"bad NASNet genotype: field '{keyword.arg}' given twice")
        values[keyword.arg] = _literal(keyword.value, keyword.arg)
    missing = [f for f in FIELDS[:4] if f not in values]
    if missing:
        raise InvalidGenotypeError(f"bad NASNet genotype: missing field(s) {', '.join(missing)}; {usage}")
    return NasnetGenotype(**values)


# ---- published cells --------------------------------------------------------------------------
# The authors' code numbers a cell's states the other way round (0 = h_{i-1}, 1 = h_{i-2}) and lists which
# states are *used* (not concatenated); below, its inputs 0 and 1 are swapped and ``concat`` lists the states
# its ``used_hiddenstates`` marks 0. Its ``none`` op is identity (``skip_connect``), ``separable_kxk_2``
# is ``sep_conv_kxk``, ``1x7_7x1`` is ``conv_1x7_7x1``.

#: NASNet-A (Zoph et al. 2018, Fig. 4), tensorflow/models research/slim/nets/nasnet/nasnet_utils.py,
#: ``NasNetANormalCell`` / ``NasNetAReductionCell`` (lines 475-517; line numbers of the unchanged copy at
#: Max-Reger-Institut/MeasureDetector ff46218). The normal cell
#: also concatenates h_{i-2} (its ``used_hiddenstates`` [1, 0, 0, 0, 0, 0, 0]), the reduction cell block 3
#: although block 3 uses it; quark0/darts' genotypes.py transcription (``NASNet``) has [2..6] and [4, 5, 6].
NASNET_A = NasnetGenotype(
    normal=(("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
            ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
            ("sep_conv_3x3", 1), ("skip_connect", 1)),
    normal_concat=(0, 2, 3, 4, 5, 6),
    reduce=(("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
            ("avg_pool_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2),
            ("sep_conv_3x3", 2), ("max_pool_3x3", 1)),
    reduce_concat=(3, 4, 5, 6),
)
#: AmoebaNet-A (Real et al. 2019, Fig. 4), tensorflow/tpu models/official/amoeba_net/model_specs.py (7dc921f),
#: ``amoeba_net_a`` in ``get_normal_cell`` (lines 27-32) and ``get_reduction_cell`` (lines 59-65).
#: quark0/darts' ``AmoebaNet`` transcription differs (another reading of the paper's figure).
AMOEBANET_A = NasnetGenotype(
    normal=(("avg_pool_3x3", 1), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0),
            ("skip_connect", 1), ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 2),
            ("avg_pool_3x3", 5), ("sep_conv_3x3", 1)),
    normal_concat=(0, 3, 4, 6),
    reduce=(("sep_conv_3x3", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 1), ("sep_conv_7x7", 2),
            ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 4), ("conv_1x7_7x1", 1),
            ("avg_pool_3x3", 0), ("sep_conv_7x7", 1)),
    reduce_concat=(2, 3, 4, 5, 6),
)
_PNAS_CELL = (("sep_conv_5x5", 0), ("max_pool_3x3", 0), ("sep_conv_7x7", 1), ("max_pool_3x3", 1),
              ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
              ("sep_conv_3x3", 0), ("skip_connect", 1))
#: PNASNet-5 (Liu et al. 2018, Fig. 1): one cell, used with stride 2 as the reduction cell;
#: tensorflow/models research/slim/nets/nasnet/pnasnet.py ``PNasNetNormalCell`` (lines 263-275, the same copy)
PNASNET_5 = NasnetGenotype(normal=_PNAS_CELL, normal_concat=(2, 3, 4, 5, 6), reduce=_PNAS_CELL,
                           reduce_concat=(2, 3, 4, 5, 6))
#: the ENAS micro cell (Pham et al. 2018, Fig. 7), melodyguan/enas scripts/cifar10_micro_final.sh lines 5-6
#: (``fixed_arc``: per block x_id, x_op, y_id, y_op; ops 0-4 = sep 3x3, sep 5x5, avg 3x3, max 3x3,
#: identity, micro_child.py ``_fixed_layer``); inputs already numbered 0 = h_{i-2}; ``concat`` is every
#: unused state (``_fixed_combine``).
ENAS = NasnetGenotype(
    normal=(("avg_pool_3x3", 0), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_5x5", 0),
            ("skip_connect", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0),
            ("avg_pool_3x3", 0), ("sep_conv_5x5", 1)),
    normal_concat=(2, 3, 4, 5, 6),
    reduce=(("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("avg_pool_3x3", 0),
            ("sep_conv_5x5", 1), ("sep_conv_5x5", 3), ("sep_conv_3x3", 1), ("skip_connect", 0),
            ("max_pool_3x3", 0), ("sep_conv_5x5", 1)),
    reduce_concat=(2, 4, 5, 6),
)

PUBLISHED: dict[str, NasnetGenotype] = {
    "NASNET_A": NASNET_A, "AMOEBANET_A": AMOEBANET_A, "PNASNET_5": PNASNET_5, "ENAS": ENAS,
}
#: the CIFAR-10 networks the papers report for each cell: F filters, N cells per stage, the network's skeleton
#: (NASNet-A "6 @ 768": N=6, F=32, Table 1; AmoebaNet-A N=6, F=36, Table 2; PNASNet-5 N=3, F=48, Table 1;
#: ENAS: --child_num_layers=15 (N=5), --child_out_filters=36, cifar10_micro_final.sh)
PUBLISHED_SETTINGS: dict[str, dict] = {
    "NASNET_A": {"C": 32, "N": 6, "skeleton": "nasnet"},
    "AMOEBANET_A": {"C": 36, "N": 6, "skeleton": "nasnet"},
    "PNASNET_5": {"C": 48, "N": 3, "skeleton": "pnasnet"},
    "ENAS": {"C": 36, "N": 5, "skeleton": "enas"},
}
#: the parameters each paper reports for that network on CIFAR-10 (millions)
PUBLISHED_PARAMS_M = {"NASNET_A": 3.3, "AMOEBANET_A": 3.2, "PNASNET_5": 3.2, "ENAS": 4.6}


def published(name: str) -> NasnetGenotype:
    try:
        return PUBLISHED[name]
    except (KeyError, TypeError):
        raise UnknownNameError("published NASNet genotype", name, PUBLISHED) from None


def published_name(genotype: NasnetGenotype) -> str | None:
    """The name of a published genotype equal to ``genotype``, or None."""
    return next((name for name, g in PUBLISHED.items() if g == genotype), None)
