"""ENAS' controller on the DARTS recurrent cell (Penn Treebank): decisions, the one-hot path against the
discrete cell, the reward c / ppl of melodyguan/enas src/ptb/ptb_enas_controller.py:178-181, the preset,
the final choice by shared-weight valid perplexity, and tiny searches end to end with resume.

Oracles: decisions drawn independently of the package and read back; the discrete language model
(spaces/darts_rnn_network.py's DartsRnnCell in RNNModel) holding the supernet's weights, in float64;
the reward computed by hand from scripted log-probabilities."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ConfigError, InvalidGenotypeError
from archsearch.relax import build_relaxation
from archsearch.search.estimators import on_path
from archsearch.search.lm_task import VALID, LanguageModelling, Window
from archsearch.search.resolve import resolve_config
from archsearch.spaces import get_space
from archsearch.spaces.darts_rnn_genotypes import EDGE_ROWS, OPS, ROW_OF, STEPS
from archsearch.spaces.darts_rnn_network import language_model
from cli_contract import run_cli
from tiny_corpus import no_checksum_warnings, write_corpus  # noqa: F401  (an autouse fixture)

SPACE = get_space("darts-rnn")
VOCAB = 17


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), words=25, seed=1, lines=(60, 30, 10), longest=9)


def bound(batch_norm=True, **options):
    relaxation = build_relaxation("controller", **options)
    supernet = SPACE.supernet(num_classes=VOCAB, relaxation=relaxation, emsize=4, batch_norm=batch_norm)
    relaxation.bind(supernet, SPACE)
    return relaxation, supernet


# -- decisions --------------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_decisions_round_trip_and_make_the_genotypes_rows(data):
    choices = data.draw(st.tuples(*[st.integers(0, n - 1) for n in SPACE.choice_sizes()]).map(list))
    genotype = SPACE.from_choices(choices)
    assert SPACE.to_choices(genotype) == choices
    for k, (op, source) in enumerate(genotype.recurrent):  # node k + 1: its input, then its activation
        assert (source, ("tanh", "relu", "sigmoid", "identity").index(op)) == tuple(choices[2 * k: 2 * k + 2])
    sampled = SPACE.sample(data.draw(st.integers(0, 2**31)))
    assert SPACE.from_choices(SPACE.to_choices(sampled)) == sampled
    # the controller's weights: the chosen op on the node's row from its input, `none` on every other row
    relaxation, _ = bound()
    weights = relaxation.path_weights(torch.tensor(choices))["recurrent"]
    expected = torch.zeros(len(EDGE_ROWS), len(OPS))
    expected[:, OPS.index("none")] = 1.0
    for k, (op, source) in enumerate(genotype.recurrent):
        expected[ROW_OF[(k + 1, source)]] = torch.eye(len(OPS))[OPS.index(op)]
    assert torch.equal(weights, expected)


@settings(max_examples=40, deadline=None)
@given(choices=st.lists(st.integers(-2, 9), min_size=16, max_size=16))
def test_decisions_out_of_range_are_refused(choices):
    valid = all(0 <= c < n for c, n in zip(choices, SPACE.choice_sizes()))
    if valid:
        assert SPACE.to_choices(SPACE.from_choices(choices)) == choices
    else:
        with pytest.raises(InvalidGenotypeError):
            SPACE.from_choices(choices)


def test_the_controller_samples_only_decisions_the_space_has():
    relaxation, _ = bound()
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        actions, _, _ = relaxation.sample(gen)
        assert all(0 <= int(a) < n for a, n in zip(actions, SPACE.choice_sizes()))


# -- the one-hot path is the discrete cell -------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_sampled_path_is_the_discrete_cell_with_the_supernets_weights(seed, monkeypatch):
    torch.manual_seed(seed)
    relaxation, supernet = bound(batch_norm=False)
    supernet.double()
    actions, _, _ = relaxation.sample(torch.Generator().manual_seed(seed))
    genotype = SPACE.from_choices(actions.tolist())
    discrete = language_model(genotype, VOCAB, emsize=4, nhid=4).double().eval()
    discrete.load_state_dict({k.removeprefix("model."): v for k, v in supernet.state_dict().items()
                              if k.startswith("model.")})
    tokens = torch.randint(0, VOCAB, (6, 3))
    rows = []  # how many input states each node's matrix product sees: one (its own), never a `none` row
    gates = type(supernet.model.rnn)._gates
    monkeypatch.setattr(type(supernet.model.rnn), "_gates",
                        lambda self, i, states, h_mask: rows.append(states.shape[0]) or gates(self, i, states, h_mask))
    with on_path(supernet, relaxation.path_weights(actions)):
        ours, hidden = supernet(tokens, supernet.init_hidden(3))
    theirs, their_hidden = discrete(tokens, discrete.init_hidden(3))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hidden, their_hidden, rtol=1e-12, atol=1e-12)
    assert rows == [1] * (STEPS * tokens.shape[0])


def test_the_weight_phase_trains_the_sampled_path_only():
    relaxation, supernet = bound()
    relaxation.phase = "weights"
    tokens = torch.randint(0, VOCAB, (4, 2))
    log_prob, _ = supernet(tokens, supernet.init_hidden(2))
    log_prob.sum().backward()
    drawn = relaxation._drawn["recurrent"]
    assert torch.equal(drawn.sum(-1), torch.ones(len(EDGE_ROWS)))  # one-hot rows
    kept = (drawn[:, OPS.index("none")] == 0).sum()
    assert int(kept) == STEPS  # one input per node


# -- the reward ----------------------------------------------------------------------------------------
class Scripted(torch.nn.Module):
    """A language model whose log-probabilities are given; it records the hidden state it is handed."""

    def __init__(self, log_prob):
        super().__init__()
        self.log_prob, self.seen = log_prob, []

    def init_hidden(self, batch):
        return torch.zeros(1, batch, 3)

    def forward(self, x, hidden):
        self.seen.append(hidden.clone())
        return self.log_prob, hidden + 1


def test_the_reward_is_c_over_the_valid_perplexity(corpus_dir):
    config = resolve_config("enas", overrides={"space": "darts-rnn", "data_dir": str(corpus_dir), "batch_size": 4,
                                               "task_options": {"bptt": 5, "reward_c": 80.0}})
    task = LanguageModelling(config)
    g = torch.Generator().manual_seed(0)
    log_prob = torch.log_softmax(torch.randn(5, 4, VOCAB, generator=g, dtype=torch.float64), -1)
    y = torch.randint(0, VOCAB, (5, 4), generator=g)
    batch = Window(torch.zeros(5, 4, dtype=torch.long), y, VALID)
    task.hidden[VALID] = torch.full((1, 4, 3), 7.0)  # what the valid stream carries: not read, not changed
    model = Scripted(log_prob)
    nll = -sum(float(log_prob[t, b, y[t, b]]) for t in range(5) for b in range(4)) / 20
    assert task.reward(model, batch) == pytest.approx(80.0 / math.exp(nll), rel=1e-12)
    assert torch.equal(model.seen[0], torch.zeros(1, 4, 3)) and torch.equal(task.hidden[VALID], torch.full((1, 4, 3), 7.0))
    assert task.score(model, [batch, batch]) == pytest.approx(-math.exp(nll), rel=1e-12)


@pytest.mark.parametrize("c", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_reward_constant_is_a_config_error(c):
    with pytest.raises(ConfigError, match="reward_c"):
        resolve_config("enas", overrides={"space": "darts-rnn", "task_options": {"reward_c": c}})


# -- the preset and end to end ---------------------------------------------------------------------
def test_the_preset_is_the_references_controller_on_darts_recipe():
    config = resolve_config("enas", overrides={"space": "darts-rnn"})
    assert config.relaxation == "controller" and config.arch_gradient == "reinforce"
    options = config.relaxation_options
    assert (options["hidden"], options["layers"], options["tanh_constant"], options["temperature"]) == (100, 1, 2.5, 5.0)
    assert (options["entropy_weight"], options["aggregate"], options["rule"], options["grad_clip"]) == (1e-3, 10, "enas", None)
    assert (config.arch_steps, config.arch_lr, config.arch_betas) == (100, 1e-3, (0.0, 0.999))
    assert (config.w_lr, config.batch_size, config.grad_clip, config.epochs) == (20.0, 256, 0.25, 50)  # DARTS' weights
    assert config.selector == "shared-weights" and config.selector_options["candidates"] == "sample"
    assert resolve_config("enas").relaxation_options["hidden"] == 32  # NB201's ENAS keeps its values
    with pytest.raises(ConfigError, match="candidates=top"):
        resolve_config("enas", overrides={"space": "darts-rnn", "selector_options": {"candidates": "top"}})


COMMON = ["search", "--method", "enas", "--space", "darts-rnn", "batch_size=4", "supernet_options={emsize: 6}",
          "task_options={batches: 3, bptt: 5}", "arch_steps=2", "relaxation_options={aggregate: 2}",
          "selector_options={candidates: sample, n: 4, batch_size: 4}", "--quiet"]


def test_a_tiny_enas_search_end_to_end(corpus_dir, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli([*COMMON, "--data-dir", str(corpus_dir), "epochs=2", "--out", str(run)])
    assert code == 0, err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert np.isfinite(r["train_loss"]) and r["valid_ppl"] == pytest.approx(np.exp(r["valid_loss"]))
        assert r["controller_baseline"] != 0.0
    selection = json.loads((run / "selection.json").read_text())
    scores = [r["score"] for r in selection["ranking"]]
    assert selection["proxy"] == "minus shared-weight valid perplexity" and scores == sorted(scores, reverse=True)
    assert all(s <= -1.0 for s in scores)  # a perplexity is at least 1
    genotype = json.loads((run / "genotype.json").read_text())["genotype"]
    assert genotype == selection["ranking"][0]["genotype"] and SPACE.from_string(genotype).steps == STEPS


def test_a_resumed_enas_search_is_the_uninterrupted_one(corpus_dir, tmp_path):
    common = [*COMMON, "--data-dir", str(corpus_dir)]
    assert run_cli([*common, "epochs=2", "--out", str(tmp_path / "whole")])[0] == 0
    assert run_cli([*common, "epochs=1", "--out", str(tmp_path / "part")])[0] == 0
    assert run_cli(["search", "--resume", str(tmp_path / "part"), "epochs=2", "--quiet"])[0] == 0

    def lines(run):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert lines("part") == lines("whole")
    assert (json.loads((tmp_path / "part" / "genotype.json").read_text())["genotype"]
            == json.loads((tmp_path / "whole" / "genotype.json").read_text())["genotype"])
