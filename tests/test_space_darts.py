"""The DARTS CNN space against published facts (parameter counts), exact hand-built cases and properties."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from archsearch.errors import ConfigError, InvalidGenotypeError, ShapeError, UnknownNameError
from archsearch.spaces.supernet import OpWeights
from archsearch.spaces import get_space
from archsearch.spaces.darts import DartsGenotype, DartsSpace
from archsearch.spaces.darts_ops import OPS
from archsearch.spaces.ops import drop_path

SPACE = DartsSpace()
NON_NONE = [op for op in OPS if op != "none"]
SMALL = dict(C=8, layers=5)  # reductions at cells 1 and 3, auxiliary head after cell 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors here are tiny: intra-op threads only add synchronisation (tenfold on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def params_without_aux(net: torch.nn.Module) -> int:
    # quark0/darts train.py reports the model size without the auxiliary head's parameters
    return sum(p.numel() for name, p in net.named_parameters() if not name.startswith("auxiliary_head"))


def edge_changes(a: DartsGenotype, b: DartsGenotype) -> int:
    """Number of edges of ``a`` not in ``b``, comparing each node's edges as a multiset."""
    changed = 0
    for cell in ("normal", "reduce"):
        ea, eb = a.cell(cell), b.cell(cell)
        for node in range(4):
            left = Counter(ea[2 * node: 2 * node + 2])
            right = Counter(eb[2 * node: 2 * node + 2])
            changed += sum((left - right).values())
    return changed


# ---- parameter counts: published figures ------------------------------------------------------
def test_darts_v2_cifar_parameter_count_is_the_reference_3_349342_m():
    net = SPACE.network("DARTS_V2", num_classes=10, C=36, layers=20, auxiliary=True)
    # quark0/darts' eval log prints "param size = 3.349342MB"; the paper (Table 1) reports 3.3M
    assert params_without_aux(net) == 3_349_342


def test_darts_v1_differs_from_v2_by_exactly_one_dil_conv_per_normal_cell():
    v1 = params_without_aux(SPACE.network("DARTS_V1"))
    # V2's normal cell swaps one skip_connect of V1 for a dil_conv_3x3 (depthwise 3x3: 9C, pointwise: C^2,
    # BN: 2C); 20 cells at C=36 have 6 normal cells at each of 36, 72 and 144 channels.
    dil_conv = sum(6 * (9 * c + c * c + 2 * c) for c in (36, 72, 144))
    assert v1 == 3_349_342 - dil_conv
    assert abs(v1 / 1e6 - 3.3) / 3.3 < 0.05  # the paper rounds the first-order model to 3.3M as well


def test_darts_v2_imagenet_parameter_count_is_4_7_m():
    net = SPACE.network("DARTS_V2", num_classes=1000, variant="imagenet")  # C=48, 14 cells by default
    assert abs(params_without_aux(net) / 1e6 - 4.7) / 4.7 < 0.02  # DARTS paper, Table 3


@pytest.mark.parametrize(
    "name, cifar_m, imagenet_m",
    [("PC_DARTS", 3.6, 5.3), ("PDARTS", 3.4, 4.9), ("GDAS", 3.4, None)],  # each paper's tables
)
def test_other_published_cells_match_their_papers_parameter_counts(name, cifar_m, imagenet_m):
    assert round(params_without_aux(SPACE.network(name)) / 1e6, 1) == cifar_m
    if imagenet_m is not None:
        net = SPACE.network(name, num_classes=1000, variant="imagenet")
        assert round(params_without_aux(net) / 1e6, 1) == imagenet_m


# ---- forward passes ---------------------------------------------------------------------------
def test_cifar_network_returns_aux_logits_in_training_and_logits_in_eval():
    torch.manual_seed(0)
    net = SPACE.network("DARTS_V2", num_classes=7, **SMALL)
    x = torch.randn(2, 3, 32, 32)
    net.train()
    logits, aux = net(x)
    assert logits.shape == (2, 7) and aux.shape == (2, 7)
    net.eval()
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)


def test_without_auxiliary_head_training_returns_logits_only():
    net = SPACE.network("DARTS_V1", auxiliary=False, **SMALL).train()
    out = net(torch.randn(2, 3, 16, 16))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert not any("auxiliary" in name for name, _ in net.named_parameters())


@pytest.mark.parametrize("size", [8, 7])  # 8x8 digits: 8 -> 4 -> 2; odd sizes round up
def test_single_channel_small_images(size):
    net = SPACE.network("PDARTS", in_channels=1, **SMALL).train()
    logits, aux = net(torch.randn(3, 1, size, size))
    assert logits.shape == (3, 10) and aux.shape == (3, 10)


def test_imagenet_network_forward_shapes():
    net = SPACE.network("DARTS_V2", num_classes=20, variant="imagenet", **SMALL).train()
    logits, aux = net(torch.randn(2, 3, 64, 64))  # stems: 64 -> 8; cells: 8 -> 4 -> 2
    assert logits.shape == (2, 20) and aux.shape == (2, 20)
    assert net.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 20)


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest():
    torch.manual_seed(0)
    x = torch.rand(400, 2, 3, 3) + 1.0
    out = drop_path(x, 0.25)
    kept = (out != 0).flatten(1).all(dim=1)
    dropped = (out == 0).flatten(1).all(dim=1)
    assert bool((kept | dropped).all())
    torch.testing.assert_close(out[kept], x[kept] / 0.75)
    assert 0.15 < dropped.float().mean().item() < 0.35


def test_drop_path_changes_training_output_but_not_eval_output():
    torch.manual_seed(0)
    net = SPACE.network("DARTS_V2", auxiliary=False, **SMALL)
    x = torch.randn(4, 3, 16, 16)
    net.train()
    base = net(x)
    torch.testing.assert_close(net(x), base)  # training forward is deterministic without drop-path
    net.drop_path_prob = 0.5
    assert not torch.allclose(net(x), base)
    net.eval()
    net.drop_path_prob = 0.0
    reference = net(x)
    net.drop_path_prob = 0.5
    torch.testing.assert_close(net(x), reference)


def test_wrong_input_channels_and_odd_channel_counts_are_reported():
    net = SPACE.network("DARTS_V2", **SMALL)
    with pytest.raises(ShapeError, match="in_channels"):
        net(torch.randn(1, 1, 8, 8))
    with pytest.raises(ConfigError, match="even"):
        SPACE.network("DARTS_V2", C=7, layers=5)
    with pytest.raises(ConfigError, match="variant"):
        SPACE.network("DARTS_V2", variant="mnist")


# ---- text format ------------------------------------------------------------------------------
def genotypes():
    """Any genotype of the space's type, including 'none' ops and edges in either order."""
    def cell():
        nodes = [
            st.tuples(st.sampled_from(OPS), st.sampled_from(OPS), st.permutations(range(k + 2)))
            for k in range(4)
        ]
        return st.tuples(*nodes).map(lambda ns: tuple(e for a, b, p in ns for e in ((a, p[0]), (b, p[1]))))

    concat = st.lists(st.sampled_from([2, 3, 4, 5]), min_size=1, max_size=4, unique=True).map(tuple)
    return st.builds(DartsGenotype, cell(), concat, cell(), concat)


@settings(max_examples=60, deadline=None)
@given(genotypes())
def test_text_round_trip_of_any_genotype(genotype):
    text = SPACE.to_string(genotype)
    back = SPACE.from_string(text)
    assert back == genotype and SPACE.to_string(back) == text


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_text_round_trip_of_sampled_genotypes(seed):
    genotype = SPACE.sample(seed)
    assert SPACE.from_string(SPACE.to_string(genotype)) == genotype
    assert SPACE.to_string(SPACE.from_string(SPACE.to_string(genotype))) == SPACE.to_string(genotype)


# quark0/darts' DARTS_V2, as its genotypes.py prints it
DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def test_published_genotypes_print_as_the_reference_and_round_trip():
    assert SPACE.to_string(SPACE.named("DARTS_V2")) == DARTS_V2_TEXT
    assert SPACE.from_string("DARTS_V2") == SPACE.from_string(DARTS_V2_TEXT) == SPACE.named("DARTS")
    for name in ("DARTS_V1", "DARTS_V2", "PC_DARTS", "PDARTS", "GDAS"):
        genotype = SPACE.named(name)
        assert SPACE.to_string(SPACE.from_string(SPACE.to_string(genotype))) == SPACE.to_string(genotype)


def test_range_concat_and_multiline_text_are_accepted():
    # P-DARTS' genotypes.py writes concat as range(2, 6) and splits lines
    text = """Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0),('sep_conv_3x3', 1),
        ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3',0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6),
        reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2),
        ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)],
        reduce_concat=range(2, 6))"""
    genotype = SPACE.from_string(text)
    assert genotype == SPACE.named("PDARTS")
    assert genotype.normal_concat == (2, 3, 4, 5)
    assert "normal_concat=[2, 3, 4, 5]" in SPACE.to_string(genotype)


def replace_in_v2(old: str, new: str) -> str:
    assert old in DARTS_V2_TEXT
    return DARTS_V2_TEXT.replace(old, new, 1)


@pytest.mark.parametrize(
    "text, message",
    [
        ("Genotype(normal=[('sep_conv_3x3', 0)", "syntax"),
        ("not a genotype at all", "syntax"),
        ("DARTS_V9", "DARTS_V2"),  # unknown name: lists the published ones
        (replace_in_v2("'dil_conv_3x3'", "'conv_7x1_1x7'"), "unknown DARTS op 'conv_7x1_1x7'.*sep_conv_5x5"),
        (replace_in_v2("('dil_conv_3x3', 2)], ", "], "), "has 7 edges.*needs 8"),
        (replace_in_v2("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "node 3.*inputs 0..4"),
        (replace_in_v2("('sep_conv_3x3', 1), ('sep_conv_3x3', 0)", "('sep_conv_3x3', 2), ('sep_conv_3x3', 0)"),
         "node 0.*inputs 0..1"),
        (replace_in_v2("('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "('sep_conv_3x3', 1), ('sep_conv_3x3', 1)"),
         "twice"),
        (replace_in_v2("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 6]"), "normal_concat"),
        (replace_in_v2("normal_concat=[2, 3, 4, 5]", "normal_concat=[]"), "normal_concat"),
        (replace_in_v2(", reduce_concat=[2, 3, 4, 5]", ""), "missing field.*reduce_concat"),
        (replace_in_v2("normal_concat=[2, 3, 4, 5]", "normal_concat=__import__('os')"), "literal"),
        (replace_in_v2("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0, 1.0)"), r"\(op, input\) pair"),
        ("print('hi')", "expected Genotype"),
    ],
)
def test_bad_strings_raise_invalid_genotype_with_what_was_wrong(text, message):
    with pytest.raises(InvalidGenotypeError, match=message):
        SPACE.from_string(text)


def test_unknown_published_name_via_named():
    with pytest.raises(UnknownNameError, match="DARTS_V2"):
        SPACE.named("DARTS_V3")


def test_edge_order_within_a_node_does_not_change_identity():
    swapped_text = replace_in_v2("('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "('sep_conv_3x3', 1), ('sep_conv_3x3', 0)")
    swapped = SPACE.from_string(swapped_text)
    v2 = SPACE.named("DARTS_V2")
    assert swapped == v2 and hash(swapped) == hash(v2)
    assert SPACE.to_string(swapped) == swapped_text  # the printed order is kept
    assert torch.equal(SPACE.encode(swapped), SPACE.encode(v2))
    moved = SPACE.from_string(replace_in_v2("('dil_conv_3x3', 2)", "('dil_conv_3x3', 1)"))
    assert moved != v2


# ---- sampling and local moves -----------------------------------------------------------------
def test_size_is_the_count_of_two_cells_of_input_pairs_and_ops():
    # per cell: C(2,2) C(3,2) C(4,2) C(5,2) = 1*3*6*10 input pairs, 7^2 op pairs for each of the 4 nodes
    per_cell = 1 * 3 * 6 * 10 * 49**4
    assert SPACE.size() == per_cell**2 == 1_076_746_950_455_072_400
    assert 1e18 < SPACE.size() < 1.1e18  # "10^18 architectures" (NAS-Bench-301, Siems et al.)


def test_sample_is_reproducible_and_stays_in_the_space():
    assert SPACE.sample(7) == SPACE.sample(np.random.default_rng(7))
    for seed in range(50):
        g = SPACE.sample(seed)
        assert all(op != "none" for cell in ("normal", "reduce") for op, _ in g.cell(cell))
        assert g == g.canonical() and g.normal_concat == g.reduce_concat == (2, 3, 4, 5)


def test_sample_is_uniform_over_input_pairs_and_ops_of_the_last_node():
    rng = np.random.default_rng(0)
    pairs, ops = Counter(), Counter()
    n = 2000
    for _ in range(n):
        edges = SPACE.sample(rng).normal[6:8]
        pairs[(edges[0][1], edges[1][1])] += 1
        ops.update(op for op, _ in edges)
    assert len(pairs) == math.comb(5, 2)
    assert chisquare(list(pairs.values())).pvalue > 1e-3
    assert set(ops) == set(NON_NONE) and chisquare([ops[o] for o in NON_NONE]).pvalue > 1e-3


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_neighbours_are_all_distinct_one_change_moves(seed):
    g = SPACE.sample(seed)
    neighbours = SPACE.neighbours(g)
    # per cell, node k (k+2 inputs): 2 edges x 6 other ops, and 2 edges x k unused inputs
    assert len(neighbours) == 2 * sum(12 + 2 * k for k in range(4)) == 120
    assert len(set(neighbours)) == 120 and g not in neighbours
    assert all(edge_changes(g, n) == 1 for n in neighbours)
    assert neighbours == SPACE.neighbours(g)  # fixed order
    mutant = SPACE.mutate(g, seed)
    assert edge_changes(g, mutant) == 1 and mutant in neighbours


def test_mutate_and_neighbours_of_a_published_cell_in_its_own_order():
    g = SPACE.named("DARTS_V2")
    for n in SPACE.neighbours(g):
        assert edge_changes(g.canonical(), n) == 1
    assert SPACE.mutate(g, 3) == SPACE.mutate(g, np.random.default_rng(3))


def test_encoding_is_one_hot_rows_of_the_alpha_layout():
    g = SPACE.named("DARTS_V2")
    code = SPACE.encode(g).reshape(2, 14, 8)
    assert code.sum() == 16 and set(code.unique().tolist()) == {0.0, 1.0}
    # normal node 3 takes ('skip_connect', 0) and ('dil_conv_3x3', 2): rows 9 + 0 and 9 + 2
    assert code[0, 9, OPS.index("skip_connect")] == 1 and code[0, 11, OPS.index("dil_conv_3x3")] == 1
    assert code[0, 9:14].sum() == 2
    codes = {tuple(SPACE.encode(n).tolist()) for n in SPACE.neighbours(g)}
    assert len(codes) == 120


# ---- supernet and the DARTS rule --------------------------------------------------------------
def test_supernet_shapes_and_parameter_groups():
    assert SPACE.arch_shapes() == {"normal": (14, 8), "reduce": (14, 8)}
    net = SPACE.supernet(num_classes=5, **SMALL)
    assert {k: tuple(v.shape) for k, v in net.named_arch_parameters().items()} == SPACE.arch_shapes()
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    arch = {id(p) for p in net.arch_parameters()}
    weights = {id(p) for p in net.weight_parameters()}
    assert arch.isdisjoint(weights) and arch | weights == {id(p) for p in net.parameters()}
    assert len(net.weight_parameters()) == len(list(net.parameters())) - 2
    digits = SPACE.supernet(in_channels=1, **SMALL)
    assert digits(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_supernet_pools_carry_a_batchnorm_and_search_bns_are_not_affine():
    net = SPACE.supernet(**SMALL)
    mixed = net.cells[0].edges[0]
    for name, op in zip(mixed.op_names, mixed.ops):
        if "pool" in name:
            assert isinstance(op[-1], torch.nn.BatchNorm2d)
    cell_bns = [m for m in net.cells.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert cell_bns and not any(m.affine for m in cell_bns)


class HardArgmax(OpWeights):
    """A one-hot relaxation with a straight-through gradient, to drive the supernet's hard path."""

    hard = True

    def __call__(self, alpha):
        onehot = torch.nn.functional.one_hot(alpha.argmax(-1), alpha.shape[-1]).to(alpha.dtype)
        return onehot + alpha - alpha.detach()


def test_hard_none_everywhere_gives_the_classifier_bias_in_every_cell_shape():
    net = SPACE.supernet(relaxation=HardArgmax(), **SMALL)
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.zero_()
            alpha[:, OPS.index("none")] = 1.0
    out = net(torch.randn(2, 3, 16, 16))  # stride-2 edges must still give the reduced shape
    torch.testing.assert_close(out, net.classifier.bias.expand(2, -1))
    out.sum().backward()
    assert all(a.grad is not None for a in net.arch_parameters())


def weight_matrix(best: dict[int, dict[str, float]]) -> torch.Tensor:
    w = torch.full((14, 8), 0.01)
    for row, values in best.items():
        for op, value in values.items():
            w[row, OPS.index(op)] = value
    return w


def test_genotype_from_weights_follows_the_darts_rule():
    # rows: node 0 <- 0,1 (0, 1); node 1 <- 0,1,2 (2-4); node 2 <- 0..3 (5-8); node 3 <- 0..4 (9-13)
    normal = weight_matrix({
        0: {"sep_conv_5x5": 0.3},
        1: {"none": 0.9, "skip_connect": 0.05},  # none is ignored, the best other op still wins the edge
        2: {"none": 0.99},  # strongest by none only: the weakest edge of node 1
        3: {"dil_conv_3x3": 0.5},
        4: {"max_pool_3x3": 0.6, "avg_pool_3x3": 0.59},
        5: {"sep_conv_3x3": 0.2},
        6: {"sep_conv_3x3": 0.21},
        7: {"skip_connect": 0.7},
        8: {"dil_conv_5x5": 0.1},
        13: {"avg_pool_3x3": 0.4},
        10: {"sep_conv_5x5": 0.4},  # a tie with row 13: the lower edge index comes first
    })
    reduce = weight_matrix({0: {"max_pool_3x3": 0.5}, 1: {"max_pool_3x3": 0.6}, 2: {"skip_connect": 0.2},
                            4: {"skip_connect": 0.3}, 5: {"max_pool_3x3": 0.2}, 8: {"skip_connect": 0.3},
                            11: {"skip_connect": 0.2}, 9: {"avg_pool_3x3": 0.1}})
    expected = DartsGenotype(
        normal=(("sep_conv_5x5", 0), ("skip_connect", 1), ("max_pool_3x3", 2), ("dil_conv_3x3", 1),
                ("skip_connect", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 1), ("avg_pool_3x3", 4)),
        normal_concat=(2, 3, 4, 5),
        reduce=(("max_pool_3x3", 1), ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 0),
                ("skip_connect", 3), ("max_pool_3x3", 0), ("skip_connect", 2), ("avg_pool_3x3", 0)),
        reduce_concat=(2, 3, 4, 5),
    )
    got = SPACE.genotype_from_weights({"normal": normal, "reduce": reduce})
    assert SPACE.to_string(got) == SPACE.to_string(expected)  # strongest edge of each node first
    with_none = SPACE.genotype_from_weights({"normal": normal, "reduce": reduce}, exclude=())
    assert with_none.normal[2:4] == (("none", 0), ("max_pool_3x3", 2))


def test_genotype_from_supernet_weights_and_bad_shapes():
    net = SPACE.supernet(**SMALL)
    g = SPACE.genotype_from_weights({k: torch.softmax(a, -1) for k, a in net.named_arch_parameters().items()})
    assert isinstance(g, DartsGenotype) and "none" not in SPACE.to_string(g)
    with pytest.raises(ShapeError, match=r"\(14, 8\)"):
        SPACE.genotype_from_weights({"normal": torch.zeros(14, 7), "reduce": torch.zeros(14, 8)})


def test_cell_edges_name_the_nodes_for_drawing():
    edges = SPACE.cell_edges("DARTS_V2")
    assert edges["normal"][7] == ("0", "3", "dil_conv_3x3")
    assert edges["reduce"][0] == ("c_{k-2}", "0", "max_pool_3x3")
    assert edges["reduce"][1] == ("c_{k-1}", "0", "max_pool_3x3")
    assert [e for e in edges["normal"] if e[1] == "c_{k}"] == [(str(n), "c_{k}", "concat") for n in range(4)]


def test_space_is_registered():
    assert isinstance(get_space("darts"), DartsSpace)


def test_the_shared_ops_keep_each_spaces_conv_bias():
    # one ReLUConvBN for both spaces: DARTS' convs never have a bias, NB201's exactly when its BN has no affine
    from archsearch.spaces.nb201_network import make_op as nb201_op
    from archsearch.spaces.ops import ReLUConvBN

    darts_pre = get_space("darts").supernet(C=4, layers=3).cells[0].preprocess1
    assert type(darts_pre) is ReLUConvBN and darts_pre[1].bias is None and not darts_pre[2].affine
    assert nb201_op("nor_conv_3x3", 4, affine=False, track_running_stats=False)[1].bias is not None
    assert nb201_op("nor_conv_3x3", 4, affine=True, track_running_stats=True)[1].bias is None
