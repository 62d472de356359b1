"""ENAS' macro search space as text: the genotype type, its text format and the published architecture.

A genotype is L layers; layer l has one op and, for l >= 1, l skip bits. The bits follow the reference's
indexing (melodyguan/enas src/cifar10/general_child.py:458-465, ``prev_layers[i]`` for ``skip[i] == 1``,
with ``layers[0]`` the stem, general_child.py:197-201): bit i of layer l connects node i, where node 0
is the stem and node i >= 1 the output of layer i - 1. Layer l's input is node l (the previous layer),
so the previous layer is never a skip and layer 0 (input: the stem) has none.

Text: layers joined by " / ", each its op name followed, from layer 1 on, by its bits as one 0/1 word:
``conv_3x3 / sep_conv_5x5 0 / conv_3x3 10``. ``from_string`` also reads the reference's flat arc (its
``fixed_arc``: per layer the op index then the bits, general_child.py:702) and the published name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

from archsearch.errors import InvalidGenotypeError, shown

#: the branches of general_child.py's ``_enas_layer`` (whole channels, :268-293), in its index order
OPS = ("conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
#: the longest genotype the text format accepts (the reference's final network has 24 layers)
MAX_LAYERS = 128

_WORD = re.compile(r"[01]+")


@dataclass(frozen=True)
class MacroGenotype:
    """Per layer its op (from ``OPS``) and the skip bits of layers 1..L-1 (``skips[l - 1]`` has l bits)."""

    ops: tuple[str, ...]
    skips: tuple[tuple[int, ...], ...]

    def __post_init__(self):
        if not isinstance(self.ops, tuple) or not isinstance(self.skips, tuple):
            raise InvalidGenotypeError("a MacroGenotype holds tuples: ops and skips")
        if not 1 <= len(self.ops) <= MAX_LAYERS:
            raise InvalidGenotypeError(f"a macro genotype has 1..{MAX_LAYERS} layers, got {len(self.ops)}")
        for l, op in enumerate(self.ops):
            if op not in OPS:
                raise InvalidGenotypeError(f"layer {l}: unknown op {shown(op)} (ops: {', '.join(OPS)})")
        if len(self.skips) != len(self.ops) - 1:
            raise InvalidGenotypeError(f"{len(self.ops)} layers need {len(self.ops) - 1} skip rows, "
                                       f"got {len(self.skips)}")
        for l, bits in enumerate(self.skips, start=1):
            if (not isinstance(bits, tuple) or len(bits) != l
                    or any(isinstance(b, bool) or b not in (0, 1) for b in bits)):
                raise InvalidGenotypeError(f"layer {l} needs {l} skip bits (0 or 1), got {shown(bits)}")

    @property
    def layers(self) -> int:
        return len(self.ops)

    def inputs(self, layer: int) -> tuple[int, ...]:
        """The nodes layer ``layer`` takes as skips (0: the stem, i: layer i - 1's output)."""
        return () if layer == 0 else tuple(i for i, b in enumerate(self.skips[layer - 1]) if b)


def to_arc(genotype: MacroGenotype) -> list[int]:
    """The reference's flat arc: per layer the op index, then (from layer 1) its bits."""
    arc = []
    for l, op in enumerate(genotype.ops):
        arc.append(OPS.index(op))
        arc += list(genotype.skips[l - 1]) if l else []
    return arc


def layers_of_arc(length: int) -> int:
    """L from the length of a flat arc, L (L + 1) / 2; an InvalidGenotypeError where no L fits."""
    layers = int(round(((8 * length + 1) ** 0.5 - 1) / 2))
    if length < 1 or layers * (layers + 1) // 2 != length:
        raise InvalidGenotypeError(f"an arc of L layers has L(L+1)/2 numbers (1, 3, 6, 10, ...), got {length}")
    return layers


def from_arc(arc: Sequence[int]) -> MacroGenotype:
    """The genotype of a flat arc (see ``to_arc``)."""
    arc = list(arc)
    for k, v in enumerate(arc):
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise InvalidGenotypeError(f"arc entry {k} is {shown(v)}; entries are integers")
    layers = layers_of_arc(len(arc))
    if layers > MAX_LAYERS:
        raise InvalidGenotypeError(f"a macro genotype has 1..{MAX_LAYERS} layers, got {layers}")
    ops, skips, k = [], [], 0
    for l in range(layers):
        if not 0 <= arc[k] < len(OPS):
            raise InvalidGenotypeError(f"layer {l}: op index {arc[k]} is not in 0..{len(OPS) - 1}")
        ops.append(OPS[arc[k]])
        if l:
            skips.append(tuple(int(b) for b in arc[k + 1: k + 1 + l]))
        k += 1 + l
    return MacroGenotype(tuple(ops), tuple(skips))


def to_text(genotype: MacroGenotype) -> str:
    return " / ".join(op if l == 0 else f"{op} {''.join(map(str, genotype.skips[l - 1]))}"
                      for l, op in enumerate(genotype.ops))


def parse_text(text: str) -> MacroGenotype:
    """The text format, the reference's flat arc or a published name; an InvalidGenotypeError otherwise."""
    if not isinstance(text, str):
        raise InvalidGenotypeError(f"a macro genotype's text is a string, got {type(text).__name__}")
    stripped = text.strip()
    if stripped.upper() in PUBLISHED:
        return PUBLISHED[stripped.upper()]
    example = "e.g. 'conv_3x3 / sep_conv_5x5 0 / conv_3x3 10'"
    if not stripped:
        raise InvalidGenotypeError(f"an empty macro genotype: layers joined by ' / ', {example}")
    if "/" not in stripped and all(part.isdigit() and part.isascii() for part in stripped.split()):
        return from_arc([int(part) for part in stripped.split()])
    ops, skips = [], []
    for l, layer in enumerate(stripped.split("/")):
        parts = layer.split()
        if len(parts) != (1 if l == 0 else 2):
            raise InvalidGenotypeError(f"layer {l} of {shown(text)}: expected "
                                       f"{'an op' if l == 0 else 'an op and its skip bits'}, {example}")
        if parts[0] not in OPS:
            raise InvalidGenotypeError(f"layer {l}: unknown op {shown(parts[0])} (ops: {', '.join(OPS)})")
        ops.append(parts[0])
        if l:
            if not _WORD.fullmatch(parts[1]) or len(parts[1]) != l:
                raise InvalidGenotypeError(f"layer {l} needs {l} skip bits as one word of 0/1, got {shown(parts[1])}")
            skips.append(tuple(int(c) for c in parts[1]))
    if len(ops) > MAX_LAYERS:
        raise InvalidGenotypeError(f"a macro genotype has 1..{MAX_LAYERS} layers, got {len(ops)}")
    return MacroGenotype(tuple(ops), tuple(skips))


#: the architecture of the final macro network, scripts/cifar10_macro_final.sh:5-28 (24 layers)
ENAS_MACRO_ARC = (
    "0  3 0  0 1 0  2 0 0 1  2 0 0 0 0  3 1 1 0 1 0  2 0 0 0 0 0 1  2 0 1 1 0 1 1 1  1 0 1 1 1 0 1 0 1 "
    "0 0 0 0 0 0 0 0 0 0  2 0 0 0 0 0 1 0 0 0 0  0 1 0 0 1 1 0 0 0 0 1 1  2 0 1 0 0 0 0 0 1 0 1 1 0 "
    "1 0 0 1 0 0 0 1 1 1 0 1 0 1  0 1 1 0 1 0 1 0 0 0 0 0 1 0 0  2 0 0 1 0 0 0 0 0 0 0 1 0 1 0 1 "
    "2 0 1 0 0 0 1 0 0 1 1 1 1 0 0 1 0  2 0 0 0 0 1 0 1 0 1 0 0 1 0 1 0 0 1 "
    "3 0 1 1 0 1 0 0 0 0 0 1 0 1 0 1 0 0 0  3 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 1 "
    "0 1 0 0 1 0 1 1 0 0 0 1 0 0 0 0 0 1 1 0 0  3 0 1 0 1 1 0 0 1 0 1 1 0 1 1 0 1 0 0 1 0 0 "
    "0 1 0 1 0 1 0 0 0 0 0 0 0 0 1 0 1 0 0 1 0 0 0  0 1 1 0 0 0 1 1 1 0 1 0 0 0 1 0 1 0 0 1 1 0 0 0"
)
PUBLISHED: dict[str, MacroGenotype] = {"ENAS_MACRO": from_arc([int(v) for v in ENAS_MACRO_ARC.split()])}


__all__ = ["MAX_LAYERS", "OPS", "PUBLISHED", "MacroGenotype", "from_arc", "layers_of_arc", "parse_text", "to_arc",
           "to_text"]
