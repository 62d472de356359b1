"""What a running search shows and leaves behind after each epoch, so that it can be watched live and a
killed run still has its figures: the console's line or JSON object, metrics.csv and TensorBoard's
scalars (utils/epoch_output.py, shared with training), then the plots, the op weights' histograms per
cell type and a drawing of the current genotype's cells in TensorBoard.
"""

from __future__ import annotations

import io
import time

import torch

from archsearch.utils.epoch_output import EpochOutput

#: The most of a run's wall time that redrawing its plots may take. Drawing them all grows with the
#: epochs: at the demo's scale (NAS-Bench-201, C=16, N=5, on digits), measured once on a busy 2-core
#: machine, 2.7 s after 30 epochs against 170 s for an epoch (1.6%), but a faster machine shortens the
#: epoch far more than the drawing. So after plots that took t seconds the next wait at least t / PLOT_SHARE
#: seconds (the last epoch's always come): slow epochs get fresh plots every epoch, fast ones every few.
#: Plots are figures, not results; metrics.jsonl and metrics.csv are written every epoch.
PLOT_SHARE = 0.03


class SearchWatch:
    """Handed the search (loop.py's DifferentiableSearch) and whether this process writes its directory."""

    def __init__(self, search, writes: bool):
        self.search, self.writes = search, writes
        self.output = EpochOutput("search", search.console, search.out_dir if writes else None,
                                  tensorboard=writes and search.tensorboard, history=search.history)
        self._next_plot = 0.0  # time.monotonic() from which plots may be redrawn
        self._plotted_epochs = 0
        self._drawing: tuple[str | None, object] = (None, None)  # the genotype last drawn, and its image

    def epoch_end(self) -> None:
        """After the epoch's metrics line and checkpoint."""
        search = self.search
        self.output.epoch(search.history, search.config.epochs)
        if not self.writes:
            return
        self.plots(final=search.epoch >= search.config.epochs or search.stop_reason is not None)
        board = self.output.tensorboard
        if board is not None:
            record = search.history[-1]
            board.histograms("op_weights", {cell: torch.tensor(rows) for cell, rows in record["op_weights"].items()},
                             record["epoch"])
            board.image("genotype/cells", self.drawing(record["genotype"]), record["epoch"])
            board.flush()

    def plots(self, final: bool = False) -> None:
        """Rewrite the run's plots (each atomically), unless they are fresh (PLOT_SHARE) and not ``final``."""
        search = self.search
        history = search.history
        fresh = len(history) == self._plotted_epochs or not (final or time.monotonic() >= self._next_plot)
        if not self.writes or fresh:
            return
        from archsearch.report.plots import plot_search

        start = time.monotonic()
        plot_search(history, search.out_dir, search.space.ops, space=search.space)
        end = time.monotonic()
        self._next_plot, self._plotted_epochs = end + (end - start) / PLOT_SHARE, len(history)

    def drawing(self, genotype: str):
        """The cells of ``genotype`` as an RGB array (uint8), drawn again only when the genotype changes."""
        if self._drawing[0] != genotype:
            from matplotlib.image import imread

            from archsearch.report.draw import cells_figure
            from archsearch.report.png import png_bytes

            figure, _ = cells_figure(self.search.space, genotype)
            rgb = imread(io.BytesIO(png_bytes(figure, dpi=120)))[..., :3]
            self._drawing = (genotype, (rgb * 255).round().astype("uint8"))
        return self._drawing[1]

    def __enter__(self) -> SearchWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.output.close()
