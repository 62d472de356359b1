"""Early-stopping rules any search can use (``early_stop: dartsplus`` or ``rdarts``), as epoch hooks.

Each rule's ``on_epoch_end(view, record) -> reason | None`` reads the epoch's metrics record; a reason
stops the search and is kept in the run's summary (``stopped_early``). Their memory (``state_dict``)
goes into the checkpoint, so a resumed run decides as an uninterrupted one.

DARTS+ (Liang et al., "DARTS+: Improved Differentiable Architecture Search with Early Stopping",
arXiv:1909.06035, Sec. 3.2): stop when the selected normal cell holds two or more skip connections, or
when the ranking of the architecture weights of the learnable operations has been stable for a number
of epochs (10).

RobustDARTS (Zela et al., "Understanding and Robustifying Differentiable Architecture Search", ICLR 2020,
Sec. 4.3, DARTS-ES; automl/RobustDARTS ``src/utils.py`` ``EVLocalAvg``, ``src/search/args.py``): local
averages of the largest Hessian eigenvalue over a centred window of w = 5 evaluations; at the evaluation
whose window centre is i, stop when  avg(i) / avg(i - k) > 1.3  with k = 4 (the code's ``--delta``; the
paper writes the test as avg(i - k) / avg(i) < 0.75), considered only once the earlier centre is at
0-based epoch 10 or later (``--es_start_epoch``), and return the architecture of epoch i - k.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from archsearch.errors import ConfigError
from archsearch.search.hooks.base import EARLY_STOPPING, EpochHook


def learnable_columns(op_names: Sequence[str], learnable_ops: Sequence[str] | None = None) -> list[int]:
    """Columns of the ops with weights: those named in ``learnable_ops``, else the convolutions."""
    if learnable_ops is not None:
        unknown = [op for op in learnable_ops if op not in op_names]
        if unknown:
            raise ConfigError(f"learnable_ops {unknown} are not ops of the space ({', '.join(op_names)})")
        return [k for k, op in enumerate(op_names) if op in learnable_ops]
    return [k for k, op in enumerate(op_names) if "conv" in op]


def weight_ranking(op_weights: dict[str, list[list[float]]], columns: Sequence[int]) -> tuple:
    """Per cell type and edge, the learnable ops ordered by decreasing weight (ties by column)."""
    ranking = []
    for name in sorted(op_weights):
        for row in op_weights[name]:
            ranking.append(tuple(sorted(columns, key=lambda k: (-row[k], k))))
    return tuple(ranking)


@EARLY_STOPPING.register("dartsplus")
class DartsPlusStop(EpochHook):
    """DARTS+: >= ``max_skips`` skip connections in the selected normal cell, or the same ranking of the
    learnable ops' weights on every edge for ``patience`` consecutive epochs."""

    def __init__(self, max_skips: int = 2, patience: int = 10, learnable_ops: Sequence[str] | None = None):
        # DARTS+ Sec. 3.2: criterion 1 with 2 skip connections; criterion 2 with 10 epochs
        if max_skips < 1 or patience < 1:
            raise ConfigError(f"dartsplus needs max_skips >= 1 and patience >= 1, got {max_skips}, {patience}")
        self.max_skips, self.patience = int(max_skips), int(patience)
        self.learnable_ops = None if learnable_ops is None else list(learnable_ops)
        self.rankings: list[tuple] = []

    def on_epoch_end(self, view, record: dict) -> str | None:
        if record["skip_count"] >= self.max_skips:
            return (f"dartsplus: the selected normal cell holds {record['skip_count']} skip connections "
                    f"(>= {self.max_skips}) at epoch {record['epoch']}")
        columns = learnable_columns(view.space.ops, self.learnable_ops)
        self.rankings = (self.rankings + [weight_ranking(record["op_weights"], columns)])[-self.patience:]
        if len(self.rankings) == self.patience and len(set(self.rankings)) == 1:
            return (f"dartsplus: the ranking of the learnable ops' weights has been stable for "
                    f"{self.patience} epochs (epochs {record['epoch'] - self.patience + 1}-{record['epoch']})")
        return None

    def state_dict(self) -> dict:
        return {"rankings": [list(map(list, r)) for r in self.rankings]}

    def load_state_dict(self, state: dict) -> None:
        self.rankings = [tuple(tuple(edge) for edge in r) for r in state.get("rankings", [])]


@EARLY_STOPPING.register("rdarts")
class EigenvalueStop(EpochHook):
    """RobustDARTS' DARTS-ES on ``hessian_max_eigenvalue``: local averages over a centred window of
    ``window`` evaluations; stop when avg(i) / avg(i - k) > ``factor`` and i - k >= ``start_epoch``.
    With ``rollback`` (the reference) the architecture parameters of epoch i - k are restored, so the
    selector returns that epoch's architecture."""

    def __init__(self, window: int = 5, k: int = 4, factor: float = 1.3, start_epoch: int = 10,
                 rollback: bool = True):
        # automl/RobustDARTS src/search/args.py: --window 5 --delta 4 --factor 1.3 --es_start_epoch 10
        if window < 1 or window % 2 == 0:
            raise ConfigError(f"rdarts needs an odd window >= 1 (a centred local average), got {window}")
        if k < 1 or factor <= 0 or start_epoch < 0:
            raise ConfigError(f"rdarts needs k >= 1, factor > 0 and start_epoch >= 0, got {k}, {factor}, {start_epoch}")
        self.window, self.k, self.factor = int(window), int(k), float(factor)
        self.start_epoch, self.rollback = int(start_epoch), bool(rollback)
        self.epochs: list[int] = []  # 0-based epochs with an eigenvalue
        self.values: list[float] = []
        self.snapshots: dict[int, list[torch.Tensor]] = {}

    def local_average(self, j: int) -> float:
        """Mean over evaluations j - w//2 .. j + w//2 (truncated at the start, as ``EVLocalAvg``)."""
        h = self.window // 2
        chunk = self.values[max(0, j - h): j + h + 1]
        return sum(chunk) / len(chunk)

    def on_epoch_end(self, view, record: dict) -> str | None:
        value = record.get("hessian_max_eigenvalue")
        epoch = record["epoch"] - 1
        if value is None:
            return None
        self.epochs.append(epoch)
        self.values.append(float(value))
        if self.rollback:
            self.snapshots[epoch] = [p.detach().cpu().clone() for p in view.alphas]
        if epoch >= view.config.epochs - 1:  # the reference decides nothing at the last epoch
            return None
        j = len(self.values) - 1 - self.window // 2  # newest centre whose window is complete
        earlier = j - self.k
        if earlier < 0:
            return None
        if self.rollback:  # only epochs that can still be returned are kept
            self.snapshots = {e: s for e, s in self.snapshots.items() if e >= self.epochs[earlier]}
        if self.epochs[earlier] < self.start_epoch:
            return None
        current, previous = self.local_average(j), self.local_average(earlier)
        if previous <= 0 or current / previous <= self.factor:
            return None
        stop_epoch = self.epochs[earlier]
        if self.rollback:
            with torch.no_grad():
                for p, saved in zip(view.alphas, self.snapshots[stop_epoch]):
                    p.copy_(saved.to(p.device))
        h = self.window // 2
        return (f"rdarts: mean largest eigenvalue {current:.4g} around epoch {self.epochs[j] + 1} is "
                f"{current / previous:.3f} x the {previous:.4g} around epoch {stop_epoch + 1} "
                f"(> {self.factor}; windows of {2 * h + 1} evaluations)"
                + (f"; the architecture of epoch {stop_epoch + 1} is restored" if self.rollback else ""))

    def state_dict(self) -> dict:
        return {"epochs": list(self.epochs), "values": list(self.values), "snapshots": dict(self.snapshots)}

    def load_state_dict(self, state: dict) -> None:
        self.epochs = list(state.get("epochs", []))
        self.values = list(state.get("values", []))
        self.snapshots = dict(state.get("snapshots", {}))
