"""NAS-Bench-201 ground truth against the facts published with the table (data/README.md)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from archsearch.errors import InvalidGenotypeError, UnknownNameError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.spaces import get_space

from conftest import SHARED_NB201

ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table():
    return NB201Table.load()


def test_size(table):
    assert len(table) == 15625


def test_best_cells(table):
    assert table.best("cifar10") == 6111
    best = table.query(6111)
    assert best.valid == pytest.approx(91.6067) and best.test == pytest.approx(94.3733)
    assert table.best("cifar100") == 9930 and table.query(9930, "cifar100").test == pytest.approx(73.5133)
    assert table.best("ImageNet16-120") == 857 and table.query(857, "ImageNet16-120").test == pytest.approx(47.3111)


def test_all_skip_cell_is_the_published_darts_row(table):
    assert table.index_of(ALL_SKIP) == 1835
    rows = [table.query(ALL_SKIP, d) for d in ("cifar10", "cifar100", "ImageNet16-120")]
    assert [round(v, 2) for r in rows for v in (r.valid, r.test)] == [39.77, 54.30, 15.03, 15.61, 16.43, 16.32]


def test_mean_and_std_of_cifar10_test(table):
    col = table.column("c10_test_200")
    assert col.mean() == pytest.approx(87.06, abs=0.01)
    assert col.std() == pytest.approx(12.93, abs=0.01)


def test_query_by_genotype_string_and_index_agree(table):
    space = get_space("nb201")
    g = space.from_string(table.arch_strs[42])
    assert table.query(g) == table.query(table.arch_strs[42]) == table.query(42) == table.query("42")


def test_flops_formula(table):
    """flops_c10_M_formula = 7.943872 + 4.36224 #conv1x1 + 35.81952 #conv3x3 + 1.29024 #avgpool."""
    for i in np.random.default_rng(0).choice(len(table), 30, replace=False):
        arch = table.arch_strs[i]
        expected = (7.943872 + 4.36224 * arch.count("nor_conv_1x1") + 35.81952 * arch.count("nor_conv_3x3")
                    + 1.29024 * arch.count("avg_pool_3x3"))
        assert table.query(i).flops_M == pytest.approx(expected, abs=1e-6)


def test_twelve_epoch_fields_and_cost(table):
    assert table.accuracy(6111, "cifar10", "valid", 12) == table.query(6111).valid_12
    assert table.train_time(6111, epochs=12) == pytest.approx(table.train_time(6111) * 12 / 200)


def test_bad_queries(table):
    with pytest.raises(InvalidGenotypeError, match="unknown NAS-Bench-201 op"):
        table.query("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(InvalidGenotypeError, match="out of range"):
        table.query(15625)
    with pytest.raises(UnknownNameError, match="cifar100"):
        table.query(0, "cifar1000")
    with pytest.raises(UnknownNameError):
        table.accuracy(0, split="train")


@pytest.mark.skipif(not SHARED_NB201.is_file(), reason="needs the shared NAS-Bench-201 table to compare with")
def test_shipped_table_is_the_shared_one():
    import gzip

    from importlib import resources

    shipped = resources.files("archsearch.groundtruth") / "data" / "nb201.csv.gz"
    assert gzip.decompress(shipped.read_bytes()) == gzip.decompress(SHARED_NB201.read_bytes())


def test_loads_in_a_fresh_process_within_200_mb():
    # Memory only: load time is a figure benchmarks/nb201_load.py prints, never a test's assertion.
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
    code = ("import re; from archsearch.groundtruth.nb201 import NB201Table; "
            "print(NB201Table.load().query(0).arch, re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))")
    arch, rss_kb = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout.split()
    assert arch.startswith("|") and arch.count("~") == 6
    assert int(rss_kb) / 1024 < 200  # measured about 70 MB


def test_ground_truth_imports_no_space_and_no_torch():
    # the spaces import the ground truth, never the reverse; a table lookup needs no torch
    code = ("import sys; from archsearch.groundtruth.nb201 import NB201Table; NB201Table.load().index_of(0); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('archsearch.spaces')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
