"""The Hessian diagnostic on the language-modelling task: the largest eigenvalue of the Hessian of the NLL
of the fixed search-valid window (zero hidden state, dropout masks from a fixed seed) w.r.t. alpha,
against ``torch.autograd.functional.hessian`` of that loss written out by hand, in float64; and a tiny
search with ``hessian_every`` and RobustDARTS' early stopping on PTB."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.search.eigenvalue import supernet_eigenvalue
from archsearch.search.lm_task import DIAGNOSTIC_SEED, VALID, LanguageModelling
from archsearch.search.resolve import resolve_config
from archsearch.spaces import get_space
from cli_contract import run_cli
from tiny_corpus import no_checksum_warnings, write_corpus  # noqa: F401  (an autouse fixture)



@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), words=12, seed=2, lines=(40, 20, 5), longest=9)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_largest_eigenvalue_is_that_of_the_exact_hessian(corpus_dir, seed):
    config = resolve_config("darts", overrides={"space": "darts-rnn", "data_dir": str(corpus_dir), "batch_size": 8,
                                                "task_options": {"bptt": 4}})
    task = LanguageModelling(config)
    torch.manual_seed(seed)
    supernet = get_space("darts-rnn").supernet(num_classes=task.num_classes, relaxation=build_relaxation("softmax"),
                                               emsize=4).double().train()
    with torch.no_grad():
        supernet.alphas["recurrent"].normal_(0, 0.1)
    (name, alpha), = [(n, p) for n, p in supernet.named_parameters() if p is supernet.alphas["recurrent"]]
    batch = task.fixed_batch
    assert batch.stream == VALID
    before = {k: v.clone() for k, v in supernet.named_buffers()}

    def loss(a):  # the NLL per token from h = 0, the masks drawn from the task's fixed seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(DIAGNOSTIC_SEED)
            hidden = torch.zeros(1, batch.x.shape[1], 4, dtype=torch.float64)
            log_prob, _ = functional_call(supernet, {name: a}, (batch.x, hidden))
        return F.nll_loss(log_prob.reshape(-1, log_prob.shape[-1]), batch.y.reshape(-1))

    H = torch.autograd.functional.hessian(loss, alpha.detach().clone()).reshape(alpha.numel(), alpha.numel())
    expected = float(torch.linalg.eigvalsh((H + H.T) / 2)[-1])
    with torch.no_grad():  # the same function
        assert float(task.diagnostic_loss(supernet, batch)) == float(loss(alpha.detach()))
    for k, v in supernet.named_buffers():  # the oracle's forwards must not move what the estimate starts from
        v.copy_(before[k])
    assert float((H - H.T).abs().max()) <= 1e-12 * float(H.abs().max())
    ours = supernet_eigenvalue(supernet, build_relaxation("softmax"), batch, iters=alpha.numel(),
                               generator=torch.Generator().manual_seed(0), loss_of=task.diagnostic_loss)
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-9)
    for k, v in supernet.named_buffers():  # BN's running statistics restored
        assert torch.equal(v, before[k]) or k.endswith("num_batches_tracked")


def test_the_unrolled_hessian_is_refused_on_a_language_model():
    with pytest.raises(ConfigError, match="hessian_order must be 1"):
        resolve_config("darts", overrides={"space": "darts-rnn", "hessian_every": 1, "hessian_order": 2})


def test_a_tiny_search_with_the_eigenvalue_and_rdarts(corpus_dir, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli(["search", "--method", "darts", "--space", "darts-rnn", "--data-dir", str(corpus_dir),
                            "epochs=2", "batch_size=3", "supernet_options={emsize: 4}",
                            "task_options={batches: 2, bptt: 4}", "hessian_every=1", "early_stop=rdarts",
                            "early_stop_options={rdarts: {start_epoch: 0, window: 1}}", "--out", str(run), "--quiet"])
    assert code == 0, err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(np.isfinite(r["hessian_max_eigenvalue"]) for r in records)
