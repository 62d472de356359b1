"""FairDARTS' threshold selection, and the detection of cells that it leaves disconnected.

With independent sigmoid weights an op is kept when its weight exceeds a threshold (FairDARTS Sec. 4:
sigma_threshold = 0.8; the released code's default is 0.85). The rule is the reference's
``threshold_sparse`` parse: on each edge the strongest op outside ``exclude``, kept if its weight is
at least the threshold; on the DARTS space only the ``max_inputs`` (2) strongest inputs of each node
are considered (``max_inputs: null`` lifts the limit).

A cell is invalid when no kept op lies on any path from its inputs to its output: the collapse that
"Making Differentiable Architecture Search less local" (Bodin et al. 2021) shows FairDARTS falling
into when every weight is pushed to 0. The selector records validity in metrics.jsonl every epoch,
warns while the cell is invalid, and the run summary reports the invalid cell instead of a genotype.

Genotypes: on NAS-Bench-201 an edge without a kept op is ``none``. A DARTS genotype has exactly two
inputs per node, so there the returned genotype is the space's top-2 rule, and the edges below the
threshold are listed in the records (``threshold_dropped``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from archsearch.errors import ConfigError
from archsearch.search.selectors import SELECTORS, Selector

log = logging.getLogger("archsearch")


def cell_topology(space_name: str) -> tuple[list[tuple[int, int]], set[int], set[int]]:
    """(source, target) node of each alpha row, the input nodes and the output nodes of a cell."""
    if space_name == "nb201":
        from archsearch.spaces.nb201 import EDGES, NUM_NODES

        return [(source, target) for target, source in EDGES], {0}, {NUM_NODES - 1}
    if space_name == "darts":
        from archsearch.spaces.darts import EDGE_ROWS

        nodes = sorted({node for node, _ in EDGE_ROWS})
        return [(source, node + 2) for node, source in EDGE_ROWS], {0, 1}, {node + 2 for node in nodes}
    raise ConfigError(f"the threshold selector knows the cell graphs of nb201 and darts, not '{space_name}'")


def reaches_output(kept_rows: list[int], topology) -> bool:
    """Whether some output node is reachable from an input node through the kept edges."""
    edges, inputs, outputs = topology
    reached = set(inputs)
    for row in sorted(kept_rows, key=lambda r: edges[r][1]):  # edges point to higher nodes
        source, target = edges[row]
        if source in reached:
            reached.add(target)
    return bool(reached & outputs)


@SELECTORS.register("threshold")
class ThresholdSelector(Selector):
    def __init__(self, threshold: float = 0.8, max_inputs: int | None = 2, exclude: Sequence[str] = ("none",)):
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"the threshold must lie in (0, 1), got {threshold}")
        if max_inputs is not None and max_inputs < 1:
            raise ConfigError(f"max_inputs must be >= 1 or null, got {max_inputs}")
        self.threshold, self.max_inputs, self.exclude = float(threshold), max_inputs, tuple(exclude)

    # -- which edges survive ---------------------------------------------------------------------
    def kept(self, search) -> dict[str, list[tuple[int, str]]]:
        """Per cell type, (alpha row, op) of every edge whose strongest op passes the threshold."""
        ops = search.space.ops
        keep = [k for k, op in enumerate(ops) if op not in self.exclude]
        topology = cell_topology(search.space.name)
        out = {}
        for name, w in search.deterministic_weights().items():
            w = torch.as_tensor(w).double()[:, keep]
            strength, best = w.max(dim=-1)
            rows = range(w.shape[0])
            if search.space.name == "darts" and self.max_inputs:
                rows = _strongest_inputs(strength, topology[0], self.max_inputs)
            out[name] = [(r, ops[keep[int(best[r])]]) for r in rows if float(strength[r]) >= self.threshold]
        return out

    def invalid_cells(self, search) -> list[str]:
        topology = cell_topology(search.space.name)
        return [name for name, edges in self.kept(search).items()
                if not reaches_output([row for row, _ in edges], topology)]

    # -- the selector interface ------------------------------------------------------------------
    def select(self, search):
        if search.space.name == "nb201":
            from archsearch.spaces.nb201 import EDGES, NB201Genotype

            chosen = dict(self.kept(search)["cell"])
            return NB201Genotype(tuple(chosen.get(row, "none") for row in range(len(EDGES))))
        cell_topology(search.space.name)  # a clear error for spaces without a known cell graph
        return search.space.genotype_from_weights(search.deterministic_weights(), exclude=self.exclude)

    def invalid_reason(self, search, genotype) -> str | None:
        invalid = self.invalid_cells(search)
        if not invalid:
            return None
        return (f"no op above the threshold {self.threshold} lies on any path from input to output in the "
                f"{_cells(invalid)}: the search collapsed, there is no architecture to report")

    def record(self, search) -> dict:
        kept = self.kept(search)
        invalid = self.invalid_cells(search)
        record = {"threshold_valid": not invalid, "threshold_invalid_cells": invalid,
                  "threshold_kept": {name: [[row, op] for row, op in edges] for name, edges in kept.items()}}
        if search.space.name == "darts":
            rows = len(search.space.arch_shapes()["normal"])
            record["threshold_dropped"] = {name: rows - len(edges) for name, edges in kept.items()}
        if invalid:
            # one line on stderr, as every warning of a run (a Python warning would print two)
            log.warning("archsearch: warning: epoch %d: the thresholded %s is invalid: no op above %s connects "
                        "input to output", search.epoch + 1, _cells(invalid), self.threshold)
        return record


def _cells(names: list[str]) -> str:
    return "cell" if names == ["cell"] else " and ".join(f"{name} cell" for name in names)


def _strongest_inputs(strength: torch.Tensor, edges: list[tuple[int, int]], limit: int) -> list[int]:
    """For each target node, the rows of its ``limit`` strongest incoming edges (ties: lower row)."""
    rows_of: dict[int, list[int]] = {}
    for row, (_, target) in enumerate(edges):
        rows_of.setdefault(target, []).append(row)
    chosen = []
    for rows in rows_of.values():
        chosen += sorted(rows, key=lambda r: -float(strength[r]))[:limit]
    return sorted(chosen)
