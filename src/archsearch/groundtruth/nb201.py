"""NAS-Bench-201 ground truth, offline: every one of the 15,625 cells on three datasets.

The table ships inside the package (``data/nb201.csv.gz``, under 1 MB); its provenance and the
meaning of each column are in docs/benchmarks.md. It is parsed once with numpy into columns and
kept for the life of the process (a load takes well under a second and a few MB).
"""

from __future__ import annotations

import csv
import gzip
import math
import numbers
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from archsearch.checks import number, readable_path
from archsearch.errors import ArchSearchError, DataError, InvalidGenotypeError, UnknownNameError, shown
from archsearch.groundtruth.nb201_arch import NB201Genotype, parse_arch_str
from archsearch.groundtruth.nb201_datasets import CIFAR10_VALID, DATASETS, canonical_dataset

#: the prefix of each dataset's columns (cifar10-valid: only the valid ones are its own, nb201_datasets.py)
COLUMN_PREFIX = {**dict(zip(DATASETS, ("c10", "c100", "in16"))), CIFAR10_VALID: "c10"}
#: an index written as text ("6111"); ASCII digits only, as int() reads other scripts' digits too
INDEX_TEXT = re.compile(r"\s*([+-]?[0-9]+)\s*")
#: the 200-epoch training time of each dataset (CIFAR-10: the ``cifar10-valid`` runs, the search setting)
TIME_COLUMN = {**dict(zip(DATASETS, ("train_time_c10valid_200_s", "train_time_c100_200_s", "train_time_in16_200_s"))),
               CIFAR10_VALID: "train_time_c10valid_200_s"}
#: why a test accuracy of cifar10-valid is refused
NO_C10_VALID_TEST = ("the table holds no test-set accuracy of NAS-Bench-201's cifar10-valid setting (c10_test_* are "
                     "the cifar10 setting's, trained on all 50k images): ask for cifar10's test accuracy")


def _column_name(dataset: str, split: str, epochs: int) -> str:
    if not isinstance(split, str) or split not in ("valid", "test"):
        raise UnknownNameError("split", split, ("valid", "test"))
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs not in (12, 200):
        raise UnknownNameError("epoch budget", epochs, ("12", "200"))
    dataset = canonical_dataset(dataset)
    if dataset == CIFAR10_VALID and split == "test":
        raise DataError(NO_C10_VALID_TEST)
    return f"{COLUMN_PREFIX[dataset]}_{split}_{int(epochs)}"


@dataclass(frozen=True)
class NB201Result:
    """Ground truth of one cell on one dataset (accuracies in %)."""

    index: int
    arch: str
    dataset: str
    valid: float
    test: float
    valid_12: float
    test_12: float
    params_M: float
    flops_M: float
    train_time_200_s: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class NB201Table:
    """Columns of the benchmark, indexed by the official index and by arch string."""

    _cache: dict[str, NB201Table] = {}

    def __init__(self, path: str | Path | None = None):
        if path is None:
            source = resources.files("archsearch.groundtruth") / "data" / "nb201.csv.gz"
            with resources.as_file(source) as real:
                self._read(real)
        else:
            path = readable_path(path, "NAS-Bench-201 table", folder=False)
            try:
                self._read(path)
            except (OSError, EOFError, ValueError, IndexError, StopIteration, csv.Error) as error:
                raise DataError(f"{path} is not a NAS-Bench-201 table ({type(error).__name__}: {error}); "
                                "expected the gzipped CSV of the benchmark (nb201.csv.gz)") from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> NB201Table:
        """The table, parsed once per process."""
        key = str(path)
        if key not in cls._cache:
            cls._cache[key] = cls(path)
        return cls._cache[key]

    def _read(self, path: Path) -> None:
        with gzip.open(path, "rt", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows = list(reader)
        self.columns = header
        self.arch_strs = [row[1] for row in rows]
        numeric = np.array([[float(v) if v else math.nan for v in row[2:]] for row in rows], dtype=np.float64)
        self._col = {name: numeric[:, i] for i, name in enumerate(header[2:])}
        self.indices = np.array([int(row[0]) for row in rows])
        if not np.array_equal(self.indices, np.arange(len(rows))):
            raise ArchSearchError(f"NAS-Bench-201 table at '{path}' is not in index order")
        self._index_of = {arch: i for i, arch in enumerate(self.arch_strs)}

    def __len__(self) -> int:
        return len(self.arch_strs)

    def column(self, name: str) -> np.ndarray:
        """A raw column (read-only view), e.g. ``c10_test_200``."""
        try:
            col = self._col[name]
        except (KeyError, TypeError):
            raise UnknownNameError("NAS-Bench-201 column", name, self._col) from None
        view = col.view()
        view.flags.writeable = False
        return view

    def index_of(self, arch) -> int:
        """The official index of an arch string, a genotype, or an index (an int or its decimal text)."""
        if isinstance(arch, bool) or not isinstance(arch, (str, numbers.Integral)):
            if not isinstance(arch, NB201Genotype):
                raise InvalidGenotypeError(f"a NAS-Bench-201 architecture is an arch string, a genotype or an index "
                                           f"0..{len(self) - 1}, got {type(arch).__name__} {shown(arch)}")
            arch = str(arch)
        match = INDEX_TEXT.fullmatch(arch) if isinstance(arch, str) else None
        if match:
            # a sign makes no index ("-0" included); int() refuses very long digit strings
            if match[1].startswith("-") or len(match[1].lstrip("+").lstrip("0")) > 9:
                raise InvalidGenotypeError(f"NAS-Bench-201 index {shown(match[1])} out of range 0..{len(self) - 1}")
            arch = int(match[1])
        if isinstance(arch, numbers.Integral):
            if not 0 <= int(arch) < len(self):
                raise InvalidGenotypeError(f"NAS-Bench-201 index {shown(arch)} out of range 0..{len(self) - 1}")
            return int(arch)
        text = arch.strip()
        if text in self._index_of:
            return self._index_of[text]
        return self._index_of[str(parse_arch_str(text))]  # parsing says what is wrong with the text

    def accuracy(self, arch, dataset: str = "cifar10", split: str = "test", epochs: int = 200) -> float:
        """Accuracy (%) of a cell: split 'valid' or 'test', after 200 or 12 epochs."""
        return float(self._col[_column_name(dataset, split, epochs)][self.index_of(arch)])

    def train_time(self, arch, dataset: str = "cifar10", epochs: int = 200) -> float:
        """Simulated training time (s). The table holds the 200-epoch time; the 12-epoch schedule
        is charged pro rata, 12/200 of it (the benchmark's per-epoch time times 12)."""
        seconds = float(self._col[TIME_COLUMN[canonical_dataset(dataset)]][self.index_of(arch)])
        return seconds * number(epochs, "epochs", positive=True) / 200.0

    def query(self, arch, dataset: str = "cifar10") -> NB201Result:
        dataset = canonical_dataset(dataset)
        i, p = self.index_of(arch), COLUMN_PREFIX[dataset]

        def test(epochs: int) -> float:  # cifar10-valid has none in the table (nb201_datasets.py): NaN, as flops_M
            return math.nan if dataset == CIFAR10_VALID else float(self._col[f"{p}_test_{epochs}"][i])

        return NB201Result(
            index=i,
            arch=self.arch_strs[i],
            dataset=dataset,
            valid=float(self._col[f"{p}_valid_200"][i]),
            test=test(200),
            valid_12=float(self._col[f"{p}_valid_12"][i]),
            test_12=test(12),
            params_M=float(self._col[f"params_{p}_M"][i]),
            # the CIFAR-10 network in both CIFAR-10 settings
            flops_M=float(self._col["flops_c10_M_formula"][i]) if p == "c10" else math.nan,
            train_time_200_s=float(self._col[TIME_COLUMN[dataset]][i]),
        )

    def query_all(self, arch) -> dict[str, NB201Result]:
        return {dataset: self.query(arch, dataset) for dataset in DATASETS}

    def best(self, dataset: str = "cifar10", split: str = "test", epochs: int = 200) -> int:
        return int(np.nanargmax(self._col[_column_name(dataset, split, epochs)]))
