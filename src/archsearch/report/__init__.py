"""Pictures of a run, each written atomically as PNG (``save_png``): cell drawings, plots of a search's metrics."""

from archsearch.report.draw import OP_COLOURS, draw_cell, draw_cells
from archsearch.report.png import new_figure, save_png

__all__ = ["OP_COLOURS", "draw_cell", "draw_cells", "new_figure", "save_png"]
