"""The three datasets of NAS-Bench-201 by name: the one list every part of the package uses.

Pure text, so that the command line can name them without loading the table.
"""

from __future__ import annotations

from archsearch.errors import UnknownNameError

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
#: NB201's own name for CIFAR-10 trained on its 25k train split and scored on the 25k valid split. The
#: table's c10_valid_* columns (and the c10valid training time) are that setting's, but not its test-set
#: accuracy: c10_test_* belong to the ``cifar10`` setting (trained on all 50k images, scored on the 10k test
#: images). So ``cifar10-valid`` has valid accuracies and no test ones (NaN, or an error where one is asked
#: for), and ``cifar10`` is the paper's CIFAR-10 protocol: cifar10-valid's valid split, cifar10's test set.
#: Not in DATASETS, which lists each dataset once for what iterates over them.
CIFAR10_VALID = "cifar10-valid"
#: every name a query takes
NAMES = (*DATASETS, CIFAR10_VALID)
_ALIASES = {"c10": "cifar10", "cifar-10": "cifar10", "c100": "cifar100", "cifar-100": "cifar100",
            "imagenet16-120": "ImageNet16-120", "imagenet16": "ImageNet16-120", "in16": "ImageNet16-120",
            "cifar-10-valid": CIFAR10_VALID, "c10-valid": CIFAR10_VALID}


def canonical_dataset(name: str) -> str:
    """The benchmark's name of a dataset, from it or an alias (``c10``, ``cifar-100``, ``in16``, any case)."""
    if isinstance(name, str):
        if name in NAMES:
            return name
        if name.lower() in _ALIASES:
            return _ALIASES[name.lower()]
    raise UnknownNameError("NAS-Bench-201 dataset", name, NAMES)
