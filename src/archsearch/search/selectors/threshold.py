"""FairDARTS' threshold selection, and the detection of cells that it leaves disconnected.

With independent sigmoid weights an op is kept when its weight exceeds a threshold (FairDARTS Sec. 4:
sigma_threshold = 0.8; the released code's default is 0.85). The rule is the reference's
``threshold_sparse`` parse: on each edge the strongest op outside ``exclude``, kept if its weight is
at least the threshold; where genotypes keep a few inputs per node (DARTS: 2) only the ``max_inputs``
strongest inputs of each node are considered (``max_inputs: null`` lifts the limit).

A cell is invalid when no kept op lies on any path from its inputs to its output: the collapse that
"Making Differentiable Architecture Search less local" (Bodin et al. 2021) shows FairDARTS falling
into when every weight is pushed to 0. The selector records validity in metrics.jsonl every epoch,
warns while the cell is invalid, and the run summary reports the invalid cell instead of a genotype.

Genotypes: on NAS-Bench-201 an edge without a kept op is ``none``. On the DARTS space ``mode`` says
what the genotype holds:

- ``sparse`` (default): the reference's ``threshold_sparse`` cell (xiaomi-automl/FairDARTS
  ``fairdarts/utils.py:161-188``, the default ``--parse_method`` of ``train_search.py:40``): of each
  node's 2 strongest inputs (``utils.py:170``), only those whose strongest op passes the threshold
  (``utils.py:178-184``), so a node has 0, 1 or 2 inputs, never more. A dropped edge is ``none`` in
  our genotype, as is an edge from a node left without input, and the concat keeps the nodes that have
  an input (the reference's DCOCell, ``fairdarts/model.py:60-117``; darts_genotypes.keep_edges).
- ``top2``: the space's top-2 genotype whatever the threshold (our earlier behaviour); the threshold
  then only decides validity and the records.

Both record how many edges fell below the threshold (``threshold_dropped``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from archsearch.errors import ConfigError, shown
from archsearch.search.selectors.base import SELECTORS, Selector

log = logging.getLogger("archsearch")

#: what the genotype holds on spaces with a fixed number of inputs per node (DARTS): see above
MODES = ("sparse", "top2")


def cell_topology(space) -> tuple[list[tuple[int, int]], set[int], set[int]]:
    """(source, target) node of each alpha row, the input nodes and the output nodes of a cell."""
    graph = space.cell_graph()
    if graph is None:
        raise ConfigError(f"the threshold selector knows no cell graph of the '{space.name}' space")
    return graph


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
    def __init__(self, threshold: float = 0.8, max_inputs: int | None = 2, exclude: Sequence[str] = ("none",),
                 mode: str = "sparse"):
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"the threshold must lie in (0, 1), got {threshold}")
        if max_inputs is not None and max_inputs < 1:
            raise ConfigError(f"max_inputs must be >= 1 or null, got {max_inputs}")
        if mode not in MODES:
            raise ConfigError(f"the threshold selector's mode must be one of {', '.join(MODES)}, got {shown(mode)}")
        self.threshold, self.max_inputs, self.exclude = float(threshold), max_inputs, tuple(exclude)
        self.mode = mode

    def check_space(self, space) -> None:
        cell_topology(space)  # a clear error for spaces without a known cell graph
        limit = space.inputs_per_node
        if self.mode == "sparse" and limit and (self.max_inputs is None or self.max_inputs > limit):
            raise ConfigError(f"the sparse {space.name} genotype holds at most {limit} inputs per node: "
                              f"max_inputs must be 1..{limit}, got {self.max_inputs} (or use mode top2)")

    # -- which edges survive ---------------------------------------------------------------------
    def kept(self, view) -> dict[str, list[tuple[int, str]]]:
        """Per cell type, (alpha row, op) of every edge whose strongest op passes the threshold."""
        ops = view.space.ops
        keep = [k for k, op in enumerate(ops) if op not in self.exclude]
        topology = cell_topology(view.space)
        out = {}
        for name, w in view.deterministic_weights().items():
            w = torch.as_tensor(w).double()[:, keep]
            strength, best = w.max(dim=-1)
            rows = range(w.shape[0])
            if view.space.inputs_per_node and self.max_inputs:
                rows = _strongest_inputs(strength, topology[0], self.max_inputs)
            out[name] = [(r, ops[keep[int(best[r])]]) for r in rows if float(strength[r]) >= self.threshold]
        return out

    def invalid_cells(self, view) -> list[str]:
        topology = cell_topology(view.space)
        return [name for name, edges in self.kept(view).items()
                if not reaches_output([row for row, _ in edges], topology)]

    # -- the selector interface ------------------------------------------------------------------
    def select(self, view):
        space = view.space
        self.check_space(space)
        if space.inputs_per_node is None:  # every edge holds an op: below the threshold, that is none
            one_hot, kept = {}, self.kept(view)
            for name, (rows, columns) in space.arch_shapes().items():
                w = torch.zeros(rows, columns)
                w[:, space.ops.index("none")] = 1.0
                for row, op in kept[name]:
                    w[row] = 0.0
                    w[row, space.ops.index(op)] = 1.0
                one_hot[name] = w
            return space.genotype_from_weights(one_hot, exclude=())
        top = space.genotype_from_weights(view.deterministic_weights(), exclude=self.exclude)
        if self.mode == "top2":
            return top
        # the kept edges are among the top inputs (the same ranking, max_inputs <= the genotype's inputs)
        return space.keep_edges(top, {name: [row for row, _ in edges] for name, edges in self.kept(view).items()})

    def invalid_reason(self, view, genotype) -> str | None:
        invalid = self.invalid_cells(view)
        if not invalid:
            return None
        return (f"no op above the threshold {self.threshold} lies on any path from input to output in the "
                f"{_cells(invalid)}: the search collapsed, there is no architecture to report")

    def record(self, view) -> dict:
        kept = self.kept(view)
        invalid = self.invalid_cells(view)
        record = {"threshold_valid": not invalid, "threshold_invalid_cells": invalid,
                  "threshold_kept": {name: [[row, op] for row, op in edges] for name, edges in kept.items()}}
        if view.space.inputs_per_node:  # genotypes keep the top inputs whatever the threshold: say what it dropped
            edges_of = {name: shape[0] for name, shape in view.space.arch_shapes().items()}
            record["threshold_dropped"] = {name: edges_of[name] - len(edges) for name, edges in kept.items()}
        if invalid:
            # one line on stderr, as every warning of a run (a Python warning would print two)
            log.warning("archsearch: warning: epoch %d: the thresholded %s is invalid: no op above %s connects "
                        "input to output", view.epoch + 1, _cells(invalid), self.threshold)
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
