"""What a search and a training both do after each epoch, beside metrics.jsonl and the checkpoint: the
console's line (or JSON object), ``metrics.csv``, and the TensorBoard scalars. Console-only figures (the
ETA) never reach metrics.jsonl, whose records stay as they were."""

from __future__ import annotations

from pathlib import Path

from archsearch.utils.progress import Console, eta_seconds
from archsearch.utils.scalars import METRICS_CSV, write_metrics_csv
from archsearch.utils.tensorboard import TensorBoardLog


class EpochOutput:
    """``kind``: "search" or "train"; ``out_dir`` None: the console alone (a run without a directory, or a
    data-parallel process that does not write); ``history``: the epochs done before this process (a
    resumed run's metrics.csv is rewritten from them at once, as its metrics.jsonl is)."""

    def __init__(self, kind: str, console: Console, out_dir: str | Path | None, *, tensorboard: bool,
                 history: list[dict] = ()):
        self.kind, self.console = kind, console
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None and history:
            write_metrics_csv(self.out_dir / METRICS_CSV, list(history))
        self.tensorboard = (TensorBoardLog(self.out_dir, next_epoch=len(history) + 1)
                            if tensorboard and self.out_dir else None)

    def epoch(self, history: list[dict], total: int) -> None:
        """The newest record of ``history`` (whose records all reach metrics.csv) of a run of ``total`` epochs."""
        record = history[-1]
        self.console.epoch(self.kind, record, total, eta_seconds(history, total))
        if self.out_dir is not None:
            write_metrics_csv(self.out_dir / METRICS_CSV, history)
        if self.tensorboard is not None:
            self.tensorboard.scalars(self.kind, record)
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
