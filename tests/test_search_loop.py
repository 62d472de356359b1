"""The bilevel loop end to end on synthetic data and digits; configuration; determinism."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.data import load_dataset
from archsearch.errors import ConfigError, NonFiniteLossError, UnknownNameError
from archsearch.search import METHODS
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.utils.io import read_jsonl
from cli_contract import assert_one_line_error

TINY = {"C": 4, "N": 1, "epochs": 2, "batch_size": 32, "hessian_iters": 5}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", quiet=True)


def test_presets_are_registered_with_their_paper():
    assert {"darts", "darts2"} <= set(METHODS.names())
    assert resolve_config("darts2").order == 2 and resolve_config("darts").order == 1
    # NB201 protocol / DARTS defaults
    c = resolve_config("darts")
    assert (c.arch_lr, c.arch_betas, c.arch_weight_decay) == (3e-4, (0.5, 0.999), 1e-3)
    assert (c.w_lr, c.w_lr_min, c.w_momentum, c.w_weight_decay, c.grad_clip) == (0.025, 0.001, 0.9, 3e-4, 5.0)
    assert (c.batch_size, c.epochs) == (64, 50)


def test_unknown_keys_and_methods_name_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        resolve_config("darts", overrides={"epoch": 3})
    with pytest.raises(UnknownNameError, match="did you mean 'darts'"):
        resolve_config("dart")
    with pytest.raises(ConfigError, match="bad value"):
        resolve_config("darts", overrides={"epochs": "many"})


def test_search_on_synthetic_data_learns(tmp_path):
    data = load_dataset("synthetic", num_train=256, num_test=32, channels=3, size=8, num_classes=4, seed=0)
    config = resolve_config("darts", overrides={**TINY, "data": "synthetic"})
    search = DifferentiableSearch(config, tmp_path, quiet=True, dataset=data)
    before = [a.detach().clone() for a in search.alphas]
    weights_before = [w.detach().clone() for w in search.weights]
    genotype = search.run()
    assert all(not torch.equal(a, b) for a, b in zip(search.alphas, before))
    assert any(not torch.equal(w, b) for w, b in zip(search.weights, weights_before))
    assert all("none" != op for op in genotype.ops)
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2]


def test_digits_run_writes_the_run_directory(tmp_path, digits):
    config = resolve_config("darts", overrides={**TINY, "hessian_every": 1})
    summary = run_search(config, tmp_path, quiet=True, dataset=digits)
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert len(records) == 2
    first = records[0]
    for key in ("epoch", "genotype", "train_loss", "train_acc", "valid_loss", "valid_acc", "op_weights",
                "skip_count", "hessian_max_eigenvalue", "seconds", "ground_truth"):
        assert key in first, key
    weights = torch.tensor(first["op_weights"]["cell"])
    assert weights.shape == (6, 5) and torch.allclose(weights.sum(dim=1), torch.ones(6), atol=1e-5)
    assert first["skip_count"] == first["genotype"].count("skip_connect")
    assert first["ground_truth"]["cifar10"]["test"] > 0
    assert isinstance(first["hessian_max_eigenvalue"], float)
    saved = json.loads((tmp_path / "genotype.json").read_text())
    assert saved["genotype"] == summary["genotype"] == records[-1]["genotype"]
    assert saved["space"] == "nb201" and "ground_truth" in saved
    for name in ("config.yaml", "checkpoint.pt", "op_weights.png", "hessian_eigenvalue.png", "skip_count.png",
                 "ground_truth.png"):
        assert (tmp_path / name).is_file(), name


def test_second_order_runs_end_to_end(tmp_path, digits):
    config = resolve_config("darts2", overrides={**TINY, "epochs": 1, "hessian_every": 0})
    summary = run_search(config, tmp_path, quiet=True, dataset=digits)
    assert summary["method"] == "darts2"
    assert read_jsonl(tmp_path / "metrics.jsonl")[0]["hessian_max_eigenvalue"] is None


def test_same_seed_same_run_and_config_reproduces(tmp_path, digits):
    config = resolve_config("darts", overrides={**TINY, "deterministic": True})
    run_search(config, tmp_path / "a", quiet=True, dataset=digits)
    again = resolve_config(config_file=tmp_path / "a" / "config.yaml")
    assert again == config
    run_search(again, tmp_path / "b", quiet=True, dataset=digits)

    def strip(records):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in records]

    assert strip(read_jsonl(tmp_path / "a" / "metrics.jsonl")) == strip(read_jsonl(tmp_path / "b" / "metrics.jsonl"))


def test_nan_loss_is_one_clear_error_and_keeps_the_checkpoint(tmp_path, digits):
    config = resolve_config("darts", overrides={**TINY, "epochs": 3, "hessian_every": 0})
    search = DifferentiableSearch(config, tmp_path, quiet=True, dataset=digits)
    search.config = config.replace(epochs=1)
    search.run()
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    search.config = config
    with torch.no_grad():
        search.alphas[0].fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 1"):
        search.run()
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved


# -- step_order: which step comes first within an iteration ------------------------------------------------
def _traced_epoch(search):
    """One epoch with every weight and architecture step recorded: (kind, weights at entry, weights at exit,
    alphas at entry, the batches it was handed, alpha.grad as the architecture optimizer used it)."""
    trace = []
    weight_step, arch_step = search.weight_step, search.arch_step

    def snapshot(params):
        return [p.detach().clone() for p in params]

    def traced_weight_step(batch, meter=None):
        entry = snapshot(search.weights)
        loss = weight_step(batch, meter)
        trace.append(("weights", entry, snapshot(search.weights), None, batch, None))
        return loss

    def traced_arch_step(train_batch, valid_batch, meter=None):
        entry, alphas = snapshot(search.weights), snapshot(search.alphas)
        loss = arch_step(train_batch, valid_batch, meter)
        grads = [a.grad.detach().clone() for a in search.alphas]
        trace.append(("arch", entry, snapshot(search.weights), alphas, valid_batch, grads))
        return loss

    search.weight_step, search.arch_step = traced_weight_step, traced_arch_step
    search.train_epoch()
    return trace


def _val_grad_at(search, weights, alphas, batch):
    """Oracle: grad_alpha L_val(w, alpha) by one forward and backward of the supernet at the given values."""
    with torch.no_grad():
        for p, v in zip([*search.weights, *search.alphas], [*weights, *alphas]):
            p.copy_(v)
    x, y = batch
    loss = torch.nn.functional.cross_entropy(search.model(x), y)
    return torch.autograd.grad(loss, search.alphas)


@pytest.mark.parametrize("order", ["weights-first", "arch-first"])
def test_step_order_decides_the_weights_alphas_gradient_is_taken_at(order):
    data = load_dataset("synthetic", num_train=32, num_test=8, channels=3, size=8, num_classes=4, seed=0)
    config = resolve_config("darts", overrides={"data": "synthetic", "C": 2, "N": 1, "epochs": 1, "batch_size": 8,
                                                "hessian_every": 0, "step_order": order})
    search = DifferentiableSearch(config, None, quiet=True, dataset=data)
    trace = _traced_epoch(search)
    kinds = [t[0] for t in trace]
    first, then = ("weights", "arch") if order == "weights-first" else ("arch", "weights")
    assert kinds == [first, then] * 2  # 16 search-train and 16 search-valid images, batches of 8
    for k in range(2):
        w_step, a_step = (trace[2 * k], trace[2 * k + 1]) if first == "weights" else (trace[2 * k + 1], trace[2 * k])
        _, w_entry, w_exit, _, _, _ = w_step
        _, a_entry, a_exit, alphas, valid_batch, used = a_step
        assert any(not torch.equal(a, b) for a, b in zip(w_entry, w_exit))  # the weight step moved w
        assert all(torch.equal(a, b) for a, b in zip(a_entry, a_exit))  # a first-order alpha step leaves w alone
        at = w_exit if order == "weights-first" else w_entry  # the new w (XNAS Alg. 1) or the old one (DARTS)
        assert all(torch.equal(a, b) for a, b in zip(a_entry, at))
        expected = _val_grad_at(search, at, alphas, valid_batch)
        for g, e in zip(used, expected):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-8)
        other = _val_grad_at(search, w_entry if order == "weights-first" else w_exit, alphas, valid_batch)
        assert any(not torch.allclose(g, o, rtol=1e-5, atol=1e-8) for g, o in zip(used, other))


def test_step_order_defaults_to_arch_first_and_xnas_and_setn_take_their_papers_order():
    for name in METHODS.names():  # XNAS' Alg. 1; SETN.py steps the weights, then alpha
        expected = "weights-first" if name in ("xnas", "setn") else "arch-first"
        assert resolve_config(name).step_order == expected, name
    assert resolve_config("xnas", overrides={"step_order": "arch-first"}).step_order == "arch-first"


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans()))
def test_step_order_takes_only_its_two_names(value):
    if value in ("arch-first", "weights-first"):
        assert resolve_config("darts", overrides={"step_order": value}).step_order == value
    else:
        with pytest.raises(ConfigError, match="step_order"):
            resolve_config("darts", overrides={"step_order": value})


def test_a_bad_step_order_on_the_command_line_is_one_line_and_exit_2():
    assert_one_line_error(["config", "darts", "step_order=both"], "step_order", "weights-first")
