"""The NASNet space against published facts (parameter counts), hand-counted ops and properties of its genotypes."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from archsearch.cli import main
from archsearch.diagnostics.flops import count_params
from archsearch.errors import ConfigError, InvalidGenotypeError, UnknownNameError
from archsearch.evaluate import get_recipe, train
from archsearch.report import draw_cells
from archsearch.spaces import get_space
from archsearch.spaces.nasnet import NasnetSpace
from archsearch.spaces.nasnet_genotypes import (
    ENAS, NASNET_A, PNASNET_5, PUBLISHED, PUBLISHED_PARAMS_M, NasnetGenotype, derived_concat,
)
from archsearch.spaces.nasnet_network import NASNetCIFAR
from archsearch.spaces.nasnet_ops import ENAS_OPS, OPS, make_op
from archsearch.strategies import make_strategy

SPACE = NasnetSpace()
TINY = dict(C=4, N=1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- parameter counts: published figures ------------------------------------------------------
#: measured with `archsearch info NAME --space nasnet` (docs/spaces-nasnet.md)
MEASURED = {"NASNET_A": 3_346_538, "AMOEBANET_A": 3_218_266, "PNASNET_5": 3_189_082, "ENAS": 3_894_372}


@pytest.mark.parametrize("name", ["NASNET_A", "AMOEBANET_A", "PNASNET_5"])
def test_published_cells_have_their_papers_parameter_counts_within_5_percent(name):
    with torch.device("meta"):
        net = SPACE.network(name)
    params = count_params(net)  # without the auxiliary head, as the papers report
    assert params == MEASURED[name]
    assert abs(params / (PUBLISHED_PARAMS_M[name] * 1e6) - 1) < 0.05


def test_enas_is_the_released_scripts_network_which_is_smaller_than_the_papers_4_6m():
    # melodyguan/enas cifar10_micro_final.sh builds 3.89M parameters (its own count also leaves the
    # auxiliary head out); the paper's Table 2 says 4.6M: see docs/spaces-nasnet.md
    with torch.device("meta"):
        net = SPACE.network("ENAS")
    assert count_params(net) == MEASURED["ENAS"]
    assert net.skeleton == "enas" and len(net.cells) == 17  # --child_num_layers=15 plus 2 reductions


def test_info_prints_the_published_settings_count(capsys):
    assert main(["info", "PNASNET_5", "--space", "nasnet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == MEASURED["PNASNET_5"]


# ---- ops against hand counts (transcriptions of the TF code's layers) -----------------------------
@pytest.mark.parametrize("k", [3, 5, 7])
def test_separable_conv_is_two_relu_depthwise_pointwise_bn_blocks(k):
    c = 6
    # each of the 2 layers: depthwise k*k*c, pointwise c*c, BN 2c
    assert n_params(make_op(f"sep_conv_{k}x{k}", c, c, 1)) == 2 * (k * k * c + c * c + 2 * c)


def test_amoebanet_conv_ops_have_the_bottleneck():
    c = 16  # bottleneck F/4 = 4, 3F/8 = 6 for 1x3-3x1
    assert n_params(make_op("conv_1x7_7x1", c, c, 1)) == (c * 4 + 8) + (7 * 4 * 4 + 8) + (7 * 4 * 4 + 8) + (4 * c + 2 * c)
    assert n_params(make_op("conv_1x3_3x1", c, c, 1)) == (c * 6 + 12) + (3 * 6 * 6 + 12) * 2 + (6 * c + 2 * c)
    assert n_params(make_op("conv_3x3", c, c, 1)) == (c * 4 + 8) + (9 * 4 * 4 + 8) + (4 * c + 2 * c)
    assert n_params(make_op("conv_1x1", c, c, 2)) == c * c + 2 * c
    assert n_params(make_op("conv_3x3", 3, 3, 1)) == 9 * 3 * 3 + 6  # F/4 < 1: no bottleneck


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_maps_c_in_to_c_out_and_strides(op, stride):
    x = torch.randn(2, 6, 8, 8)
    y = make_op(op, 6, 4, stride)(x)
    assert y.shape == (2, 4, 8 // stride, 8 // stride)


def test_identity_is_parameter_free_unless_it_must_stride():
    assert isinstance(make_op("skip_connect", 4, 4, 1), torch.nn.Identity)
    assert n_params(make_op("skip_connect", 4, 4, 2)) == 4 * 4 + 8  # NASNet: ReLU, strided 1x1, BN
    assert n_params(make_op("skip_connect", 4, 4, 2, identity_reduce="factorized")) == 2 * (4 * 2) + 8  # ENAS


# ---- the network ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_networks_forward_on_tiny_sizes(name):
    net = SPACE.network(name, num_classes=7, in_channels=1, **TINY)
    net.train()
    logits, aux = net(torch.randn(2, 1, 8, 8))
    assert logits.shape == aux.shape == (2, 7)
    net.eval()
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 7)


def test_skeletons_place_cells_and_auxiliary_head_as_their_references():
    nasnet = NASNetCIFAR(NASNET_A, C=4, N=2)
    assert [c.reduction for c in nasnet.cells] == [False, False, True, False, False, True, False, False]
    assert nasnet.cells[nasnet.aux_index + 1].reduction  # the cell before the second reduction (nasnet.py)
    pnas = NASNetCIFAR(PNASNET_5, C=4, N=2, skeleton="pnasnet")
    assert [c.reduction for c in pnas.cells] == [False, False, True, False, True, False]  # 3N cells
    assert pnas.cells[pnas.aux_index + 1].reduction
    enas = NASNetCIFAR(ENAS, C=4, N=2, skeleton="enas")
    assert enas.cells[enas.aux_index - 1].reduction  # the cell after the second reduction (micro_child.py)
    with pytest.raises(ConfigError, match="skeleton"):
        NASNetCIFAR(ENAS, skeleton="amoeba")


def test_cell_output_concatenates_the_listed_states_each_brought_to_the_last_blocks_width():
    # NASNet-A's normal cell concatenates h_{i-2} and the 5 blocks: 6F ("6 @ 768": 6 x 128 in stage 3)
    with torch.device("meta"):
        net = NASNetCIFAR(NASNET_A, C=32, N=6)
    assert net.classifier.in_features == 768
    assert net.cells[7].out_channels == 6 * 64  # stage 2 normal cell
    assert net.cells[6].out_channels == 4 * 64  # the reduction cell concatenates blocks 3..6


def test_scheduled_drop_path_grows_with_depth():
    net = SPACE.network(NASNET_A, **TINY, drop_path_prob=0.3)
    seen = []
    for cell in net.cells:
        cell.forward = (lambda f: lambda s0, s1, p: seen.append(p) or f(s0, s1, p))(cell.forward)
    net.train()
    net(torch.randn(2, 3, 8, 8))
    total = len(net.cells)
    assert seen == pytest.approx([0.3 * (i + 1) / total for i in range(total)])


# ---- genotypes: text, sampling, moves, encoding ---------------------------------------------------
genotypes = st.integers(0, 2**32 - 1).map(SPACE.sample)


@settings(max_examples=60, deadline=None)
@given(genotypes)
def test_text_round_trip(genotype):
    text = SPACE.to_string(genotype)
    assert SPACE.from_string(text) == genotype
    assert SPACE.to_string(SPACE.from_string(text)) == text


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_names_and_their_text(name):
    genotype = SPACE.from_string(name)
    assert genotype == PUBLISHED[name] and SPACE.from_string(SPACE.to_string(genotype)) == genotype


@pytest.mark.parametrize("text, match", [
    ("NASNET_B", "NASNET_A"),
    ("Genotype(normal=[('sep_conv_3x3', 0)])", "missing field"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('nope', 1)], normal_concat=[2], reduce=[('sep_conv_3x3', 0), "
     "('sep_conv_3x3', 1)], reduce_concat=[2])", "unknown NASNet op"),
    ("Genotype(normal=[('sep_conv_3x3', 2), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[('sep_conv_3x3', 0), "
     "('sep_conv_3x3', 1)], reduce_concat=[2])", "states 0..1"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[3], reduce=[('sep_conv_3x3', 0), "
     "('sep_conv_3x3', 1)], reduce_concat=[2])", "normal_concat"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[('sep_conv_3x3', 0), "
     "('sep_conv_3x3', 1)], reduce_concat=[2], normal_combine=['mul'])", "normal_combine"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[], "
     "reduce_concat=[2])", "reduce cell has 0 edges"),
    ("Genotype(normal=__import__('os'), normal_concat=[2], reduce=[], reduce_concat=[2])", "literal"),
    ("Genotype(normal=[], normal_concat=range(10**9), reduce=[], reduce_concat=[2])", "small integers"),
    ("Genotype(", "bad NASNet genotype"),
])
def test_malformed_text_is_an_invalid_genotype_error(text, match):
    with pytest.raises(InvalidGenotypeError, match=match):
        SPACE.from_string(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_is_an_invalid_genotype_error(text):
    try:
        genotype = SPACE.from_string(text)
    except InvalidGenotypeError:
        return
    assert isinstance(genotype, NasnetGenotype)


def test_a_non_genotype_is_refused():
    with pytest.raises(InvalidGenotypeError, match="NasnetGenotype"):
        SPACE.encode(("sep_conv_3x3", 0))


ANYTHING = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=20), st.binary(max_size=5),
                     st.lists(st.integers(), max_size=4), st.tuples(st.text(max_size=3), st.integers()))


@settings(max_examples=80, deadline=None)
@given(ANYTHING, st.sampled_from(["network", "to_string", "encode", "cell_edges", "to_choices", "neighbours"]))
def test_an_object_that_is_no_genotype_is_refused(value, method):
    with pytest.raises((InvalidGenotypeError, UnknownNameError)):
        getattr(SPACE, method)(value)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.integers(-3, 20), st.booleans(), st.floats(), st.text(max_size=2)), max_size=60))
def test_from_choices_builds_a_genotype_or_refuses(choices):
    try:
        genotype = SPACE.from_choices(choices)
    except InvalidGenotypeError:
        return
    assert SPACE.to_choices(genotype) == choices


BAD_SIZE = st.one_of(st.integers(max_value=0), st.booleans(), st.floats(), st.text(max_size=3), st.just([16]))


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.tuples(st.sampled_from(["C", "N", "num_classes", "in_channels"]), BAD_SIZE),
                 st.tuples(st.just("drop_path_prob"), st.one_of(st.floats(min_value=1.0), st.just(-0.1))),
                 st.tuples(st.just("C"), st.sampled_from([3, 5, 7]))))
def test_a_bad_network_size_is_a_config_error(key_value):
    key, value = key_value
    with pytest.raises(ConfigError, match=key):
        SPACE.network(ENAS, **{key: value})


@settings(max_examples=30, deadline=None)
@given(genotypes, st.integers(0, 2**32 - 1))
def test_mutation_is_one_neighbour_one_decision_away(genotype, seed):
    neighbours = SPACE.neighbours(genotype)
    assert len(set(neighbours)) == len(neighbours) and genotype not in neighbours
    assert SPACE.mutate(genotype, seed) in neighbours
    base = SPACE.to_choices(genotype)
    for other in neighbours[::7]:
        assert sum(a != b for a, b in zip(base, SPACE.to_choices(other))) == 1


@settings(max_examples=60, deadline=None)
@given(genotypes)
def test_choices_round_trip_and_concat_is_the_unused_blocks(genotype):
    choices = SPACE.to_choices(genotype)
    assert len(choices) == SPACE.choice_shape[0] == len(SPACE.choice_sizes())
    assert all(0 <= c < n <= SPACE.choice_shape[1] for c, n in zip(choices, SPACE.choice_sizes()))
    assert SPACE.from_choices(choices) == genotype
    for cell in ("normal", "reduce"):
        used = {source for _, source in genotype.cell(cell)}
        assert set(genotype.concat(cell)) == set(range(2, 7)) - used


def test_from_choices_refuses_an_input_a_block_cannot_take():
    choices = SPACE.to_choices(SPACE.sample(0))
    choices[0] = 2  # block 0 reads states 0 and 1 only
    with pytest.raises(InvalidGenotypeError, match="choice 0"):
        SPACE.from_choices(choices)


@settings(max_examples=30, deadline=None)
@given(genotypes, genotypes)
def test_encoding_has_a_fixed_length_and_one_hot_groups(a, b):
    ea, eb = SPACE.encode(a), SPACE.encode(b)
    assert ea.shape == eb.shape
    # per cell: 10 edges x (input one-hot + op one-hot) + 5 combination one-hots = 25 ones, plus the concat mask
    ones = 2 * (10 * 2 + 5) + len(a.normal_concat) + len(a.reduce_concat)
    assert float(ea.sum()) == ones


def test_sampling_draws_each_input_and_op_uniformly():
    draws = [SPACE.sample(seed) for seed in range(1500)]
    inputs = Counter(g.normal[6][1] for g in draws)  # block 3 takes states 0..4
    assert sorted(inputs) == [0, 1, 2, 3, 4] and chisquare(list(inputs.values())).pvalue > 1e-3
    ops = Counter(g.reduce[3][0] for g in draws)
    assert len(ops) == len(OPS) and chisquare(list(ops.values())).pvalue > 1e-3


def test_size_counts_distinct_genotypes_by_enumeration():
    space = NasnetSpace(ops=("skip_connect", "avg_pool_3x3"), combines=("add", "concat"), blocks=2)
    decisions = [range(n) for n in space.choice_sizes()]
    half = len(decisions) // 2  # both cells enumerate alike: count the distinct cells of one and square
    distinct = {space.from_choices(list(c) * 2) for c in itertools.product(*decisions[:half])}
    assert len(distinct) ** 2 == space.size() == (26 * 57) ** 2  # blocks: m = 4, 6: m(m+1)/2 + m^2


def test_space_options_restrict_ops_and_combinations():
    enas = get_space("nasnet", ops=ENAS_OPS, combines=("add",))
    assert enas.choice_shape == (40, 6) and enas.to_choices(ENAS)[:4] == [0, 2, 0, 0]  # cifar10_micro_final.sh
    assert enas.from_choices(enas.to_choices(ENAS)) == ENAS
    with pytest.raises(InvalidGenotypeError, match="not among this space's ops"):
        enas.encode(NASNET_A)
    with pytest.raises(ConfigError, match="ops"):
        get_space("nasnet", ops=("sep_conv_9x9",))
    with pytest.raises(ConfigError, match="no supernet"):
        SPACE.supernet()


def test_derived_concat_is_the_blocks_no_block_reads():
    assert derived_concat(PNASNET_5.normal) == (2, 3, 5, 6)  # block 2's output feeds block 3


# ---- search, training, drawing ----------------------------------------------------------------------
def test_reinforce_samples_only_inputs_a_block_can_take():
    strategy = make_strategy("reinforce", SPACE, seed=0, controller="categorical")
    for value in (10.0, 60.0, 30.0, 90.0, 50.0):
        strategy.tell(strategy.ask(), value)  # from_choices refuses any input a block cannot take
    probs = torch.softmax(strategy.controller.logits.detach() + strategy.controller.mask, -1)
    assert float(probs[0, 2:].sum()) == 0.0  # block 0's first input: states 0 and 1 only


def test_train_smoke_on_the_embedded_digits(tmp_path):
    recipe = get_recipe("nasnet", epochs=1, batch_size=64, network={"C": 4, "N": 1})
    result = train("NASNET_A", "nasnet", "digits", recipe, out_dir=tmp_path / "nasnet", quiet=True)
    assert result["completed"] and 0 <= result["test_accuracy"] <= 100
    assert (tmp_path / "nasnet" / "result.json").exists()


def test_cli_train_uses_the_nasnet_recipe(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "ENAS", "--space", "nasnet", "--C", "4", "--N", "1", "epochs=1", "batch_size=64",
                 "--out", str(out), "--json"]) == 0
    config = (out / "config.yaml").read_text()
    assert "name: nasnet" in config and "drop_path_prob: 0.4" in config


def test_draw_both_cells(tmp_path):
    axes = draw_cells(SPACE, NASNET_A, tmp_path / "nasnet.png")
    assert [ax.get_title() for ax in axes] == ["normal cell", "reduce cell"]
    labels = [t.get_text() for t in axes[0].texts]
    assert sum(label in OPS for label in labels) == 10
