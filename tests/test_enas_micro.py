"""ENAS on the DARTS and NASNet micro spaces: decisions, the controller's paths, the supernets, the preset.

Oracles: decisions drawn independently of the package and read back; a transcription of a controller that
samples each decision among its own choices only (melodyguan/enas micro_controller.py: a softmax over the
``layer_id`` inputs a block may take); the supernets' forward written out by hand, edge by edge, from the
reference's order (quark0/darts model_search.py for DARTS; micro_child.py ``_enas_layer`` for NASNet), on
the supernet's own modules.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.distributions import Categorical

from archsearch.errors import ConfigError, InvalidGenotypeError
from archsearch.relax import build_relaxation
from archsearch.search.estimators import path_logits
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.selectors.shared_weights import FixedPath, path_weights
from archsearch.spaces import get_space
from archsearch.spaces.nasnet_supernet import row_of
from cli_contract import run_cli

DARTS, ENAS = get_space("darts"), get_space("nasnet-enas")
SIZES = {"darts": {"C": 4, "layers": 3}, "nasnet-enas": {"C": 4, "N": 1}}
TINY = {"data": "digits", "limit_train": 128, "batch_size": 32, "hessian_every": 0, "arch_steps": 1,
        "relaxation_options": {"aggregate": 2}, "selector_options": {"candidates": "sample", "n": 3,
                                                                     "batch_size": 32}}


def choices_of(space):
    """Hypothesis: one valid choice per decision, drawn independently."""
    return st.tuples(*[st.integers(0, n - 1) for n in space.choice_sizes()]).map(list)


def bound(space, **options):
    relaxation = build_relaxation("controller", **options)
    supernet = space.supernet(num_classes=10, relaxation=relaxation, in_channels=1, **SIZES[space.name])
    relaxation.bind(supernet, space)
    return relaxation, supernet


# -- decisions <-> genotypes ----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_darts_choices_round_trip(data):
    choices = data.draw(choices_of(DARTS))
    genotype = DARTS.from_choices(choices)
    assert DARTS.from_choices(DARTS.to_choices(genotype)) == genotype
    for cell in ("normal", "reduce"):  # the decoding rule, written out: the second input skips the first
        edges, k = genotype.cell(cell), 16 * (cell == "reduce")
        for node in range(4):
            a, op_a, b, op_b = choices[k + 4 * node: k + 4 * node + 4]
            second = [s for s in range(node + 2) if s != a][b]
            assert set(edges[2 * node: 2 * node + 2]) == {(DARTS.searchable_ops[op_a], a),
                                                          (DARTS.searchable_ops[op_b], second)}
    seed = data.draw(st.integers(0, 2**31))
    sampled = DARTS.sample(seed)
    assert DARTS.from_choices(DARTS.to_choices(sampled)) == sampled


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_nasnet_enas_choices_round_trip_and_weights(data):
    choices = data.draw(choices_of(ENAS))
    genotype = ENAS.from_choices(choices)
    assert ENAS.to_choices(genotype) == choices  # ordered edges: the decisions come back as drawn
    sampled = ENAS.sample(data.draw(st.integers(0, 2**31)))
    assert ENAS.from_choices(ENAS.to_choices(sampled)) == sampled
    # the path's one-hot weights read back by the space's argmax rule give the genotype again
    shapes = ENAS.arch_shapes()
    weights = {cell: torch.zeros(shape) for cell, shape in shapes.items()}
    for cell, edges in ENAS.selected_edges(genotype).items():
        weights[cell][:, 0] = 1.0
        for row, op in edges:
            weights[cell][row] = 0.0
            weights[cell][row, 1 + ENAS.ops.index(op)] = 1.0
    assert ENAS.genotype_from_weights(weights) == genotype


@settings(max_examples=40, deadline=None)
@given(space=st.sampled_from([DARTS, ENAS]), data=st.data())
def test_choices_a_decision_lacks_are_refused(space, data):
    sizes = space.choice_sizes()
    k = data.draw(st.integers(0, len(sizes) - 1))
    choices = [0] * len(sizes)
    choices[k] = data.draw(st.one_of(st.integers(sizes[k], 50), st.integers(-5, -1)))
    with pytest.raises(InvalidGenotypeError, match=f"choice {k}"):
        space.from_choices(choices)
    with pytest.raises(InvalidGenotypeError):
        space.from_choices([0] * (len(sizes) - 1))


def test_darts_to_choices_refuses_what_no_controller_samples():
    with pytest.raises(InvalidGenotypeError, match="none"):
        DARTS.to_choices(DARTS.genotype_from_weights({c: torch.eye(14, 8) for c in ("normal", "reduce")},
                                                     exclude=()))


# -- the controller ---------------------------------------------------------------------------------------
class MaskedReference(nn.Module):
    """An LSTM controller that, as micro_controller.py does for a block's inputs, draws each decision from a
    softmax over that decision's own choices only (logits / T, then c tanh)."""

    def __init__(self, sizes, width, hidden, layers, tanh_constant, temperature):
        super().__init__()
        self.sizes, self.c, self.t = sizes, tanh_constant, temperature
        self.start = nn.Parameter(torch.zeros(1, 1, hidden))
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers)
        self.embed = nn.Embedding(width, hidden)
        self.head = nn.Linear(hidden, width)

    def forward(self, arch):
        inputs, state, log_prob, entropy = self.start, None, 0.0, 0.0
        for k, n in enumerate(self.sizes):
            out, state = self.lstm(inputs, state)
            logits = self.head(out)[..., :n]
            if self.t is not None:
                logits = logits / self.t
            dist = Categorical(logits=self.c * torch.tanh(logits))
            log_prob = log_prob + dist.log_prob(torch.tensor([[arch[k]]])).sum()
            entropy = entropy + dist.entropy().sum()
            inputs = self.embed(torch.tensor([[arch[k]]]))
        return log_prob, entropy


@pytest.mark.parametrize("space,temperature", [(DARTS, 5.0), (ENAS, None)])
def test_controller_log_prob_and_entropy_over_the_decisions_sizes(space, temperature):
    torch.manual_seed(0)
    relaxation, _ = bound(space, hidden=16, layers=1, temperature=temperature, tanh_constant=1.1)
    controller = relaxation.controller
    width = space.choice_shape[1]
    ref = MaskedReference(space.choice_sizes(), width, 16, 1, 1.1, temperature)
    with torch.no_grad():
        ref.start.copy_(controller.embed.weight[width].view(1, 1, -1))
        ref.embed.weight.copy_(controller.embed.weight[:width])
        ref.lstm.load_state_dict(controller.lstm.state_dict())
        ref.head.load_state_dict(controller.head.state_dict())
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        actions, log_prob, entropy = controller(generator=gen)
        assert all(0 <= a < n for a, n in zip(actions.tolist(), space.choice_sizes()))  # masked choices never drawn
        ref_log_prob, ref_entropy = ref(actions.tolist())
        assert torch.allclose(log_prob, ref_log_prob, atol=1e-5) and torch.allclose(entropy, ref_entropy, atol=1e-5)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), space=st.sampled_from([DARTS, ENAS]))
def test_the_controllers_path_is_the_selectors_path_of_its_genotype(data, space):
    relaxation, supernet = bound(space)
    actions = torch.tensor(data.draw(choices_of(space)))
    genotype = space.from_choices(actions.tolist())
    ours, selectors = relaxation.path_weights(actions), path_weights(space, supernet, genotype)
    assert ours.keys() == selectors.keys() and all(torch.equal(ours[k], selectors[k]) for k in ours)
    assert space.genotype_from_weights(ours) == genotype


# -- the supernets compute the sampled cell alone -------------------------------------------------------
def darts_by_hand(supernet, genotype, x):
    """model_search.py's forward with each node summing its genotype's two edges only."""
    s0 = s1 = supernet.stem(x)
    for cell in supernet.cells:
        edges = genotype.cell("reduce" if cell.reduction else "normal")
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        for node in range(4):
            total = 0
            for op, source in edges[2 * node: 2 * node + 2]:
                row = sum(range(2, node + 2)) + source
                total = total + cell.edges[row].ops[supernet.op_names.index(op)](states[source])
            states.append(total)
        s0, s1 = s1, torch.cat(states[-4:], dim=1)
    return supernet.classifier(supernet.global_pooling(s1).flatten(1))


def enas_by_hand(supernet, genotype, x):
    """micro_child.py ``_model`` / ``_enas_layer``: x + y per block, the unread blocks through ReLU, the
    gathered 1x1 kernels and BN."""
    s0 = s1 = supernet.stem(x)
    for i, cell in enumerate(supernet.cells):
        if cell.reduction:
            s0, s1 = s1, supernet.reductions[str(i)](s1)
        edges = genotype.cell("reduce" if cell.reduction else "normal")
        layers = [cell.preprocess0(s0), cell.preprocess1(s1)]
        for b in range(len(edges) // 2):
            (x_op, x_id), (y_op, y_id) = edges[2 * b: 2 * b + 2]
            x_out = cell.edges[row_of(b, 0, x_id)].ops[supernet.op_names.index(x_op)](layers[x_id])
            y_out = cell.edges[row_of(b, 1, y_id)].ops[supernet.op_names.index(y_op)](layers[y_id])
            layers.append(x_out + y_out)
        used = {source for _, source in edges}
        unused = [s for s in range(2, len(layers)) if s not in used]
        w = torch.cat([cell.final[s] for s in unused], dim=1)[:, :, None, None]
        out = cell.final_bn(nn.functional.conv2d(torch.relu(torch.cat([layers[s] for s in unused], 1)), w))
        s0, s1 = s1, out
    return supernet.classifier(torch.relu(s1).mean((2, 3)))


@pytest.mark.parametrize("space,by_hand", [(DARTS, darts_by_hand), (ENAS, enas_by_hand)])
def test_supernet_output_of_a_sampled_cell_is_that_cell_alone(space, by_hand):
    torch.manual_seed(4)
    relaxation, supernet = bound(space)
    supernet.double().eval()
    called = set()
    for name in ("normal", "reduce"):
        for row, mixed in supernet.mixed_ops(name):
            for k, op in enumerate(mixed.ops):
                op.register_forward_hook(lambda m, i, o, key=(name, row, k): called.add(key))
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    for seed in range(3):
        actions, _, _ = relaxation.controller(generator=torch.Generator().manual_seed(seed))
        genotype = space.from_choices(actions.tolist())
        called.clear()
        ours = path_logits(supernet, relaxation.path_weights(actions), x)
        chosen = {(cell, row, supernet.op_names.index(op))
                  for cell, edges in space.selected_edges(genotype).items() for row, op in edges}
        assert called == chosen  # edges off the cell are not computed
        with torch.no_grad():
            assert torch.allclose(ours, by_hand(supernet, genotype, x), atol=1e-10)
        # the selector's path for the same genotype computes the same
        supernet.set_relaxation(FixedPath(supernet, path_weights(space, supernet, genotype)))
        with torch.no_grad():
            assert torch.equal(supernet(x), ours)
        supernet.set_relaxation(relaxation)


def test_weight_phase_draws_one_cell_for_both_cell_types():
    torch.manual_seed(6)
    relaxation, supernet = bound(ENAS)
    drawn, sample = [], relaxation.controller.forward
    relaxation.controller.forward = lambda *a, **k: drawn.append(sample(*a, **k)) or drawn[-1]
    called = set()
    for name in ("normal", "reduce"):
        for row, mixed in supernet.mixed_ops(name):
            for k, op in enumerate(mixed.ops):
                op.register_forward_hook(lambda m, i, o, key=(name, row, k): called.add(key))
    supernet(torch.randn(2, 1, 8, 8))
    assert len(drawn) == 1
    genotype = ENAS.from_choices(drawn[0][0].tolist())
    assert called == {(cell, row, 1 + ENAS.ops.index(op))
                      for cell, edges in ENAS.selected_edges(genotype).items() for row, op in edges}


def test_only_spaces_that_add_have_the_enas_supernet():
    with pytest.raises(ConfigError, match="no supernet"):
        get_space("nasnet").supernet()
    assert get_space("nasnet", ops=["sep_conv_3x3", "conv_1x1"], combines=["add"]).supernet(C=4, N=1) is not None
    with pytest.raises(ConfigError, match="even"):
        ENAS.supernet(C=5, N=1)


# -- the search end to end ----------------------------------------------------------------------------
@pytest.mark.parametrize("method,space", [("enas", "darts"), ("enas-micro", "nasnet-enas")])
def test_cli_search_on_digits(tmp_path, method, space):
    sizes = [f"{k}={v}" for k, v in SIZES[space].items()]
    code, _, err = run_cli(["search", "--method", method, "--space", space, "--data", "digits", "epochs=1",
                            *sizes, "limit_train=128", "batch_size=32", "hessian_every=0", "arch_steps=1",
                            "relaxation_options={aggregate: 2}",
                            "selector_options={candidates: sample, n: 3, batch_size: 32}",
                            "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "genotype.json").read_text())
    ranking = json.loads((tmp_path / "run" / "selection.json").read_text())["ranking"]
    assert summary["space"] == space and summary["genotype"] == ranking[0]["genotype"]
    genotype = get_space(space).from_string(summary["genotype"])
    assert get_space(space).from_choices(get_space(space).to_choices(genotype)) == genotype


def test_resumed_micro_search_continues_as_the_whole_one(tmp_path):
    overrides = {**TINY, "C": 4, "N": 1}
    whole = DifferentiableSearch(resolve_config("enas-micro", overrides={**overrides, "epochs": 2}),
                                 tmp_path / "whole", quiet=True)
    genotype = whole.run()
    DifferentiableSearch(resolve_config("enas-micro", overrides={**overrides, "epochs": 1}), tmp_path / "part",
                         quiet=True).run()
    resumed = DifferentiableSearch(resolve_config("enas-micro", overrides={**overrides, "epochs": 2}),
                                   tmp_path / "part", quiet=True)
    resumed.resume()
    assert resumed.run() == genotype
    assert all(torch.equal(a, b) for a, b in zip(whole.alphas, resumed.alphas))
    assert whole.relaxation.baseline == resumed.relaxation.baseline
    assert all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(),
                                                  resumed.model.state_dict().values()))


@settings(max_examples=30, deadline=None)
@given(temperature=st.one_of(st.none(), st.floats(-2, 8)), clip=st.one_of(st.none(), st.floats(-2, 8)))
def test_temperature_and_clip_may_be_off(temperature, clip):
    valid = (temperature is None or temperature > 0) and (clip is None or clip > 0)
    if valid:
        relaxation = build_relaxation("controller", temperature=temperature, grad_clip=clip)
        assert (relaxation.temperature, relaxation.grad_clip) == (temperature, clip)
    else:
        with pytest.raises(ConfigError):
            build_relaxation("controller", temperature=temperature, grad_clip=clip)
