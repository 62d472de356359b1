"""The DARTS recurrent-cell search: the mixed cell against a float64 transcription of quark0/darts
rnn/model_search.py's DARTSCellSearch.cell, one-hot weights against the discrete cell, the architecture
gradients on the language-modelling task (the second order against a finite difference of the unrolled loss),
the per-stream hidden states, the configuration's checks and tiny searches end to end with resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.data.ptb import load_ptb
from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.search.bilevel import first_order_arch_grads, second_order_arch_grads
from archsearch.search.lm_task import TRAIN, VALID, LanguageModelling, Window, search_length, task_options, walk
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.spaces import get_space
from archsearch.spaces.darts_rnn_genotypes import EDGE_ROWS, OPS, ROW_OF, STEPS
from archsearch.spaces.darts_rnn_network import DartsRnnCell
from archsearch.spaces.darts_rnn_supernet import DartsRnnSearchCell, DartsRnnSupernet
from cli_contract import assert_one_line_error, run_cli
from tiny_corpus import no_checksum_warnings, write_corpus  # noqa: F401  (an autouse fixture)

TINY = {"space": "darts-rnn", "data": "ptb", "epochs": 2, "batch_size": 4,
        "supernet_options": {"emsize": 6}, "task_options": {"batches": 3, "bptt": 5}}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), words=25, seed=1, lines=(60, 30, 10), longest=9)


# -- the cell -----------------------------------------------------------------------------------------
def reference_cell(cell, weights, x, h_prev, x_mask, h_mask):
    """DARTSCellSearch.cell (rnn/model_search.py:16-43) and DARTSCell._compute_init_state (model.py:47-56),
    in training mode, its BN as F.batch_norm on batch statistics without affine parameters."""
    bn = lambda s: F.batch_norm(s, None, None, training=True, eps=1e-5)  # noqa: E731
    nhid = cell.nhid
    c0, h0 = torch.split(torch.cat([x * x_mask, h_prev * h_mask], -1).mm(cell._W0), nhid, dim=-1)
    s0 = bn(h_prev + c0.sigmoid() * (h0.tanh() - h_prev))
    fns = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda v: v}
    offset, states = 0, s0.unsqueeze(0)
    for i in range(STEPS):
        ch = (states * h_mask.unsqueeze(0)).view(-1, nhid).mm(cell._Ws[i]).view(i + 1, -1, 2 * nhid)
        c, h = torch.split(ch, nhid, dim=-1)
        c = c.sigmoid()
        s = torch.zeros_like(s0)
        for k, name in enumerate(OPS):
            if name == "none":
                continue
            unweighted = states + c * (fns[name](h) - states)
            s += torch.sum(weights[offset:offset + i + 1, k].unsqueeze(-1).unsqueeze(-1) * unweighted, dim=0)
        states = torch.cat([states, bn(s).unsqueeze(0)], 0)
        offset += i + 1
    return torch.mean(states[-8:], dim=0)


def _inputs(batch=3, nhid=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, h = torch.randn(batch, nhid, generator=g, dtype=torch.float64), torch.randn(batch, nhid, generator=g, dtype=torch.float64)
    masks = [(torch.rand(batch, nhid, generator=g, dtype=torch.float64) > 0.3).double() / 0.7 for _ in range(2)]
    return x, h, *masks


def test_the_mixed_cell_is_the_references():
    torch.manual_seed(0)
    cell = DartsRnnSearchCell(4, 4, 0.25, 0.75).double().train()
    weights = torch.softmax(torch.randn(len(EDGE_ROWS), len(OPS), dtype=torch.float64), -1)
    x, h, x_mask, h_mask = _inputs()
    cell.weights = weights
    ours = cell.cell(x, h, x_mask, h_mask)
    torch.testing.assert_close(ours, reference_cell(cell, weights, x, h, x_mask, h_mask), rtol=1e-12, atol=1e-12)


def one_hot_weights(genotype) -> torch.Tensor:
    """1 at (row of node k's chosen input, its activation); `none` on every other row."""
    w = torch.zeros(len(EDGE_ROWS), len(OPS), dtype=torch.float64)
    w[:, OPS.index("none")] = 1.0
    for k, (op, source) in enumerate(genotype.recurrent):
        row = ROW_OF[(k + 1, source)]
        w[row] = 0.0
        w[row, OPS.index(op)] = 1.0
    return w


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("hard", [False, True])
def test_one_hot_weights_make_the_discrete_cell(seed, hard):
    space = get_space("darts-rnn")
    genotype = space.sample(seed)
    torch.manual_seed(seed)
    mixed = DartsRnnSearchCell(4, 4, 0.25, 0.75, batch_norm=False).double().train()
    discrete = DartsRnnCell(4, 4, 0.25, 0.75, genotype).double().train()
    discrete.load_state_dict(mixed.state_dict())  # the same W0 and W_k
    mixed.weights = one_hot_weights(genotype)
    mixed.hard = mixed.weights.argmax(-1).tolist() if hard else None
    x, h, x_mask, h_mask = _inputs(seed=seed)
    torch.testing.assert_close(mixed.cell(x, h, x_mask, h_mask), discrete.cell(x, h, x_mask, h_mask),
                               rtol=1e-12, atol=1e-12)


def test_a_hard_relaxation_gives_every_alpha_a_gradient():
    torch.manual_seed(0)
    net = DartsRnnSupernet(20, build_relaxation("gumbel_hard"), emsize=4, nhid=4)
    tokens = torch.randint(0, 20, (3, 2))
    log_prob, _ = net(tokens, net.init_hidden(2))
    F.nll_loss(log_prob.view(-1, 20), tokens.view(-1)).backward()
    grad = net.alphas["recurrent"].grad
    assert torch.isfinite(grad).all() and (grad != 0).sum() > len(EDGE_ROWS)


# -- the task ---------------------------------------------------------------------------------------
def _search(corpus_dir, **overrides) -> DifferentiableSearch:
    options = {**TINY, "data_dir": str(corpus_dir), **overrides}
    return DifferentiableSearch(resolve_config(options.pop("method", "darts"), overrides=options), quiet=True)


def test_the_walk_is_the_references(corpus_dir):
    rng, mirror = np.random.default_rng(5), np.random.default_rng(5)
    steps = walk(200, 35, rng)
    i = 0
    for position, seq_len in steps:  # train_search.py:179-185, :267
        assert position == i and seq_len == int(35 if mirror.random() < 0.95 else 35 / 2.0)
        i += seq_len
    assert i >= 200 - 2 > steps[-1][0]
    assert {search_length(35, np.random.default_rng(s)) for s in range(200)} == {35, 17}


def test_valid_windows_follow_the_train_position(corpus_dir):
    search = _search(corpus_dir)
    task = search.task
    task.begin_epoch(0)
    valid = task.valid_loader.source
    for (i, seq_len), train, val in zip(task.steps(0), task.train_loader, task.valid_loader):
        assert torch.equal(train.x, task.train_loader.source[i:i + seq_len])
        j = i % (len(valid) - 1)
        assert torch.equal(val.x, valid[j:j + min(task.bptt, len(valid) - 1 - j)])
        assert torch.equal(val.y, valid[j + 1:j + 1 + min(task.bptt, len(valid) - 1 - j)])


def test_hidden_states_are_carried_per_stream_and_detached(corpus_dir):
    search = _search(corpus_dir, supernet_options={"emsize": 6, "dropout": 0, "dropouth": 0, "dropoutx": 0,
                                                   "dropouti": 0})
    task, model = search.task, search.model
    task.begin_epoch(0)
    train, valid = next(iter(task.train_loader)), next(iter(task.valid_loader))
    search.weight_step(train)
    h_train = task.hidden[TRAIN]
    assert task.hidden[VALID] is None and not h_train.requires_grad
    with torch.no_grad():  # the valid stream starts from the zero state, at the weights and alpha of the step
        _, expected = model(valid.x, model.init_hidden(valid.x.shape[1]))
    search.arch_step(train, valid)
    assert task.hidden[TRAIN] is h_train  # the architecture step leaves the train stream alone
    torch.testing.assert_close(task.hidden[VALID], expected, rtol=1e-5, atol=1e-6)
    before = [t.clone() for t in (task.hidden[TRAIN], task.hidden[VALID])]
    task.loss(model, train)  # a pure function of the batch: nothing carried
    assert all(torch.equal(a, b) for a, b in zip(before, (task.hidden[TRAIN], task.hidden[VALID])))
    task.begin_epoch(1)
    assert task.hidden == {TRAIN: None, VALID: None}  # zero at each epoch's start


def test_the_learning_rate_follows_the_window(corpus_dir):
    search = _search(corpus_dir)
    group = search.w_optimizer.param_groups[0]
    short = search.task.train_loader.source[:2]  # a window of 2 rows, bptt 5
    window = Window(short, short, TRAIN)
    with search.task.step_scope(search.w_optimizer, window):
        assert group["lr"] == pytest.approx(20.0 * 2 / 5)
    assert group["lr"] == 20.0


def test_arch_gradients_are_finite_and_second_order_is_the_unrolled_derivative(corpus_dir):
    search = _search(corpus_dir, supernet_options={"emsize": 4, "dropout": 0, "dropouth": 0, "dropoutx": 0,
                                                   "dropouti": 0})
    task, model = search.task, search.model.double()
    model.train()
    task.begin_epoch(0)
    train, valid = next(iter(task.train_loader)), next(iter(task.valid_loader))
    weights, alphas = search.weights, search.alphas
    opt = torch.optim.SGD(weights, lr=0.5, weight_decay=1e-3)
    bn = {k: v.clone() for k, v in model.named_buffers()}

    def restore():
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(bn[k])

    def val_loss():
        return task.loss(model, valid)

    def train_loss():
        return task.loss(model, train)

    first, _ = first_order_arch_grads(val_loss, alphas, weights)
    assert all(torch.isfinite(g).all() for g in first)
    grads, _ = second_order_arch_grads(train_loss, val_loss, weights, alphas, opt, 0.5, clip=1e6)
    assert all(torch.isfinite(g).all() for g in grads)

    def unrolled(alpha):  # L_val(w - xi (grad_w L_train(w, alpha) + wd w), alpha), at alpha
        restore()
        with torch.no_grad():
            alphas[0].copy_(alpha)
        g = torch.autograd.grad(train_loss(), weights, allow_unused=True)
        saved = [w.detach().clone() for w in weights]
        with torch.no_grad():
            for w, d in zip(weights, g):
                w.sub_(0.5 * ((0 if d is None else d) + 1e-3 * w))
            value = float(val_loss())
            for w, s in zip(weights, saved):
                w.copy_(s)
        return value

    alpha0, eps = alphas[0].detach().clone(), 1e-5
    for row, col in ((0, 1), (5, 2), (30, 4)):
        bump = torch.zeros_like(alpha0)
        bump[row, col] = eps
        numeric = (unrolled(alpha0 + bump) - unrolled(alpha0 - bump)) / (2 * eps)
        assert grads[0][row, col].item() == pytest.approx(numeric, rel=1e-4, abs=1e-9)


# -- configuration and end to end ------------------------------------------------------------------
def test_the_space_brings_the_references_recipe():
    config = resolve_config("darts2", overrides={"space": "darts-rnn"})
    assert (config.data, config.epochs, config.batch_size, config.w_lr, config.w_momentum) == ("ptb", 50, 256, 20.0, 0.0)
    assert (config.grad_clip, config.w_weight_decay, config.arch_lr, config.arch_weight_decay) == (0.25, 5e-7, 3e-3, 1e-3)
    assert config.order == 2 and config.hessian_every == 0
    assert resolve_config("darts").w_lr == 0.025  # image spaces keep their values


@pytest.mark.parametrize("overrides, message", [
    ({"space": "darts-rnn", "C": 8}, "'C' does not apply"),
    ({"space": "darts-rnn", "data": "digits"}, "token stream"),
    ({"space": "nb201", "data": "ptb"}, "token stream"),
    ({"space": "darts-rnn", "limit_train": 100}, "limit_train"),
    ({"space": "darts-rnn", "hessian_every": 1, "hessian_order": 2}, "hessian_order must be 1"),
    ({"space": "darts-rnn", "task_options": {"bptt": 1}}, "bptt"),
    ({"space": "darts-rnn", "task_options": {"bpt": 5}}, "bpt"),
    ({"task_options": {"bptt": 5}}, "task_options"),
    ({"space": "darts-rnn", "selector": "sample_and_rank"}, "selector=argmax or shared-weights"),
    ({"space": "darts-rnn", "selector": "shared-weights", "selector_options": {"candidates": "top"}}, "candidates=top"),
])
def test_options_that_do_not_fit_the_task_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(overrides.pop("method", "darts"), overrides=overrides)


@settings(max_examples=60, deadline=None)
@given(options=st.dictionaries(st.sampled_from(["bptt", "ar", "tar", "batches", "bpt"]),
                               st.one_of(st.integers(-3, 50), st.floats(allow_nan=True), st.none(), st.text(max_size=3)),
                               max_size=3))
def test_task_options_are_a_valid_task_or_a_config_error(options):
    try:
        parsed = task_options(options)
    except ConfigError:
        return
    assert parsed.bptt >= 2 and np.isfinite(parsed.ar) and parsed.ar >= 0 and np.isfinite(parsed.tar)
    assert parsed.tar >= 0 and (parsed.batches is None or parsed.batches >= 1)


def test_an_image_option_with_the_rnn_space_is_a_one_line_error():
    assert_one_line_error(["search", "--space", "darts-rnn", "C=8", "--quiet"], "'C' does not apply")
    assert_one_line_error(["search", "--space", "nb201", "--data", "ptb", "--quiet"], "token stream")


@pytest.mark.parametrize("method", ["darts", "darts2", "gdas", "balenas", "snas", "drnas"])
def test_a_tiny_search_end_to_end(corpus_dir, tmp_path, method):
    run = tmp_path / "run"
    code, _, err = run_cli(["search", "--method", method, "--space", "darts-rnn", "--data-dir", str(corpus_dir),
                      "epochs=2", "batch_size=4", "supernet_options={emsize: 6}",
                      "task_options={batches: 3, bptt: 5}", "--out", str(run), "--quiet"])
    assert code == 0, err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert r["valid_ppl"] == pytest.approx(np.exp(r["valid_loss"])) and np.isfinite(r["train_loss"])
    genotype = json.loads((run / "genotype.json").read_text())["genotype"]
    assert get_space("darts-rnn").from_string(genotype).steps == STEPS


def test_a_resumed_search_is_the_uninterrupted_one(corpus_dir, tmp_path):
    common = ["search", "--method", "darts2", "--space", "darts-rnn", "--data-dir", str(corpus_dir),
              "batch_size=4", "supernet_options={emsize: 6}", "task_options={batches: 3, bptt: 5}", "--quiet"]
    assert run_cli([*common, "epochs=2", "--out", str(tmp_path / "whole")])[0] == 0
    assert run_cli([*common, "epochs=1", "--out", str(tmp_path / "part")])[0] == 0
    assert run_cli(["search", "--resume", str(tmp_path / "part"), "epochs=2", "--quiet"])[0] == 0

    def lines(run):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert lines("part") == lines("whole")


def test_the_corpus_is_read_once_and_the_supernet_sized_by_its_vocabulary(corpus_dir):
    corpus = load_ptb(corpus_dir)
    search = DifferentiableSearch(resolve_config("darts", overrides={**TINY, "data_dir": str(corpus_dir)}),
                                  quiet=True, dataset=corpus)
    assert search.task.dataset is corpus and isinstance(search.task, LanguageModelling)
    assert search.model.model.decoder.out_features == len(corpus.vocab)
