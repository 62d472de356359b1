"""The three datasets of NAS-Bench-201 by name: the one list every part of the package uses.

Pure text, so that the command line can name them without loading the table.
"""

from __future__ import annotations

from archsearch.errors import UnknownNameError

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
_ALIASES = {"c10": "cifar10", "cifar-10": "cifar10", "c100": "cifar100", "cifar-100": "cifar100",
            "imagenet16-120": "ImageNet16-120", "imagenet16": "ImageNet16-120", "in16": "ImageNet16-120"}


def canonical_dataset(name: str) -> str:
    """The benchmark's name of a dataset, from it or an alias (``c10``, ``cifar-100``, ``in16``, any case)."""
    if isinstance(name, str):
        if name in DATASETS:
            return name
        if name.lower() in _ALIASES:
            return _ALIASES[name.lower()]
    raise UnknownNameError("NAS-Bench-201 dataset", name, DATASETS)
