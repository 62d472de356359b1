"""FLOPs and parameter counts against hand-computed formulas and the NAS-Bench-201 table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.diagnostics import count_flops, count_params, flops_by_module
from archsearch.errors import ShapeError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.spaces import get_space


@pytest.fixture(autouse=True)
def _one_thread():
    # many small forwards: one thread is several times faster on a shared, loaded machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_conv_linear_pool_bn_relu_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=True),  # out 8 x 5 x 5
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.MaxPool2d(2),  # out 8 x 2 x 2
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    conv1 = 3 * 9 * 8 * 25 + 8 * 25  # MACs + bias
    bn, relu = 2 * 200, 200
    conv2 = (8 // 4) * 9 * 8 * 25  # grouped, no bias
    avg, mx = 9 * 200, 4 * 32
    adaptive = 4 * 8  # one per input element
    fc = 8 * 5 + 5
    expected = conv1 + bn + relu + conv2 + avg + mx + adaptive + fc
    assert count_flops(net, (1, 3, 10, 10)) == expected
    assert count_flops(net, (4, 3, 10, 10)) == expected  # per image whatever the batch
    assert set(flops_by_module(net, (1, 3, 10, 10))) == {"0", "1", "2", "3", "4", "5", "6", "8"}


def test_count_keeps_training_mode_and_rejects_bad_shapes():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.5))
    net.train()
    count_flops(net, (1, 1, 5, 5))
    assert net.training
    with pytest.raises(ShapeError):
        count_flops(net, (1,))


def test_params_exclude_auxiliary():
    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 3)  # 15
            self.auxiliary_head = nn.Linear(4, 7)  # 35

    assert count_params(WithAux()) == 15
    assert count_params(WithAux(), exclude=()) == 50


# ---- NAS-Bench-201 ------------------------------------------------------------------------------
# The table's column is 7.943872 + 4.36224 #conv1x1 + 35.81952 #conv3x3 + 1.29024 #avgpool (MFLOPs).
# Per op the table charges conv MACs + 3 C*H*W (= ReLU 1 + BN 2 here) and 9 C*H*W per 3x3 average pool,
# which this counter reproduces exactly. Its skeleton term (stem, reduction blocks, head) is 1,078
# FLOPs below the table's constant: see docs/training.md ("FLOPs").
SKELETON_GAP = 1078


def _sample(table: NB201Table) -> list[int]:
    rng = np.random.default_rng(0)
    picks = [int(i) for i in rng.choice(len(table), 50, replace=False)]
    for op in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"):
        picks.append(table.index_of("+".join("|" + "|".join(f"{op}~{j}" for j in range(n)) + "|" for n in (1, 2, 3))))
    return picks


def test_nb201_flops_follow_the_table_formula_and_params_match():
    table = NB201Table.load()
    space = get_space("nb201")
    flops_col, params_col = table.column("flops_c10_M_formula"), table.column("params_c10_M")
    ours, theirs = [], []
    for i in _sample(table):
        net = space.network(table.arch_strs[i], num_classes=10)
        assert count_params(net) == round(params_col[i] * 1e6)  # exact, from the benchmark
        ours.append(count_flops(net, (1, 3, 32, 32)))
        theirs.append(round(flops_col[i] * 1e6))
    ours, theirs = np.array(ours), np.array(theirs)
    # every cell-dependent part is exact: differences between any two architectures agree
    np.testing.assert_array_equal(ours - ours[0], theirs - theirs[0])
    np.testing.assert_array_equal(theirs - ours, SKELETON_GAP)
    np.testing.assert_allclose(ours, theirs, rtol=1.5e-4)
