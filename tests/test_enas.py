"""ENAS: the controller relaxation, the REINFORCE estimator, the shared-weight selector, the preset.

Oracles: small transcriptions of the reference code, written here independently of the package:
AutoDL-Projects xautodl/models/cell_searchs/search_model_enas_utils.py (the controller: input vector, LSTM,
logits / T then c * tanh) and exps/NAS-Bench-201-algos/ENAS.py:128-172 (``train_controller``: reward,
baseline, loss / num_aggregate accumulated, clip 5, Adam); melodyguan/enas micro_controller.py
(``build_trainer``: per-sample baseline from 0, entropy without gradient).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.distributions import Categorical

import archsearch.search.estimators as estimators
from archsearch.errors import ConfigError, UnknownNameError
from archsearch.relax import build_relaxation
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.spaces import get_space
from cli_contract import assert_one_line_error, run_cli

EDGES, OPS = 6, 5
#: the smallest search that still runs every part: one controller step of two samples per epoch
TINY = {"data": "digits", "C": 4, "N": 1, "limit_train": 128, "batch_size": 32, "hessian_every": 0,
        "arch_steps": 1, "relaxation_options": {"aggregate": 2},
        "selector_options": {"candidates": "sample", "n": 3, "batch_size": 32}}


class ReferenceController(nn.Module):
    """search_model_enas_utils.py's Controller, scoring given ops instead of sampling them."""

    def __init__(self, num_edge, num_ops, lstm_size=32, lstm_num_layers=2, tanh_constant=2.5, temperature=5.0):
        super().__init__()
        self.num_edge, self.tanh_constant, self.temperature = num_edge, tanh_constant, temperature
        self.input_vars = nn.Parameter(torch.zeros(1, 1, lstm_size))
        self.w_lstm = nn.LSTM(input_size=lstm_size, hidden_size=lstm_size, num_layers=lstm_num_layers)
        self.w_embd = nn.Embedding(num_ops, lstm_size)
        self.w_pred = nn.Linear(lstm_size, num_ops)

    def forward(self, arch):
        inputs, h0 = self.input_vars, None
        log_probs, entropys = [], []
        for iedge in range(self.num_edge):
            outputs, h0 = self.w_lstm(inputs, h0)
            logits = self.w_pred(outputs)
            logits = logits / self.temperature
            logits = self.tanh_constant * torch.tanh(logits)
            op_distribution = Categorical(logits=logits)
            op_index = torch.tensor([[arch[iedge]]])
            log_probs.append(op_distribution.log_prob(op_index).view(-1))
            entropys.append(op_distribution.entropy().view(-1))
            inputs = self.w_embd(op_index)
        return torch.sum(torch.cat(log_probs)), torch.sum(torch.cat(entropys))


def bound_relaxation(**options):
    relaxation = build_relaxation("controller", **options)
    supernet = get_space("nb201").supernet(num_classes=10, C=4, N=1, relaxation=relaxation)
    relaxation.bind(supernet)
    return relaxation, supernet


def reference_copy(controller) -> ReferenceController:
    """The reference controller holding our controller's weights (our start token's embedding is its
    input vector)."""
    ref = ReferenceController(EDGES, OPS)
    with torch.no_grad():
        ref.input_vars.copy_(controller.embed.weight[OPS].view(1, 1, -1))
        ref.w_embd.weight.copy_(controller.embed.weight[:OPS])
        ref.w_lstm.load_state_dict(controller.lstm.state_dict())
        ref.w_pred.load_state_dict(controller.head.state_dict())
    return ref


def test_controller_logits_are_temperature_then_tanh_as_the_reference():
    torch.manual_seed(0)
    relaxation, _ = bound_relaxation()
    controller = relaxation.controller
    ref = reference_copy(controller)
    for arch in ([0, 1, 2, 3, 4, 0], [4, 4, 4, 4, 4, 4], [1, 3, 0, 2, 2, 1]):
        _, log_prob, entropy = controller(torch.tensor(arch))
        ref_log_prob, ref_entropy = ref(arch)
        assert torch.allclose(log_prob, ref_log_prob, atol=1e-6) and torch.allclose(entropy, ref_entropy, atol=1e-6)
    # |logit| <= c: tanh bounds them, so no op's probability falls below e^-2c / (e^-2c + ops - 1)
    probs = controller.greedy_probabilities()
    floor = torch.exp(torch.tensor(-5.0)) / (torch.exp(torch.tensor(-5.0)) + OPS - 1)
    assert bool((probs >= floor).all())


def _scripted(monkeypatch, relaxation, archs, accuracies):
    """Make the estimator see the given cells and accuracies: a batch's x is its logits."""
    monkeypatch.setattr(estimators, "path_logits", lambda supernet, actions, x: x)
    arch_iter = iter(archs)
    relaxation.sample = lambda: relaxation.controller(torch.tensor(next(arch_iter)))
    batches = []
    for acc in accuracies:  # ten labels, the first round(10 acc) predicted right
        y = torch.arange(10) % OPS
        predicted = torch.where(torch.arange(10) < round(10 * acc), y, (y + 1) % OPS)
        batches.append((torch.nn.functional.one_hot(predicted, OPS).float(), y))
    return iter(batches)


@pytest.mark.parametrize("rule", ["xautodl", "enas"])
def test_reinforce_update_equals_the_reference_on_scripted_rewards(monkeypatch, rule):
    torch.manual_seed(1)
    steps, aggregate, w, dec = 2, 3, 0.05, 0.9  # a large entropy weight, so its handling shows
    relaxation, supernet = bound_relaxation(aggregate=aggregate, entropy_weight=w, baseline_decay=dec, rule=rule)
    ref = reference_copy(relaxation.controller)
    gen = torch.Generator().manual_seed(2)
    epochs = 2
    archs = torch.randint(0, OPS, (epochs * steps * aggregate, EDGES), generator=gen).tolist()
    accs = (torch.randint(0, 11, (epochs * steps * aggregate,), generator=gen) / 10).tolist()
    params = list(relaxation.controller.parameters())
    ours = torch.optim.Adam(params, lr=0.01, betas=(0.0, 0.999), eps=1e-3)
    theirs = torch.optim.Adam(ref.parameters(), lr=0.01, betas=(0.0, 0.999), eps=1e-3)
    batches = _scripted(monkeypatch, relaxation, archs, accs)

    baseline, enas_baseline, i = None, 0.0, 0
    for epoch in range(epochs):
        relaxation.set_epoch(epoch, epochs)
        for _ in range(steps):
            grads, _ = estimators.reinforce_arch_grads(relaxation, supernet, batches, params)
            for p, g in zip(params, grads):
                p.grad = g
            ours.step()
        # the reference: ENAS.py:125-171 (xautodl) or micro_controller.py build_trainer (enas)
        ref.zero_grad()
        for step in range(steps * aggregate):
            log_prob, entropy = ref(archs[i])
            val_top1 = torch.tensor([accs[i]])
            i += 1
            if rule == "xautodl":
                reward = val_top1 + w * entropy
                b = val_top1 if baseline is None else baseline - (1 - dec) * (baseline - reward)
            else:
                reward = val_top1 + w * entropy.detach()
                enas_baseline = enas_baseline - (1 - dec) * (enas_baseline - reward.item())
                b = enas_baseline
            loss = -1 * log_prob * (reward - b)
            (loss / aggregate).backward(retain_graph=True)
            if (step + 1) % aggregate == 0:
                torch.nn.utils.clip_grad_norm_(ref.parameters(), 5.0)
                theirs.step()
                ref.zero_grad()
        baseline = b.item() if rule == "xautodl" else None
        mine = reference_copy(relaxation.controller)
        for a, c in zip(mine.parameters(), ref.parameters()):
            assert torch.allclose(a, c, atol=1e-6), epoch
        assert relaxation.last_baseline == pytest.approx(float(torch.as_tensor(b).detach()), abs=1e-6)


def test_weight_step_computes_only_the_sampled_path():
    torch.manual_seed(3)
    relaxation, supernet = bound_relaxation()
    supernet.set_path("reference")  # per-op modules, so each op's call can be seen
    drawn, called = [], set()
    sample = relaxation.controller.forward

    def recording(*args, **kwargs):
        out = sample(*args, **kwargs)
        drawn.append(out[0].tolist())
        return out

    relaxation.controller.forward = recording
    for row, mixed in supernet.mixed_ops("cell"):
        for k, op in enumerate(mixed.ops):
            op.register_forward_hook(lambda module, inputs, out, key=(row, k): called.add(key))
    relaxation.phase = "weights"
    supernet(torch.randn(2, 3, 8, 8))
    assert len(drawn) == 1  # one cell per forward
    assert called == {(row, op) for row, op in enumerate(drawn[0])}


def test_state_dict_restores_the_controller_and_its_baseline(monkeypatch):
    torch.manual_seed(5)
    relaxation, supernet = bound_relaxation(aggregate=2)
    batches = _scripted(monkeypatch, relaxation, [[0] * 6, [1] * 6], [0.3, 0.7])
    estimators.reinforce_arch_grads(relaxation, supernet, batches, list(relaxation.controller.parameters()))
    relaxation.set_epoch(1, 2)
    state = relaxation.state_dict()
    other, _ = bound_relaxation(aggregate=2)
    other.load_state_dict(state)
    assert other.baseline == relaxation.baseline is not None and other.last_baseline == relaxation.last_baseline
    assert torch.equal(other.controller.greedy_probabilities(), relaxation.controller.greedy_probabilities())


def test_resumed_search_continues_as_the_whole_one(tmp_path):
    whole = DifferentiableSearch(resolve_config("enas", overrides={**TINY, "epochs": 2}), tmp_path / "whole",
                                 quiet=True)
    genotype = whole.run()
    first = DifferentiableSearch(resolve_config("enas", overrides={**TINY, "epochs": 1}), tmp_path / "part",
                                 quiet=True)
    first.run()
    resumed = DifferentiableSearch(resolve_config("enas", overrides={**TINY, "epochs": 2}), tmp_path / "part",
                                   quiet=True)
    resumed.resume()
    assert resumed.relaxation.baseline == first.relaxation.baseline is None  # epoch one's is rolled at epoch two
    assert resumed.relaxation.last_baseline == first.relaxation.last_baseline
    assert resumed.run() == genotype
    for a, b in zip(whole.alphas, resumed.alphas):
        assert torch.equal(a, b)
    assert whole.relaxation.last_baseline == resumed.relaxation.last_baseline


def test_final_cell_is_the_best_controller_sample_by_shared_weight_accuracy(tmp_path):
    search = DifferentiableSearch(resolve_config("enas", overrides={**TINY, "epochs": 1}), tmp_path, quiet=True)
    genotype = search.run()
    chosen = json.loads((tmp_path / "selection.json").read_text())
    assert chosen["candidates"] == "sample" and len(chosen["ranking"]) == 3
    assert search.space.to_string(genotype) == chosen["ranking"][0]["genotype"]
    # the candidates are the controller's: its sampler, seeded by the run's seed, draws them in this order
    draw, rng = search.relaxation.sampler(search.view()), np.random.default_rng(search.config.seed)
    drawn = []
    while len(drawn) < 3:
        arch = search.space.to_string(draw(rng))
        drawn += [arch] if arch not in drawn else []
    assert sorted(drawn) == sorted(r["genotype"] for r in chosen["ranking"])


def test_cli_runs_enas(tmp_path):
    """The brief's command with one controller step of two samples and three final candidates (the preset's
    50 x 20 and 100 take minutes on a shared CPU; docs/enas.md gives that run)."""
    code, _, err = run_cli(["search", "--method", "enas", "--data", "digits", "epochs=1", "C=4", "N=1",
                            "limit_train=128", "batch_size=32", "hessian_every=0", "arch_steps=1",
                            "relaxation_options={aggregate: 2}",
                            "selector_options={candidates: sample, n: 3, batch_size: 32}",
                            "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "genotype.json").read_text())
    assert summary["method"] == "enas" and "ground_truth" in summary


def test_relaxation_and_estimator_must_agree():
    with pytest.raises(ConfigError, match="arch_gradient=reinforce"):
        resolve_config("enas", overrides={"arch_gradient": "pathwise"})
    with pytest.raises(ConfigError, match="arch_gradient=pathwise"):
        resolve_config("darts", overrides={"arch_gradient": "reinforce"})
    with pytest.raises(ConfigError, match="hessian_every"):
        resolve_config("enas", overrides={"hessian_every": "auto"})
    with pytest.raises(ConfigError, match="arch_steps"):
        resolve_config("darts2", overrides={"arch_steps": 5})
    assert_one_line_error(["search", "--method", "enas", "arch_gradient=pathwise"], "arch_gradient")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(temperature=st.floats(-3, 10), tanh_constant=st.floats(-3, 10), decay=st.floats(-1, 2),
       aggregate=st.integers(-2, 50), rule=st.sampled_from(["xautodl", "enas", "zoph"]))
def test_controller_options_are_checked(temperature, tanh_constant, decay, aggregate, rule):
    valid = temperature > 0 and tanh_constant > 0 and 0 <= decay <= 1 and aggregate >= 1 and rule != "zoph"
    options = dict(temperature=temperature, tanh_constant=tanh_constant, baseline_decay=decay,
                   aggregate=aggregate, rule=rule)
    if valid:
        assert build_relaxation("controller", **options).aggregate == aggregate
    else:
        with pytest.raises((ConfigError, UnknownNameError)):
            build_relaxation("controller", **options)


@settings(max_examples=30, deadline=None)
@given(kind=st.text(max_size=12), steps=st.integers(-5, 100))
def test_new_config_keys_are_checked(kind, steps):
    overrides = {"arch_gradient": kind, "arch_steps": steps}
    if kind == "reinforce" and steps >= 0:
        config = resolve_config("enas", overrides=overrides)
        assert config.arch_steps == steps
    else:
        with pytest.raises(ConfigError):
            resolve_config("enas", overrides=overrides)


def test_arch_steps_after_the_epoch_serve_a_pathwise_method_too():
    """arch_steps is the loop's schedule, not ENAS' alone: DARTS with 3 steps after the epoch's weight steps
    moves alpha exactly three times (Adam's step count)."""
    config = resolve_config("darts", overrides={**{k: v for k, v in TINY.items() if "options" not in k},
                                                 "epochs": 1, "arch_steps": 3})
    search = DifferentiableSearch(config, quiet=True)
    before = [a.detach().clone() for a in search.alphas]
    search.train_epoch()
    assert all(not torch.equal(a, b) for a, b in zip(search.alphas, before))
    assert {int(s["step"]) for s in search.a_optimizer.state.values()} == {3}
