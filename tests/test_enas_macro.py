"""ENAS' macro space, its controller and its preset.

Oracles, written here independently of the package: the reference's parameter shapes
(melodyguan/enas src/cifar10/general_child.py ``_fixed_layer``, ``_factorized_reduction``, ``_model``) summed by
hand; its controller's sampler (general_controller.py ``_build_sampler``, common_ops.py ``stack_lstm``) and
trainer (``build_trainer``) transcribed op by op; the final script's arc as the script spells it.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.errors import ConfigError, InvalidGenotypeError, UnknownNameError
from archsearch.relax import build_relaxation
from archsearch.search.resolve import resolve_config
from archsearch.search.selectors.shared_weights import fixed_path
from archsearch.spaces import get_space
from archsearch.spaces.enas_macro_genotypes import OPS, MacroGenotype, from_arc, to_arc
from cli_contract import assert_one_line_error, run_cli

SPACE = get_space("enas-macro")
#: scripts/cifar10_macro_final.sh:5-28, one string per layer as the script writes them
FINAL_ARC = ["0", "3 0", "0 1 0", "2 0 0 1", "2 0 0 0 0", "3 1 1 0 1 0", "2 0 0 0 0 0 1", "2 0 1 1 0 1 1 1",
             "1 0 1 1 1 0 1 0 1", "0 0 0 0 0 0 0 0 0 0", "2 0 0 0 0 0 1 0 0 0 0", "0 1 0 0 1 1 0 0 0 0 1 1",
             "2 0 1 0 0 0 0 0 1 0 1 1 0", "1 0 0 1 0 0 0 1 1 1 0 1 0 1", "0 1 1 0 1 0 1 0 0 0 0 0 1 0 0",
             "2 0 0 1 0 0 0 0 0 0 0 1 0 1 0 1", "2 0 1 0 0 0 1 0 0 1 1 1 1 0 0 1 0",
             "2 0 0 0 0 1 0 1 0 1 0 0 1 0 1 0 0 1", "3 0 1 1 0 1 0 0 0 0 0 1 0 1 0 1 0 0 0",
             "3 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 1", "0 1 0 0 1 0 1 1 0 0 0 1 0 0 0 0 0 1 1 0 0",
             "3 0 1 0 1 1 0 0 1 0 1 1 0 1 1 0 1 0 0 1 0 0", "0 1 0 1 0 1 0 0 0 0 0 0 0 0 1 0 1 0 0 1 0 0 0",
             "0 1 1 0 0 0 1 1 1 0 1 0 0 0 1 0 1 0 0 1 1 0 0 0"]


@st.composite
def genotypes(draw, max_layers=8):
    layers = draw(st.integers(1, max_layers))
    ops = tuple(draw(st.sampled_from(OPS)) for _ in range(layers))
    skips = tuple(tuple(draw(st.integers(0, 1)) for _ in range(l)) for l in range(1, layers))
    return MacroGenotype(ops, skips)


# -- genotypes and text ------------------------------------------------------------------------------
def test_published_arc_is_the_final_script_layer_by_layer():
    g = SPACE.named("ENAS_MACRO")
    assert g.layers == 24
    for l, row in enumerate(FINAL_ARC):
        numbers = [int(v) for v in row.split()]
        assert OPS.index(g.ops[l]) == numbers[0] and list(g.skips[l - 1] if l else ()) == numbers[1:]
    assert SPACE.from_string(" ".join(FINAL_ARC)) == g  # the reference's flat form reads too


@settings(max_examples=60, deadline=None)
@given(genotypes())
def test_text_arc_and_choices_round_trip(g):
    assert SPACE.from_string(SPACE.to_string(g)) == g
    assert from_arc(to_arc(g)) == g
    assert SPACE.from_choices(SPACE.to_choices(g)) == g
    assert len(SPACE.to_choices(g)) == g.layers * (g.layers + 1) // 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=40), st.text(alphabet="01 /_conv35xsepmaxavgpool", max_size=60)))
def test_bad_strings_are_one_line_errors(text):
    try:
        g = SPACE.from_string(text)
    except InvalidGenotypeError as error:
        assert "\n" not in str(error) and str(error)
    else:  # what parses is a genotype whose text reads back
        assert SPACE.from_string(SPACE.to_string(g)) == g


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"), ("conv_3x3 / conv_5x5", "skip bits"), ("conv_3x3 / conv_5x5 01", "1 skip bits"),
    ("conv_7x7", "unknown op"), ("conv_3x3 / conv_5x5 2", "0/1"), ("0 1", "numbers"), ("6", "op index"),
    ("0 3 2", "skip bits"),
])
def test_bad_strings_say_what_is_wrong(text, fragment):
    with pytest.raises(InvalidGenotypeError, match=fragment):
        SPACE.from_string(text)


def test_choices_out_of_range_are_refused():
    with pytest.raises(InvalidGenotypeError):
        SPACE.from_choices([0, 7, 0])
    with pytest.raises(InvalidGenotypeError):
        SPACE.from_choices([0, 0, True])


@settings(max_examples=30, deadline=None)
@given(genotypes(max_layers=6))
def test_neighbours_differ_by_one_decision(g):
    neighbours = SPACE.neighbours(g)
    assert len(neighbours) == len(set(neighbours)) == 5 * g.layers + g.layers * (g.layers - 1) // 2
    base = to_arc(g)
    for n in neighbours:
        assert sum(a != b for a, b in zip(base, to_arc(n))) == 1
    assert SPACE.mutate(g, 0) in neighbours


def test_space_size_and_samples():
    assert SPACE.size() == 6 ** 12 * 2 ** 66  # the paper's 1.6 x 10^29
    g = SPACE.sample(0)
    assert g.layers == 12 and SPACE.encode(g).shape == (12 * 6 + 66,)
    assert SPACE.genotype_from_weights({"arc": F.one_hot(torch.tensor(to_arc(g)), 6).float()}) == g


# -- the networks ------------------------------------------------------------------------------------
def reference_param_count(g: MacroGenotype, C: int, num_classes: int = 10, in_channels: int = 3) -> int:
    """The trainable variables general_child.py creates for a fixed arc: weights [k, k, in, out] and per
    BN an offset and a scale; ops 4/5 (no fixed form there) as ReLU-conv1x1-BN-pool, our choice."""
    L, total, c = g.layers, 3 * 3 * in_channels * C + 2 * C, C
    pools = {L // 3 - 1, 2 * (L // 3) - 1}
    for l, op in enumerate(g.ops):
        total += c * c + 2 * c  # conv_1x1 and its BN
        if op in ("conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5"):
            k = 3 if "3x3" in op else 5
            total += k * k * c * c + 2 * c
        if l > 0:
            total += (sum(g.skips[l - 1]) + 1) * c * c + 2 * c  # the skip's 1x1 conv over the concatenation
        if l in pools:
            total += (l + 2) * (2 * c * c + 2 * 2 * c)  # per node: path1, path2 (c -> c each), BN of 2c
            c *= 2
    return total + c * num_classes  # the classifier, no bias


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_network_has_the_reference_parameter_count(seed):
    g = get_space("enas-macro", layers=7).sample(seed)
    net = SPACE.network(g, C=6)
    assert sum(p.numel() for p in net.parameters()) == reference_param_count(g, 6)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_info_gives_the_published_network_as_the_reference_counts_it():
    """42,559,392: what general_child.py:608-609 prints for the final script (24 layers, 96 channels)."""
    assert reference_param_count(SPACE.named("ENAS_MACRO"), 96) == 42_559_392
    code, out, err = run_cli(["info", "ENAS_MACRO", "--space", "enas-macro", "--json"])
    assert code == 0, err
    assert json.loads(out)["params"] == 42_559_392


def _shared_copy(supernet, net, g):
    """The search-style network holding the supernet's weights of g's branches."""
    theirs = supernet.state_dict()
    mapped = {}
    for key in net.state_dict():
        parts = key.split(".")
        if parts[0] == "layers" and parts[2] == "op":
            source = ".".join(["layers", parts[1], "branches", str(OPS.index(g.ops[int(parts[1])]))] + parts[3:])
        elif parts[0] == "layers":
            source = key
        else:
            source = "net." + key
        mapped[key] = theirs[source]
    net.load_state_dict(mapped)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_supernet_on_an_arc_is_the_search_network_with_its_weights(seed):
    torch.manual_seed(seed)
    space = get_space("enas-macro", layers=6)  # pools after layers 1 and 3
    g = space.sample(seed)
    supernet = space.supernet(C=4, layers=6, in_channels=1, dropout=0.0).double()
    for m in supernet.modules():  # running statistics away from their initial values, so eval mode shows them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    net = space.network(g, C=4, in_channels=1, dropout=0.0, style="search").double()
    _shared_copy(supernet, net, g)
    x = torch.randn(3, 1, 12, 12, dtype=torch.float64)
    for train in (False, True):
        supernet.train(train)
        net.train(train)
        with fixed_path(supernet, space, g):
            ours = supernet(x)
        assert torch.allclose(ours, net(x), atol=1e-10)


def test_supernet_runs_only_the_chosen_branches():
    space = get_space("enas-macro", layers=4)
    g = space.sample(5)
    supernet = space.supernet(C=4, layers=4, in_channels=1)
    called = set()
    for l, layer in enumerate(supernet.layers):
        for k, branch in enumerate(layer.branches):
            branch.register_forward_hook(lambda module, inputs, out, key=(l, k): called.add(key))
    with fixed_path(supernet, space, g):
        supernet(torch.randn(2, 1, 8, 8))
    assert called == {(l, OPS.index(op)) for l, op in enumerate(g.ops)}


# -- the controller ----------------------------------------------------------------------------------
def reference_controller(c, arc, L, tanh_constant=1.5, skip_target=0.4):
    """general_controller.py _build_sampler (macro, whole channels), scoring ``arc``: (sum of the
    cross-entropies, sum of CE exp(-CE), mean of the layers' KL terms)."""
    H = c.g_emb.shape[1]

    def lstm(x, prev_c, prev_h):
        next_c, next_h, inputs = [], [], x
        for w, pc, ph in zip(c.w_lstm, prev_c, prev_h):
            ifog = torch.cat([inputs, ph], 1) @ w
            i, f, o, g = ifog[:, :H], ifog[:, H:2 * H], ifog[:, 2 * H:3 * H], ifog[:, 3 * H:]
            cc = torch.sigmoid(i) * torch.tanh(g) + torch.sigmoid(f) * pc
            hh = torch.sigmoid(o) * torch.tanh(cc)
            next_c.append(cc)
            next_h.append(hh)
            inputs = hh
        return next_c, next_h

    prev_c = [torch.zeros(1, H) for _ in c.w_lstm]
    prev_h = [torch.zeros(1, H) for _ in c.w_lstm]
    inputs, anchors, anchors_w_1 = c.g_emb, [], []
    targets = torch.tensor([1 - skip_target, skip_target])
    log_probs, entropys, penalties, start = [], [], [], 0
    for layer_id in range(L):
        prev_c, prev_h = lstm(inputs, prev_c, prev_h)
        logit = tanh_constant * torch.tanh(prev_h[-1] @ c.w_soft)
        branch_id = torch.tensor([arc[start]])
        lp = F.cross_entropy(logit, branch_id, reduction="none")
        log_probs.append(lp.sum())
        entropys.append((lp * torch.exp(-lp)).detach().sum())
        inputs = c.w_emb[branch_id]
        prev_c, prev_h = lstm(inputs, prev_c, prev_h)
        if layer_id > 0:
            query = torch.cat(anchors_w_1, 0)
            query = torch.tanh(query + prev_h[-1] @ c.w_attn_2) @ c.v_attn
            logit = tanh_constant * torch.tanh(torch.cat([-query, query], 1))
            skip = torch.tensor(arc[start + 1: start + 1 + layer_id])
            skip_prob = torch.sigmoid(logit)
            penalties.append((skip_prob * torch.log(skip_prob / targets)).sum())
            lp = F.cross_entropy(logit, skip, reduction="none")
            log_probs.append(lp.sum())
            entropys.append((lp * torch.exp(-lp)).detach().sum())
            s = skip.float().view(1, layer_id)
            inputs = (s @ torch.cat(anchors, 0)) / (1.0 + s.sum())
        else:
            inputs = c.g_emb
        anchors.append(prev_h[-1])
        anchors_w_1.append(prev_h[-1] @ c.w_attn_1)
        start += 1 + layer_id
    return sum(log_probs), sum(entropys), torch.stack(penalties).mean()


def bound(layers=5, **options):
    relaxation = build_relaxation("controller", kind="macro", hidden=16, layers=1, temperature=None,
                                  tanh_constant=1.5, rule="enas", **options)
    supernet = get_space("enas-macro", layers=layers).supernet(C=4, layers=layers, in_channels=1,
                                                               relaxation=relaxation)
    relaxation.bind(supernet)
    return relaxation, supernet


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_controller_scores_as_the_reference(seed):
    torch.manual_seed(seed)
    relaxation, _ = bound()
    controller = relaxation.controller
    arc = get_space("enas-macro", layers=5).to_choices(get_space("enas-macro", layers=5).sample(seed))
    _, log_prob, entropy = controller(torch.tensor(arc))
    ce, ent, penalty = reference_controller(controller, arc, 5)
    assert torch.allclose(-log_prob, ce, atol=1e-6) and torch.allclose(entropy, ent, atol=1e-6)
    assert torch.allclose(controller.skip_penalty, penalty, atol=1e-6)
    # its gradient too: the loss of general_controller.py:290-292 with a reward and baseline
    loss = -log_prob * 0.3 + 0.8 * controller.skip_penalty
    grads = torch.autograd.grad(loss, list(controller.parameters()))
    ce, _, penalty = reference_controller(controller, arc, 5)
    ref = torch.autograd.grad(ce * 0.3 + 0.8 * penalty, list(controller.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, ref))


def test_samples_are_arcs_and_the_loss_adds_the_skip_penalty():
    torch.manual_seed(4)
    relaxation, supernet = bound(entropy_weight=0.01, baseline_decay=0.9)
    space = get_space("enas-macro", layers=5)
    actions, log_prob, entropy = relaxation.sample(torch.Generator().manual_seed(0))
    space.from_choices(actions.tolist())  # a valid arc
    penalty = relaxation.controller.skip_penalty
    loss = relaxation.policy_loss(0.5, log_prob, entropy)
    # build_trainer: b <- b - (1 - d)(b - R) first, then the loss with the new b, plus 0.8 KL
    reward = 0.5 + 0.01 * float(entropy)
    b = 0.0 - 0.1 * (0.0 - reward)
    expected = -log_prob * (reward - b) + 0.8 * penalty
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-6)
    greedy = relaxation.controller.greedy_probabilities()
    assert greedy.shape == (15, 6) and torch.allclose(greedy.sum(1), torch.ones(15))
    assert space.genotype_from_weights({"arc": relaxation.deterministic_weights(supernet.alphas["arc"])})


def test_lstm_kind_masks_the_skip_rows():
    relaxation = build_relaxation("controller", kind="lstm")
    supernet = get_space("enas-macro", layers=4).supernet(C=4, layers=4, in_channels=1, relaxation=relaxation)
    relaxation.bind(supernet)
    for seed in range(5):
        actions, _, _ = relaxation.sample(torch.Generator().manual_seed(seed))
        get_space("enas-macro", layers=4).from_choices(actions.tolist())


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["lstm", "macro", "micro"]), target=st.floats(-1, 2), weight=st.floats(-1, 2))
def test_macro_options_are_checked(kind, target, weight):
    valid = kind != "micro" and 0 < target < 1 and weight >= 0
    if valid:
        assert build_relaxation("controller", kind=kind, skip_target=target, skip_weight=weight).kind == kind
    else:
        with pytest.raises((ConfigError, UnknownNameError)):
            build_relaxation("controller", kind=kind, skip_target=target, skip_weight=weight)


def test_macro_kind_needs_the_macro_supernet():
    relaxation = build_relaxation("controller", kind="macro")
    supernet = get_space("nb201").supernet(C=4, N=1, relaxation=relaxation)
    with pytest.raises(ConfigError, match="enas-macro"):
        relaxation.bind(supernet)


# -- the preset ------------------------------------------------------------------------------------
def test_preset_has_the_search_script_values():
    config = resolve_config("enas-macro")
    assert (config.space, config.C, config.layers, config.batch_size, config.epochs) == ("enas-macro", 36, 12, 128, 310)
    options = config.relaxation_options
    assert (options["kind"], options["tanh_constant"], options["skip_target"], options["skip_weight"]) == \
        ("macro", 1.5, 0.4, 0.8)
    assert config.grad_clip is None and config.w_weight_decay == 5e-4 and config.arch_steps == 50


def test_cli_searches_the_macro_space(tmp_path):
    code, _, err = run_cli(["search", "--method", "enas-macro", "--data", "digits", "epochs=1", "C=4", "layers=3",
                            "limit_train=128", "batch_size=32", "arch_steps=1", "relaxation_options={kind: macro, aggregate: 2}",
                            "selector_options={candidates: sample, n: 3, batch_size: 32}",
                            "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "genotype.json").read_text())
    ranking = json.loads((tmp_path / "run" / "selection.json").read_text())["ranking"]
    assert summary["method"] == "enas-macro" and summary["genotype"] == ranking[0]["genotype"]
    assert get_space("enas-macro").from_string(summary["genotype"]).layers == 3
    assert_one_line_error(["search", "--method", "enas-macro", "relaxation_options={kind: micro}"], "kind")


def test_resumed_macro_search_continues_as_the_whole_one(tmp_path):
    from archsearch.search.loop import DifferentiableSearch

    tiny = {"data": "digits", "C": 4, "layers": 3, "limit_train": 128, "batch_size": 32, "arch_steps": 1,
            "relaxation_options": {"kind": "macro", "aggregate": 2}, "selector_options": {"candidates": "sample", "n": 2,
                                                                         "batch_size": 32}}
    whole = DifferentiableSearch(resolve_config("enas-macro", overrides={**tiny, "epochs": 2}), tmp_path / "whole",
                                 quiet=True)
    genotype = whole.run()
    DifferentiableSearch(resolve_config("enas-macro", overrides={**tiny, "epochs": 1}), tmp_path / "part",
                         quiet=True).run()
    resumed = DifferentiableSearch(resolve_config("enas-macro", overrides={**tiny, "epochs": 2}), tmp_path / "part",
                                   quiet=True)
    resumed.resume()
    assert resumed.run() == genotype
    for a, b in zip(whole.relaxation.controller.parameters(), resumed.relaxation.controller.parameters()):
        assert torch.equal(a, b)
    assert whole.relaxation.baseline == resumed.relaxation.baseline
