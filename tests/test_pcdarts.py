"""PC-DARTS: partial channel connections, channel shuffle, edge normalisation, the preset end to end."""

from __future__ import annotations

import math

import pytest
import torch

from archsearch.data import load_dataset
from archsearch.errors import ConfigError
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config
from archsearch.search.runner import run_search
from archsearch.spaces.supernet import OpWeights
from archsearch.spaces import get_space
from archsearch.spaces.darts import OPS as DARTS_OPS
from archsearch.spaces.darts_ops import make_search_op
from archsearch.spaces.partial import PartialChannelMixedOp, build_mixed_op, channel_shuffle
from archsearch.utils.checkpoint import CheckpointStore
from archsearch.utils.io import read_jsonl

TINY = {"C": 4, "N": 1, "epochs": 1, "batch_size": 32, "hessian_iters": 3}


class Softmax(OpWeights):
    def __call__(self, alpha):
        return torch.softmax(alpha, dim=-1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", quiet=True).limited(160, 32, 0)  # 2 search batches per epoch


def test_channel_shuffle_is_the_shufflenet_permutation():
    C, K = 12, 4
    x = torch.arange(C, dtype=torch.float32).view(1, C, 1, 1).expand(2, C, 3, 3).contiguous()
    out = channel_shuffle(x, K)
    # output channel j holds input channel (j mod K) * C/K + j div K (hand formula of a (K, C/K) transpose)
    expected = [(j % K) * (C // K) + j // K for j in range(C)]
    assert out[0, :, 0, 0].long().tolist() == expected
    assert sorted(expected) == list(range(C))  # a permutation: nothing lost, nothing repeated
    y = torch.randn(2, C, 3, 3)
    assert torch.equal(channel_shuffle(channel_shuffle(y, K), C // K), y)  # its inverse is the (C/K)-shuffle
    # channels-last in, channels-last out (the fused cell's format), the same permutation, and its gradient
    # the inverse permutation
    x_cl = x.contiguous(memory_format=torch.channels_last)
    out_cl = channel_shuffle(x_cl, K)
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out_cl, out)
    leaf = y.contiguous(memory_format=torch.channels_last).requires_grad_()
    (channel_shuffle(leaf, K) * out).sum().backward()
    assert torch.equal(leaf.grad[0, :, 0, 0], torch.arange(C, dtype=torch.float32))


@pytest.mark.parametrize("stride", [1, 2])
def test_k4_computes_a_quarter_of_the_channels_and_bypasses_the_rest(stride):
    C, K = 16, 4
    torch.manual_seed(0)
    mixed = build_mixed_op(DARTS_OPS, lambda op, width: make_search_op(op, width, stride), C, partial_channels=K)
    full = build_mixed_op(DARTS_OPS, lambda op, width: make_search_op(op, width, stride), C)
    assert isinstance(mixed, PartialChannelMixedOp)
    sep = mixed.ops[DARTS_OPS.index("sep_conv_3x3")]
    assert sep[0][1].in_channels == C // K  # the candidates are built on C/K channels
    x = torch.randn(2, C, 8, 8)
    w = torch.softmax(torch.randn(len(DARTS_OPS)), dim=0)
    out = mixed(x, w)
    assert out.shape == full(x, w).shape == (2, C, 8 // stride, 8 // stride)
    bypass = x if stride == 1 else torch.nn.functional.max_pool2d(x, 2, 2)
    for j in range(C):
        source = (j % K) * (C // K) + j // K  # channel of cat([ops(x[:, :C/K]), bypass]) shuffled to j
        if source >= C // K:
            assert torch.equal(out[:, j], bypass[:, source])


def _pair(space_name, **extra):
    """A plain DARTS supernet and one with partial channels K=1, edge normalisation off, same weights."""
    space = get_space(space_name)
    kw = dict(num_classes=5, C=4, in_channels=1, **({"N": 1} if space_name == "nb201" else {"layers": 3}))
    torch.manual_seed(0)
    plain = space.supernet(relaxation=Softmax(), **kw)
    torch.manual_seed(1)
    partial = space.supernet(relaxation=Softmax(), partial_channels=1, **kw, **extra)
    partial.load_state_dict(plain.state_dict())
    return plain.double(), partial.double()  # float64: equality up to rounding, not float32 noise


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_k1_without_edge_normalisation_equals_darts(space_name):
    plain, partial = _pair(space_name)
    assert any(isinstance(m, PartialChannelMixedOp) for m in partial.modules())
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 5, (6,))
    outputs, grads = [], []
    for net in (plain, partial):
        net.train()
        logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        params = net.arch_parameters() + net.weight_parameters()
        grads.append(torch.autograd.grad(loss, params))
        outputs.append(logits)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=1e-12)
    assert len(grads[0]) == len(grads[1])
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g1, g0, rtol=1e-9, atol=1e-12)


def test_edge_normalisation_weighs_each_edge_by_a_softmax_over_its_node():
    """K=1 with edge normalisation = DARTS whose op weights on edge (i <- j) are multiplied by
    exp(beta_ij) / sum_j' exp(beta_ij'), computed here by hand node by node (NB201: nodes 1, 2, 3 with
    1, 2, 3 incoming edges)."""
    space = get_space("nb201")
    torch.manual_seed(0)
    plain = space.supernet(num_classes=5, C=4, N=1, in_channels=1)
    partial = space.supernet(num_classes=5, C=4, N=1, in_channels=1, partial_channels=1, edge_normalization=True,
                             relaxation=Softmax())
    state = {k: v for k, v in partial.state_dict().items()}
    plain_state = plain.state_dict()
    plain_state.update({k: v for k, v in state.items() if k in plain_state})
    plain.load_state_dict(plain_state)
    with torch.no_grad():
        partial.betas["cell"].copy_(torch.tensor([0.3, 1.0, -2.0, 0.5, 0.1, -0.7]))
    beta = partial.betas["cell"].detach().tolist()
    edge = []
    for group in ([0], [1, 2], [3, 4, 5]):
        total = sum(math.exp(beta[i]) for i in group)
        edge += [math.exp(beta[i]) / total for i in group]
    edge = torch.tensor(edge)

    class Scaled(Softmax):
        def __call__(self, alpha):
            return torch.softmax(alpha, dim=-1) * edge.unsqueeze(-1)

    plain.set_relaxation(Scaled())
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(partial(x), plain(x), rtol=1e-5, atol=1e-6)


def test_betas_are_architecture_parameters_kept_apart_and_checkpointed():
    net = get_space("darts").supernet(num_classes=3, C=8, layers=3, in_channels=1, partial_channels=4,
                                      edge_normalization=True)
    betas = {id(p) for p in net.betas.values()}
    assert [tuple(p.shape) for p in net.betas.values()] == [(14,), (14,)]
    assert betas <= {id(p) for p in net.arch_parameters()}
    assert not betas & {id(p) for p in net.weight_parameters()}
    assert {"betas.normal", "betas.reduce"} <= set(net.state_dict())
    with pytest.raises(ConfigError, match="multiples of 3"):
        get_space("darts").supernet(C=8, layers=3, partial_channels=3)


def test_selection_ranks_edges_by_edge_weight_times_op_weight():
    """Node 1 of the DARTS cell (rows 2, 3, 4: inputs 0, 1, 2). By op weight alone the edges from 0 and 1
    win; with beta the edge from input 0 has softmax weight ~0, so PC-DARTS keeps inputs 1 and 2."""
    space = get_space("darts")
    net = space.supernet(num_classes=3, C=4, layers=3, in_channels=1, edge_normalization=True)
    weights = {cell: torch.full((14, 8), 1 / 8) for cell in ("normal", "reduce")}
    conv = DARTS_OPS.index("sep_conv_3x3")
    for row, strength in ((2, 0.9), (3, 0.8), (4, 0.5)):
        weights["normal"][row] = (1 - strength) / 7
        weights["normal"][row, conv] = strength
    with torch.no_grad():
        for beta in net.betas.values():
            beta.zero_()
        net.betas["normal"][2:5] = torch.tensor([-10.0, 0.0, 0.0])
    plain = space.genotype_from_weights(weights)
    assert sorted(source for _, source in plain.normal[2:4]) == [0, 1]
    combined = space.genotype_from_weights(net.selection_weights(weights))
    assert sorted(source for _, source in combined.normal[2:4]) == [1, 2]


def test_preset_has_the_papers_values():
    c = resolve_config("pcdarts")
    assert (c.batch_size, c.arch_lr, c.w_lr, c.w_lr_min, c.epochs, c.arch_warmup_epochs) == (256, 6e-4, 0.1, 0.001, 50, 15)
    assert (c.arch_betas, c.arch_weight_decay, c.w_weight_decay, c.order) == ((0.5, 0.999), 1e-3, 3e-4, 1)
    assert c.supernet_options == {"partial_channels": 4, "edge_normalization": True}


def test_warmup_trains_weights_only_then_alpha_and_beta(digits):
    config = resolve_config("pcdarts", overrides={**TINY, "epochs": 2, "arch_warmup_epochs": 1, "hessian_every": 0})
    search = DifferentiableSearch(config, quiet=True, dataset=digits)
    arch = [p.detach().clone() for p in search.alphas]
    assert len(arch) == 2  # alpha and beta of the one NB201 cell
    weights = [p.detach().clone() for p in search.weights]
    search.train_epoch()
    assert all(torch.equal(p, q) for p, q in zip(search.alphas, arch))
    assert any(not torch.equal(p, q) for p, q in zip(search.weights, weights))
    search.epoch = 1
    search.train_epoch()
    assert all(not torch.equal(p, q) for p, q in zip(search.alphas, arch))


def test_preset_runs_end_to_end_on_both_spaces(tmp_path, digits):
    summary = run_search(resolve_config("pcdarts", overrides={**TINY, "arch_warmup_epochs": 0, "hessian_every": 0}),
                         tmp_path / "nb201",
                         quiet=True, dataset=digits)
    assert summary["method"] == "pcdarts" and summary["space"] == "nb201"
    record = read_jsonl(tmp_path / "nb201" / "metrics.jsonl")[0]
    state = CheckpointStore(tmp_path / "nb201").load()[0]
    assert "betas.cell" in state["model"]
    darts = {k: v for k, v in TINY.items() if k != "N"}  # the DARTS space is sized by layers
    summary = run_search(resolve_config("pcdarts", overrides={**darts, "space": "darts", "C": 8, "layers": 3,
                                                              "arch_warmup_epochs": 0, "hessian_every": 0}),
                         tmp_path / "darts", quiet=True, dataset=digits)
    assert summary["space"] == "darts" and summary["genotype"].startswith("Genotype(")
    assert record["genotype"]
