"""Ground truth: NAS-Bench-201 for all 15,625 cells (shipped with the package) and synthetic test functions.

The lowest layer of the package: it imports nothing of it but ``errors`` and ``checks`` (never the spaces),
so the spaces may import it. ``NB201Table`` is imported on first use: the dataset names and arch strings
(``nb201_datasets``, ``nb201_arch``) need no numpy.
"""

__all__ = ["NB201Table"]


def __getattr__(name: str):
    if name == "NB201Table":
        from archsearch.groundtruth.nb201 import NB201Table

        return NB201Table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
