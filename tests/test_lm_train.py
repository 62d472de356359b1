"""Language-model training: one epoch against a transcription of quark0/darts rnn/train.py's train(), NT-ASGD's
switch against a transcription driven by scripted validation losses, evaluation with ASGD's averages, NaN
losses, resume, and the train command end to end on a tiny corpus."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archsearch.data.ptb import batchify, get_batch, load_ptb
from archsearch.errors import ConfigError, NonFiniteLossError
from archsearch.evaluate import get_recipe, train
from archsearch.evaluate.lm_train import LMTrainer, switch_to_asgd, train_language_model
from cli_contract import assert_one_line_error, run_cli
from tiny_corpus import no_checksum_warnings, write_corpus  # noqa: F401  (an autouse fixture)



@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), words=30, seed=0, lines=(150, 30, 30), longest=12)


TINY = dict(epochs=2, emsize=8, batch_size=4, eval_batch_size=2, test_batch_size=1, bptt=6, max_seq_len_delta=3)


def _trainer(corpus_dir, out=None, **recipe):
    return LMTrainer("DARTS_V2", "darts-rnn", get_recipe("darts-rnn", **{**TINY, **recipe}), out,
                     data_dir=corpus_dir, seed=3)


# ---- the training step -------------------------------------------------------------------------------
def _reference_epoch(model, train_data, args, rng):
    """rnn/train.py:159-229 (np.random as ``rng``, Variables as tensors, SGD as line 246)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, weight_decay=args.wdecay)
    hidden = [model.init_hidden(args.small_batch_size) for _ in range(args.batch_size // args.small_batch_size)]
    i = 0
    while i < train_data.size(0) - 1 - 1:
        bptt = args.bptt if rng.random() < 0.95 else args.bptt / 2.
        seq_len = max(5, int(rng.normal(bptt, 5)))
        seq_len = min(seq_len, args.bptt + args.max_seq_len_delta)
        lr2 = optimizer.param_groups[0]['lr']
        optimizer.param_groups[0]['lr'] = lr2 * seq_len / args.bptt
        model.train()
        data, targets = get_batch(train_data, i, seq_len)
        optimizer.zero_grad()
        start, end, s_id = 0, args.small_batch_size, 0
        while start < args.batch_size:
            cur_data, cur_targets = data[:, start: end], targets[:, start: end].contiguous().view(-1)
            hidden[s_id] = hidden[s_id].detach()
            log_prob, hidden[s_id], rnn_hs, dropped_rnn_hs = model(cur_data, hidden[s_id], return_h=True)
            raw_loss = F.nll_loss(log_prob.view(-1, log_prob.size(2)), cur_targets)
            loss = raw_loss
            if args.alpha > 0:
                loss = loss + sum(args.alpha * h.pow(2).mean() for h in dropped_rnn_hs[-1:])
            loss = loss + sum(args.beta * (h[1:] - h[:-1]).pow(2).mean() for h in rnn_hs[-1:])
            loss *= args.small_batch_size / args.batch_size
            loss.backward()
            s_id += 1
            start = end
            end = start + args.small_batch_size
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        optimizer.param_groups[0]['lr'] = lr2
        i += seq_len


def test_an_epoch_is_the_references_train_loop(corpus_dir):
    trainer = _trainer(corpus_dir, small_batch_size=2, alpha=2.0, beta=1.0, wdecay=1e-3, lr=5.0)
    trainer._build()
    reference_model = copy.deepcopy(trainer.net)
    torch.manual_seed(11)
    trainer.rng = np.random.default_rng(5)
    trainer.train_epoch(0)
    torch.manual_seed(11)  # the same dropout masks, drawn in the same order
    _reference_epoch(reference_model, trainer.train_data, trainer.recipe, np.random.default_rng(5))
    for (name, ours), theirs in zip(trainer.net.named_parameters(), reference_model.parameters()):
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6), name
    assert not torch.equal(trainer.net.encoder.weight, copy.deepcopy(trainer.net).encoder.weight * 0)


# ---- NT-ASGD -----------------------------------------------------------------------------------------
def _reference_switches(losses, nonmono):
    """rnn/train.py:289-305: the epoch (1-based) after which SGD became ASGD, or None."""
    best_val_loss = []
    for epoch, val_loss in enumerate(losses, start=1):
        if len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono]):
            return epoch
        best_val_loss.append(val_loss)
    return None


@pytest.mark.parametrize("losses, nonmono, expected", [
    ([5, 4, 3, 2, 1, 0.5, 0.4, 0.3], 5, None),  # always improving: never
    ([5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9, 3.95], 5, 9),  # the first epoch worse than the best of all but the last 5
    ([5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9, 3.95], 2, 6),
    ([5, 6, 7, 8], 1, 3),
    ([3, 3, 3, 3, 3, 3, 3, 3], 1, None),  # equal is not worse
])
def test_the_switch_to_asgd_is_the_references_rule(corpus_dir, losses, nonmono, expected):
    assert _reference_switches(losses, nonmono) == expected  # worked by hand
    trainer = _trainer(corpus_dir, nonmono=nonmono)
    trainer._build()
    scripted = iter(losses)
    trainer.evaluate = lambda source, batch_size: next(scripted)
    switched = None
    for epoch in range(len(losses)):
        before = trainer.averaging
        trainer.end_of_epoch(epoch)
        if trainer.averaging and not before:
            switched = epoch + 1
    assert switched == _reference_switches(losses, nonmono)
    assert trainer.best_loss == min(losses)
    if switched is not None:
        group = trainer.optimizer.param_groups[0]
        assert isinstance(trainer.optimizer, torch.optim.ASGD) and group["t0"] == 0 and group["lambd"] == 0
        assert trainer.asgd_from == switched + 1
    assert all(switch_to_asgd(losses[:k], losses[k], nonmono) is (k + 1 == switched)
               for k in range(len(losses)) if switched is None or k + 1 <= switched)


def test_validation_under_asgd_uses_the_averaged_weights_and_restores_the_live_ones(corpus_dir):
    trainer = _trainer(corpus_dir)
    trainer._build()
    trainer.optimizer = trainer._optimizer("asgd")
    trainer.train_epoch(0)
    live = [p.detach().clone() for p in trainer.net.parameters()]
    averaged = [trainer.optimizer.state[p]["ax"].clone() for p in trainer.net.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(live, averaged))
    val_loss = trainer.end_of_epoch(0)
    assert all(torch.equal(p, q) for p, q in zip(trainer.net.parameters(), live))
    model = copy.deepcopy(trainer.net)
    with torch.no_grad():
        for p, a in zip(model.parameters(), averaged):
            p.copy_(a)
    trainer.net, kept = model, trainer.net
    assert trainer.evaluate(trainer.valid_data, 2) == pytest.approx(val_loss, rel=1e-6)
    assert all(torch.equal(trainer.best_state[k], v) for k, v in model.state_dict().items())
    del kept


def test_evaluation_averages_the_nll_of_every_predicted_token(corpus_dir):
    trainer = _trainer(corpus_dir)
    trainer._build()
    trainer.net.eval()
    source = trainer.valid_data
    with torch.no_grad():  # one pass over the whole stream: the hidden state carries over the chunks anyway
        log_prob, _ = trainer.net(source[:-1], trainer.net.init_hidden(source.size(1)))
        whole = float(F.nll_loss(log_prob.view(-1, log_prob.size(2)), source[1:].reshape(-1)))
    assert trainer.evaluate(source, source.size(1)) == pytest.approx(whole, rel=1e-5)


# ---- the run -----------------------------------------------------------------------------------------
def test_a_nan_loss_stops_the_run_with_advice(corpus_dir, tmp_path):
    class Poisoned(LMTrainer):
        def _build(self):
            super()._build()
            self.net.encoder.weight.data[:] = float("nan")

    trainer = Poisoned("DARTS_V2", "darts-rnn", get_recipe("darts-rnn", **TINY), tmp_path / "run",
                       data_dir=corpus_dir)
    with pytest.raises(NonFiniteLossError, match="lower the learning rate"):
        trainer.run()
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_a_resumed_run_is_the_uninterrupted_run(corpus_dir, tmp_path):
    recipe = get_recipe("darts-rnn", **{**TINY, "epochs": 3, "nonmono": 1})
    whole = train_language_model("DARTS_V2", recipe=recipe, out_dir=tmp_path / "a", data_dir=corpus_dir, seed=1)
    part = train_language_model("DARTS_V2", recipe=recipe, out_dir=tmp_path / "b", data_dir=corpus_dir, seed=1,
                                stop_after=1)
    assert not part["completed"]
    resumed = train_language_model("DARTS_V2", recipe=recipe, out_dir=tmp_path / "b", data_dir=corpus_dir, seed=1,
                                   resume=True)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")} for r in h]  # noqa: E731
    assert strip(resumed["history"]) == strip(whole["history"])
    assert resumed["test_ppl"] == whole["test_ppl"]
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_image_and_language_recipes_are_not_mixed(corpus_dir):
    with pytest.raises(ConfigError, match="a language model takes the darts-rnn recipe"):
        LMTrainer("DARTS_V2", "darts-rnn", "nb201", data_dir=corpus_dir)
    with pytest.raises(ConfigError, match="a language model trains"):
        train("DARTS_V2", "darts-rnn", "digits", recipe="darts-rnn")


def test_train_command_end_to_end_and_resume(corpus_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "DARTS_V2", "--space", "darts-rnn", "--data-dir", str(corpus_dir), "--epochs", "1",
            "--emsize", "8", "batch_size=4", "bptt=6", "--limit-train", "600", "--limit-test", "100", "--out",
            str(out), "--json"]
    code, stdout, err = run_cli(argv)
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["dataset"] == "ptb" and result["params"] == 31 * 8 + 16 * 16 + 8 * 8 * 16 + 31
    assert json.loads((out / "result.json").read_text())["test_ppl"] == result["test_ppl"]
    corpus = load_ptb(corpus_dir)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1 and corpus.ntokens == 31
    code, _, err = run_cli(["train", "--resume", str(out), "epochs=2", "--quiet"])
    assert code == 0, err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert_one_line_error(["train", "--resume", str(out), "emsize=16"], "cannot change 'emsize'")
    assert_one_line_error(argv[:-3] + ["--out", str(tmp_path / "x"), "--C", "4"], "--C does not apply")
    assert_one_line_error(argv[:-3] + ["--out", str(tmp_path / "x"), "--limit-train", "1"], "limit_train")
    assert_one_line_error(["train", "Genotype(recurrent=[('tanh', 3)], concat=[1])", "--space", "darts-rnn",
                           "--data-dir", str(corpus_dir)], "may only take states 0..0")


def test_batchify_of_the_limited_corpus_is_what_the_trainer_trains_on(corpus_dir):
    trainer = _trainer(corpus_dir)
    trainer.limits["limit_train"] = 100
    trainer._build()
    assert torch.equal(trainer.train_data, batchify(load_ptb(corpus_dir).train[:100], 4))


def test_the_recipe_defaults_are_rnn_train_py_s():
    recipe = get_recipe("darts-rnn")  # quark0/darts rnn/train.py argument defaults, lines 24-72 and 110-111
    expected = dict(epochs=8000, batch_size=64, eval_batch_size=10, test_batch_size=1, lr=20.0, clip=0.25, bptt=35,
                    max_seq_len_delta=20, dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2, dropoute=0.1,
                    wdecay=8e-7, alpha=0.0, beta=1e-3, nonmono=5, emsize=850, nhid=850)
    assert {k: getattr(recipe, k) for k in expected} == expected and recipe.chunk == 64
    assert recipe.replace(emsize=200).nhid == 200
    with pytest.raises(ConfigError, match="multiple of small_batch_size"):
        recipe.replace(small_batch_size=10)
    with pytest.raises(ConfigError, match="did you mean 'dropoutx'"):
        recipe.replace(dropout_x=0.5)
