"""Architecture strings of both spaces, grammar-built and then mutated; each mutation knows its verdict.

NAS-Bench-201: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node i takes one edge from each node j < i), or, for
``nb201 query`` only, the benchmark index 0..15624. DARTS: a published name, or
``Genotype(normal=[(op, input), ...8 edges], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[...])``
where intermediate node k (0..3) takes two edges from inputs 0..k+1.
"""

from __future__ import annotations

import random

from .oracle import DARTS_OPS, DARTS_PUBLISHED, EITHER, INVALID, NB201_OPS, NB201_SIZE, OK, Verdict

LOOKALIKES = {"|": "｜", "~": "∼", "o": "о", "c": "с", "_": "‗", "3": "３", "(": "（", ",": "，"}
SURROGATE = "\udcff\udcfe"  # what Python makes of a command line that is not UTF-8


def typo(rng: random.Random, name: str) -> str:
    """A near miss of a name: never the name itself."""
    kinds = [lambda s: s[:-1], lambda s: s + "x", lambda s: s.upper(), lambda s: s.replace("_", "-"),
             lambda s: s[1:] + s[0], lambda s: s.replace("o", "о"), lambda s: s + " ", lambda s: " " + s,
             lambda s: s + SURROGATE, lambda s: s * 2]
    out = rng.choice(kinds)(name)
    return out if out != name else name + "_"


# -- NAS-Bench-201 --------------------------------------------------------------------------------
def nb201_string(ops, sources=None) -> str:
    nodes, k = [], 0
    for target in range(1, 4):
        nodes.append("|" + "|".join(f"{ops[k + j]}~{(sources or {}).get(k + j, j)}" for j in range(target)) + "|")
        k += target
    return "+".join(nodes)


def nb201_random(rng: random.Random) -> str:
    return nb201_string([rng.choice(NB201_OPS) for _ in range(6)])


def nb201_arch(rng: random.Random, index_ok: bool = False) -> tuple[str, Verdict]:
    """A NAS-Bench-201 architecture text; ``index_ok``: the command also takes the benchmark index."""
    ops = [rng.choice(NB201_OPS) for _ in range(6)]
    good = nb201_string(ops)
    kind = rng.choice(["valid", "valid", "valid", "index", "op", "source", "truncate", "nodes", "edges",
                       "outer space", "inner space", "separator", "empty", "huge", "darts", "surrogate",
                       "lookalike", "order", "float index", "bool index"])
    idx_verdict = OK if index_ok else Verdict(EITHER, "a benchmark index where an arch string is documented")
    if kind == "valid":
        return good, OK
    if kind == "index":
        n = rng.choice([0, 1835, 6111, NB201_SIZE - 1, NB201_SIZE, -1, 10**30, 2**63])
        if 0 <= n < NB201_SIZE:
            return str(n), idx_verdict
        return str(n), Verdict(INVALID, f"index {n} outside 0..{NB201_SIZE - 1}")
    if kind == "float index":
        return rng.choice(["3.0", "1e3", "0x10", "+5", " 7 ", "٣", "1_000"]), Verdict(EITHER, "an index in an odd spelling")
    if kind == "bool index":
        return rng.choice(["true", "True", "-0", ""]), Verdict(INVALID, "not an architecture or index")
    if kind == "op":
        k = rng.randrange(6)
        darts_only = [op for op in DARTS_OPS if op not in NB201_OPS]  # avg_pool_3x3 and skip_connect are both's
        ops[k] = rng.choice([typo(rng, ops[k]), rng.choice(darts_only), "", "conv9", "none none", "0"])
        return nb201_string(ops), Verdict(INVALID, "unknown op")
    if kind == "source":
        k = rng.randrange(6)
        wrong = rng.choice(["-1", "3", "4", str(10**30), "x", "", "0.0", " 0"])
        text = nb201_string(ops, {k: wrong})
        return (text, OK) if text == good else (text, Verdict(INVALID, "wrong source node"))
    if kind == "truncate":
        return good[: rng.randrange(len(good))], Verdict(INVALID, "truncated")
    if kind == "nodes":
        nodes = good.split("+")
        nodes = nodes[:-1] if rng.random() < 0.5 else nodes + [nodes[-1]]
        return "+".join(nodes), Verdict(INVALID, "wrong number of nodes")
    if kind == "edges":
        nodes = good.split("+")
        i = rng.randrange(3)
        nodes[i] = nodes[i][: nodes[i].rfind("|", 0, len(nodes[i]) - 1) + 1] if rng.random() < 0.5 else \
            nodes[i] + f"{rng.choice(NB201_OPS)}~{i + 1}|"
        return "+".join(nodes), Verdict(INVALID, "wrong number of edges")
    if kind == "outer space":
        return rng.choice([" ", "\t", "\n"]) + good + " ", Verdict(EITHER, "surrounding white space")
    if kind == "inner space":
        at = rng.randrange(1, len(good))
        return good[:at] + " " + good[at:], Verdict(INVALID, "white space inside")
    if kind == "separator":
        return good.replace("+", rng.choice(["|", ",", "++", " + ", ""]), 1), Verdict(INVALID, "bad separator")
    if kind == "empty":
        return rng.choice(["", "|", "+", "||+||+||", "~"]), Verdict(INVALID, "empty")
    if kind == "huge":
        return "+".join([good] * rng.choice([100, 10000])), Verdict(INVALID, "far too long")
    if kind == "darts":
        return rng.choice(DARTS_PUBLISHED), Verdict(INVALID, "a DARTS cell given to NAS-Bench-201")
    if kind == "surrogate":
        at = rng.randrange(len(good))
        return good[:at] + SURROGATE + good[at:], Verdict(INVALID, "bytes that are not UTF-8")
    if kind == "lookalike":
        char = rng.choice([c for c in LOOKALIKES if c in good])
        return good.replace(char, LOOKALIKES[char], 1), Verdict(INVALID, f"a lookalike of {char!r}")
    if kind == "order":
        nodes = good.split("+")
        edges = nodes[2].strip("|").split("|")
        return "+".join(nodes[:2] + ["|" + "|".join(edges[::-1]) + "|"]), Verdict(EITHER, "edges out of order")
    raise AssertionError(kind)


# -- DARTS --------------------------------------------------------------------------------------------
DARTS_CELL_OPS = DARTS_OPS[1:]  # a DARTS genotype never names the zero op


def darts_edges(rng: random.Random) -> list[list]:
    edges = []
    for node in range(4):
        for source in rng.sample(range(node + 2), 2):
            edges.append([rng.choice(DARTS_CELL_OPS), source])
    return edges


def _cell(edges) -> str:
    return "[" + ", ".join(f"({op!r}, {src!r})" for op, src in edges) + "]"  # a text index stays text: '1'"


def darts_fields(normal, reduce) -> dict[str, str]:
    return {"normal": _cell(normal), "normal_concat": "[2, 3, 4, 5]", "reduce": _cell(reduce),
            "reduce_concat": "[2, 3, 4, 5]"}


def darts_text(fields: dict[str, str]) -> str:
    return "Genotype(" + ", ".join(f"{key}={value}" for key, value in fields.items()) + ")"


def darts_arch(rng: random.Random) -> tuple[str, Verdict]:
    normal, reduce = darts_edges(rng), darts_edges(rng)
    fields = darts_fields(normal, reduce)
    good = darts_text(fields)
    kind = rng.choice(["published", "published", "valid", "valid", "range concat", "positional", "name typo",
                       "op", "none op", "source", "duplicate source", "edge count", "concat", "short concat",
                       "missing field", "unknown field", "twice", "truncate", "code", "nesting", "nb201",
                       "spacing", "tuples", "surrogate", "lookalike", "empty"])
    if kind == "published":
        return rng.choice(DARTS_PUBLISHED), OK
    if kind == "valid":
        return good, OK
    if kind == "range concat":
        return darts_text({**fields, "normal_concat": "range(2, 6)", "reduce_concat": "range(2, 6)"}), OK
    if kind == "positional":
        return "Genotype(" + ", ".join(fields.values()) + ")", OK
    if kind == "name typo":
        name = typo(rng, rng.choice(DARTS_PUBLISHED))
        if name.strip() in DARTS_PUBLISHED:
            return name, Verdict(EITHER, "a published name with spaces around")
        return name, Verdict(INVALID, "not a published name")
    name = rng.choice(["normal", "reduce"])
    cell = normal if name == "normal" else reduce
    k = rng.randrange(len(cell))

    def with_cell():
        return darts_text({**fields, name: _cell(cell)})

    if kind == "op":
        cell[k][0] = rng.choice([typo(rng, cell[k][0]), "nor_conv_3x3", "conv_7x7", ""])
        return with_cell(), Verdict(INVALID, "unknown op")
    if kind == "none op":
        cell[k][0] = "none"
        return with_cell(), Verdict(EITHER, "a zero op as one of the two inputs")
    if kind == "source":
        node = k // 2
        wrong = rng.choice([node + 2, node + 5, -1, 10**30, "1", True, None, 1.5])
        cell[k][1] = wrong
        return with_cell(), Verdict(INVALID, f"input {wrong!r} of node {node}")
    if kind == "duplicate source":
        node = rng.randrange(1, 4)
        cell[2 * node + 1][1] = cell[2 * node][1]
        return with_cell(), Verdict(EITHER, "both inputs of a node from one source")
    if kind == "edge count":
        if rng.random() < 0.5:
            del cell[rng.randrange(len(cell))]
        else:
            cell.append([rng.choice(DARTS_CELL_OPS), 0])
        return with_cell(), Verdict(INVALID, "not 8 edges")
    if kind == "concat":
        concat = rng.choice(["[]", "[2, 3, 4, 9]", "[0, 1]", "'2345'", "[2, 2, 3, 4]", "None", "[2.5]", "range(9)"])
        return darts_text({**fields, f"{name}_concat": concat}), Verdict(INVALID, f"concat {concat}")
    if kind == "short concat":
        return darts_text({**fields, f"{name}_concat": "[4, 5]"}), Verdict(EITHER, "a concat of some nodes")
    if kind == "missing field":
        missing = rng.choice(list(fields))
        return darts_text({k: v for k, v in fields.items() if k != missing}), Verdict(INVALID, f"no {missing}")
    if kind == "unknown field":
        return darts_text({**fields, "skip": "[1]"}), Verdict(INVALID, "an unknown field")
    if kind == "twice":
        return good[:-1] + ", normal_concat=[2, 3, 4, 5])", Verdict(INVALID, "a field twice")
    if kind == "truncate":
        return good[: rng.randrange(1, len(good) - 1)], Verdict(INVALID, "truncated")
    if kind == "code":
        return rng.choice(["__import__('os').system('touch pwned')", "Genotype(normal=open('pwned','w'))",
                           "Genotype(**{'normal': []})", "Genotype(*[[]])", "lambda: 0",
                           "Genotype(normal=[(x, 0) for x in 'ab'])"]), Verdict(INVALID, "code, not a literal")
    if kind == "nesting":
        depth = rng.choice([50, 300, 100_000])
        return f"Genotype(normal={'[' * depth}{']' * depth})", Verdict(INVALID, "deeply nested")
    if kind == "nb201":
        return nb201_random(rng), Verdict(INVALID, "a NAS-Bench-201 cell given to DARTS")
    if kind == "spacing":
        return good.replace("(", " ( ").replace(",", " ,\n "), Verdict(EITHER, "odd spacing")
    if kind == "tuples":
        return darts_text({**fields, name: "(" + fields[name][1:-1] + ",)"}), Verdict(EITHER, "a tuple for a list")
    if kind == "surrogate":
        return good.replace("sep", "s" + SURROGATE, 1) if "sep" in good else good + SURROGATE, \
            Verdict(INVALID, "bytes that are not UTF-8")
    if kind == "lookalike":
        return good.replace("(", "（", 1), Verdict(INVALID, "a lookalike of '('")
    if kind == "empty":
        return rng.choice(["", "Genotype()", "Genotype", "()", "[]", "{}"]), Verdict(INVALID, "empty")
    raise AssertionError(kind)


def arch_for(rng: random.Random, space: str, index_ok: bool = False) -> tuple[str, Verdict]:
    """An architecture text for a space; now and then one of the other space."""
    if space == "darts":
        return darts_arch(rng)
    if space == "nb201":
        return nb201_arch(rng, index_ok)
    return (nb201_random(rng) if rng.random() < 0.5 else "DARTS_V2"), OK  # the space decides the verdict


def valid_arch(rng: random.Random, space: str) -> str:
    return rng.choice(DARTS_PUBLISHED) if space == "darts" else nb201_random(rng)
