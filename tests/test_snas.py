"""SNAS: the concrete relaxation's annealing, its limit as tau -> 0, and the resource constraint.

Oracles: the released Temp_Scheduler (linear from 1 to 0.03, stepped before each epoch); the Gumbel-max
property P(argmax z = k) = softmax(alpha)_k (Maddison et al. 2017); NAS-Bench-201's op parameter counts
(xautodl ReLUConvBN with affine=False has a conv bias and no BN parameters: C*C*k*k + C).
"""

from __future__ import annotations

import math

import pytest
import torch

from archsearch.data import load_dataset
from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.relax.base import use_mean
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.spaces import get_space
from archsearch.utils.io import read_jsonl

TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "hessian_iters": 3}


def test_temperature_anneals_linearly_from_1_to_003():
    relaxation = build_relaxation("gumbel")
    for epoch in (0, 1, 74, 148, 149):
        relaxation.set_epoch(epoch, 150)
        assert relaxation.tau == pytest.approx(0.03 + (1 - 0.03) * (1 - (epoch + 1) / 150))
    assert relaxation.tau == pytest.approx(0.03)  # the last epoch runs at tau_min


def test_samples_lie_on_the_simplex_and_follow_gumbel_max():
    torch.manual_seed(0)
    relaxation = build_relaxation("gumbel")
    alpha = torch.tensor([[1.0, 0.0, -1.0, 0.5, 2.0]])
    relaxation.tau = 1.0
    n = 20000
    z = relaxation(alpha.expand(n, 5).contiguous())
    assert bool((z >= 0).all()) and torch.allclose(z.sum(dim=1), torch.ones(n), atol=1e-5)
    frequency = torch.bincount(z.argmax(dim=1), minlength=5).double() / n
    p = torch.softmax(alpha[0].double(), dim=0)
    assert torch.allclose(frequency, p, atol=float(5 * torch.sqrt(p * (1 - p) / n).max()))


def test_the_soft_sample_converges_to_one_hot_as_tau_falls():
    torch.manual_seed(1)
    relaxation = build_relaxation("gumbel")
    alpha = torch.randn(2000, 5)
    mean_max = []
    for tau in (10.0, 1.0, 0.1, 0.01, 0.001):
        relaxation.tau = tau
        mean_max.append(float(relaxation(alpha).max(dim=1).values.mean()))
    assert mean_max == sorted(mean_max) and mean_max[0] < 0.3  # near uniform (1/5) when hot
    assert mean_max[-1] > 0.99  # one-hot in the limit
    relaxation.tau = 1e-4
    z = relaxation(alpha)
    assert float((z.max(dim=1).values > 0.999).double().mean()) > 0.99


def test_mean_is_softmax():
    relaxation = build_relaxation("gumbel")
    alpha = torch.randn(6, 5)
    with use_mean(relaxation):
        assert torch.allclose(relaxation(alpha), torch.softmax(alpha, dim=-1))
    assert relaxation.hard is False


def _nb201_params(op: str, c: int) -> int:
    return {"nor_conv_1x1": c * c + c, "nor_conv_3x3": 9 * c * c + c}.get(op, 0)


def test_resource_constraint_is_lambda_log_of_the_sampled_parameter_count():
    torch.manual_seed(2)
    relaxation = build_relaxation("gumbel", resource_weight=0.01)
    space = get_space("nb201")
    model = space.supernet(num_classes=3, relaxation=relaxation, C=4, N=2, in_channels=1)
    relaxation.bind(model)
    # C_{edge, op}: the op's parameters summed over the 2 cells of each stage (channels 4, 8, 16)
    expected = torch.tensor([[2 * sum(_nb201_params(op, c) for c in (4, 8, 16)) for op in space.ops]] * 6,
                            dtype=torch.float64)
    assert torch.equal(relaxation.costs["cell"], expected)

    relaxation.phase = "arch"
    model(torch.randn(2, 1, 8, 8))  # draws z and keeps it for the resource term
    z = relaxation._samples[id(model.alphas["cell"])].detach().double()
    loss = relaxation.extra_loss(model.named_arch_parameters())
    assert float(loss.detach()) == pytest.approx(0.01 * math.log(float((z * expected).sum())), rel=1e-5)
    loss.backward()  # pathwise: the gradient reaches alpha through the sample
    assert bool((model.alphas["cell"].grad != 0).any())

    assert build_relaxation("gumbel").extra_loss(model.named_arch_parameters()) is None
    with pytest.raises(ConfigError, match="bind"):
        build_relaxation("gumbel", resource_weight=0.01).extra_loss(model.named_arch_parameters())
    with pytest.raises(ConfigError):
        build_relaxation("gumbel", tau_max=0.01, tau_min=0.1)


@pytest.mark.parametrize("options", [{}, {"relaxation_options": {"resource_weight": 0.01}}])
def test_snas_runs_end_to_end(tmp_path, options):
    config = resolve_config("snas", overrides={**TINY, **options})
    summary = run_search(config, tmp_path, quiet=True, dataset=load_dataset("digits", quiet=True))
    record = read_jsonl(tmp_path / "metrics.jsonl")[0]
    assert record["tau"] == pytest.approx(0.03)  # one epoch: the schedule's last value
    assert summary["genotype"] and summary["method"] == "snas"
    assert ("expected_params" in record) == bool(options)
