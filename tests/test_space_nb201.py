"""NAS-Bench-201 space: codec, moves, networks, against the benchmark's own facts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from archsearch.errors import InvalidGenotypeError
from archsearch.groundtruth.nb201 import NB201Table
from archsearch.spaces.supernet import OpWeights
from archsearch.spaces import NB201Genotype, get_space
from archsearch.spaces.nb201 import OPS

SPACE = get_space("nb201")
TABLE = NB201Table.load()


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_every_benchmark_string_round_trips():
    for arch in TABLE.arch_strs:
        assert SPACE.to_string(SPACE.from_string(arch)) == arch


def test_enumeration_is_the_benchmark_set():
    enumerated = {SPACE.to_string(g) for g in SPACE.enumerate()}
    assert len(enumerated) == SPACE.size() == 15625
    assert enumerated == set(TABLE.arch_strs)


def test_index_is_the_benchmark_index():
    for i in (0, 1, 6111, 15624):
        assert SPACE.index(SPACE.from_string(TABLE.arch_strs[i])) == i


@pytest.mark.parametrize("bad, fragment", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "3 nodes"),
    ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown NAS-Bench-201 op 'conv_7x7'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 incoming edges"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must be '|op~j|...|'"),
    ("", "expected 3 nodes"),
])
def test_bad_strings_raise_one_clear_error(bad, fragment):
    with pytest.raises(InvalidGenotypeError, match=fragment.replace("|", r"\|").replace("(", r"\(")):
        SPACE.from_string(bad)


def test_genotypes_are_immutable_and_hashable():
    g = SPACE.sample(0)
    assert hash(g) == hash(NB201Genotype(tuple(g.ops)))
    with pytest.raises(Exception):
        g.ops = ("none",) * 6


def test_sample_is_seeded_and_covers_the_ops():
    assert SPACE.sample(3) == SPACE.sample(3)
    rng = np.random.default_rng(0)
    seen = {op for _ in range(50) for op in SPACE.sample(rng).ops}
    assert seen == set(OPS)


def test_mutate_changes_exactly_one_edge():
    rng = np.random.default_rng(1)
    g = SPACE.sample(rng)
    for _ in range(100):
        m = SPACE.mutate(g, rng)
        assert sum(a != b for a, b in zip(g.ops, m.ops)) == 1
        g = m


def test_neighbours_are_all_one_edge_changes():
    g = SPACE.sample(2)
    neighbours = SPACE.neighbours(g)
    assert len(neighbours) == 6 * 4 == len(set(neighbours))
    assert all(sum(a != b for a, b in zip(g.ops, n.ops)) == 1 for n in neighbours)


def test_encode_is_one_hot_per_edge():
    g = SPACE.from_string(TABLE.arch_strs[6111])
    code = SPACE.encode(g).view(6, 5)
    assert torch.equal(code.sum(dim=1), torch.ones(6))
    assert [OPS[i] for i in code.argmax(dim=1).tolist()] == list(g.ops)


def _extremes():
    return [NB201Genotype((op,) * 6) for op in OPS]


def test_parameter_counts_match_the_benchmark():
    """Oracle: the table's params_c10_M (C=16, N=5, 10 classes), a random 50 and the extremes."""
    rng = np.random.default_rng(0)
    indices = list(rng.choice(len(TABLE), size=50, replace=False))
    genotypes = [SPACE.from_string(TABLE.arch_strs[i]) for i in indices] + _extremes()
    params = TABLE.column("params_c10_M")
    for g in genotypes:
        expected = params[TABLE.index_of(SPACE.to_string(g))] * 1e6
        assert abs(n_params(SPACE.network(g)) - expected) <= 0.005 * expected


def test_parameter_count_other_heads():
    g = SPACE.from_string(TABLE.arch_strs[6111])
    assert n_params(SPACE.network(g, num_classes=100)) == pytest.approx(TABLE.query(6111, "cifar100").params_M * 1e6, rel=5e-3)
    assert n_params(SPACE.network(g, num_classes=120)) == pytest.approx(TABLE.query(6111, "ImageNet16-120").params_M * 1e6, rel=5e-3)


def test_network_forward_shapes_and_grey_input():
    g = SPACE.sample(0)
    assert SPACE.network(g, C=4, N=1)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert SPACE.network(g, C=4, N=1, num_classes=7, in_channels=1)(torch.randn(3, 1, 8, 8)).shape == (3, 7)


def test_supernet_matches_the_reference_structure():
    """NB201-SUPERNET.md: xautodl's TinyNetworkDarts has 1,692,826 weights and 14,170 BN buffer
    elements at C=16, N=5 with BN running stats on; one (6, 5) alpha shared by all cells."""
    net = SPACE.supernet()
    assert sum(p.numel() for p in net.weight_parameters()) == 1_692_826
    assert sum(b.numel() for b in net.buffers()) == 14_170
    assert [tuple(a.shape) for a in net.arch_parameters()] == [(6, 5)]
    ids = {id(p) for p in net.arch_parameters()} | {id(p) for p in net.weight_parameters()}
    assert len(ids) == len(list(net.parameters()))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    without_stats = SPACE.supernet(track_running_stats=False)
    assert sum(b.numel() for b in without_stats.buffers()) < 14_170


def test_supernet_with_one_hot_weights_is_the_discrete_cell():
    """A supernet whose weights are one-hot on a genotype computes that genotype's cell function
    (same ops, same weights copied): the mixed op is a faithful superposition."""
    g = NB201Genotype(("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1", "skip_connect"))

    class OneHot(OpWeights):
        def __call__(self, alpha):
            return torch.stack([torch.eye(5)[OPS.index(op)] for op in g.ops])

    torch.manual_seed(0)
    sup = SPACE.supernet(relaxation=OneHot(), C=4, N=1, track_running_stats=False)
    x = torch.randn(4, 3, 16, 16)
    out_sup = sup(x)

    # Build the same function by hand: node i = sum_j op_{i<-j}(node j), skipping none.
    cell = sup.net.cells[0]
    h = sup.net.stem(x)
    nodes = [h]
    k = 0
    for target in range(1, 4):
        total = 0
        for source in range(target):
            op_index = OPS.index(g.ops[k])
            if g.ops[k] != "none":
                total = total + cell.edges[k].ops[op_index](nodes[source])
            k += 1
        nodes.append(total)
    h = nodes[-1]
    for block in sup.net.cells[1:]:
        if hasattr(block, "edges"):
            h = block(h, OneHot()(None), None)
        else:
            h = block(h)
    assert torch.allclose(out_sup, sup.net.classify(h), atol=1e-6)


def test_genotype_from_weights_excludes_none():
    w = torch.zeros(6, 5)
    w[:, 0] = 10.0  # none strongest everywhere
    w[:, 3] = 5.0
    w[2, 1] = 6.0
    g = SPACE.genotype_from_weights({"cell": w})
    assert g.ops == ("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3")


def test_all_ops_products_are_distinct_genotypes():
    assert len({NB201Genotype(ops) for ops in itertools.product(OPS, repeat=2 * 3)}) == 5 ** 6


def test_choices_are_one_op_index_per_edge():
    assert SPACE.choice_shape == (6, 5)
    for genotype in itertools.islice(SPACE.enumerate(), 0, 15625, 997):
        choices = SPACE.to_choices(genotype)
        assert choices == [OPS.index(op) for op in genotype.ops]
        assert SPACE.from_choices(choices) == genotype
    # DARTS: per node two inputs, then an op for each (ENAS' micro decisions), at most 7 choices
    assert get_space("darts").choice_shape == (32, 7)
