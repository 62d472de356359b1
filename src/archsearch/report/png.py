"""PNG files of matplotlib figures, written atomically.

Figures are made with ``new_figure`` (a ``Figure`` on its own Agg canvas) rather than through pyplot: no
global backend is selected, nothing is registered with pyplot's figure manager, and no display is needed.
"""

from __future__ import annotations

import io
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from archsearch.utils.io import write_bytes_atomic


def new_figure(**options) -> Figure:
    """A figure that renders on the Agg canvas; ``options`` go to ``Figure`` (figsize, dpi, ...)."""
    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: str | os.PathLike, **savefig_options) -> None:
    """Render ``figure`` as PNG and write it to ``path`` atomically (the umask decides the mode; a path that
    is not a regular file is refused, as for every result; see utils/io.py). ``savefig_options``: dpi,
    bbox_inches, ..."""
    write_bytes_atomic(path, png_bytes(figure, **savefig_options))


def png_bytes(figure: Figure, **savefig_options) -> bytes:
    """``figure`` rendered as PNG, in memory."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig_options)
    return buffer.getvalue()
