"""ExpGrad (XNAS): the experts problem's regret bound, wipeout's safety, the logits/softmax identity,
checkpoints, and the supernet skipping removed ops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.optim.expgrad import ExpGrad, masked_softmax, optimal_learning_rate, regret_bound

L = 1.0


def test_optimal_rate_minimises_the_stated_bound():
    # eta* = sqrt(2 ln N / T) / L gives L sqrt(2 T ln N), and any other rate gives more.
    T, N = 400, 5
    eta = optimal_learning_rate(T, N, L)
    assert regret_bound(T, N, L, eta) == pytest.approx(L * math.sqrt(2 * T * math.log(N)))
    for other in (eta / 2, eta * 2):
        assert regret_bound(T, N, L, other) > regret_bound(T, N, L, eta)


def test_expgrad_is_sgd_on_logits_then_softmax_step_for_step():
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    a = torch.nn.Parameter(start.clone())
    b = torch.nn.Parameter(start.clone())
    expgrad = ExpGrad([a], lr=0.3, grad_bound=10.0, wipeout=False)
    sgd = torch.optim.SGD([b], lr=0.3)
    w = torch.softmax(start, dim=-1).numpy()  # multiplicative weights, computed independently
    for _ in range(25):
        g = torch.randn(3, 4, generator=gen, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        expgrad.step()
        sgd.step()
        w = w * np.exp(-0.3 * g.numpy())  # w <- w exp(eta r), r = -g
        w = w / w.sum(axis=-1, keepdims=True)
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(torch.softmax(a.detach(), dim=-1).numpy(), w, rtol=1e-10)


def _play(losses: np.ndarray, wipeout: bool):
    """Run ExpGrad (eta* for T) on a (T, forecasters, N) loss array; returns the forecaster's losses,
    per-round alive masks."""
    T, F, N = losses.shape
    alpha = torch.nn.Parameter(torch.zeros(F, N, dtype=torch.float64))
    opt = ExpGrad([alpha], rounds=T, grad_bound=L, wipeout=wipeout)
    incurred = np.zeros(F)
    alive = []
    for t in range(T):
        p = opt.weights(alpha).numpy()
        incurred += (p * losses[t]).sum(axis=-1)  # <p_t, l_t>
        alpha.grad = torch.from_numpy(losses[t])
        opt.step()
        alive.append(opt.alive_mask(alpha).numpy().copy())
    return incurred, np.stack(alive)


def test_regret_stays_under_the_bound_for_the_rate_used():
    rng = np.random.default_rng(1)
    T, N = 500, 6
    # random bounded losses, biased experts, and an adversary that hits the current favourite
    random = rng.uniform(-L, L, size=(T, 200, N))
    biased = np.clip(rng.normal(np.linspace(-0.3, 0.3, N), 0.6, size=(T, 200, N)), -L, L)
    bound = L * math.sqrt(2 * T * math.log(N))
    for losses in (random, biased):
        incurred, _ = _play(losses, wipeout=False)
        regret = incurred - losses.sum(axis=0).min(axis=-1)
        assert regret.max() <= bound
        assert regret.max() > 0.05 * bound  # the game is not trivial
    # adaptive adversary: loss L for the heaviest expert, -L for the others
    alpha = torch.nn.Parameter(torch.zeros(1, N, dtype=torch.float64))
    opt = ExpGrad([alpha], rounds=T, grad_bound=L, wipeout=False)
    incurred, total = 0.0, np.zeros(N)
    for _ in range(T):
        p = opt.weights(alpha).numpy()[0]
        loss = -L * np.ones(N)
        loss[int(p.argmax())] = L
        incurred += float(p @ loss)
        total += loss
        alpha.grad = torch.from_numpy(loss[None])
        opt.step()
    assert incurred - total.min() <= bound


def test_wipeout_never_removes_the_best_expert_in_hindsight():
    rng = np.random.default_rng(2)
    T, F, N = 150, 1000, 5
    means = rng.uniform(-1.0, 1.0, size=(F, N))  # experts of different quality, so wipeout acts
    losses = np.clip(means + rng.normal(0, 0.5, size=(T, F, N)), -L, L)
    _, alive = _play(losses, wipeout=True)
    best = losses.sum(axis=0).argmin(axis=-1)
    assert alive[:, np.arange(F), best].all()  # alive at every round, in all 1,000 sequences
    assert (~alive[3 * T // 4]).sum() > F  # many experts were removed before the end
    assert (alive[-1].sum(axis=-1) == 1).all()  # at T only the leader is left


def test_removed_experts_weigh_zero_and_checkpoints_remember_them():
    alpha = torch.nn.Parameter(torch.zeros(2, 3))
    opt = ExpGrad([alpha], rounds=4, removed=[torch.tensor([True, False, False])])
    alpha.grad = torch.tensor([[0.0, 1.0, -1.0], [0.0, -1.0, 1.0]])
    opt.step()
    w = opt.weights(alpha)
    assert (w[:, 0] == 0).all() and torch.allclose(w.sum(dim=-1), torch.ones(2))
    torch.testing.assert_close(masked_softmax(alpha.detach(), opt.alive_mask(alpha)), w)
    clone = torch.nn.Parameter(alpha.detach().clone())
    restored = ExpGrad([clone], rounds=4)
    restored.load_state_dict(opt.state_dict())
    assert restored.alive_mask(clone).dtype == torch.bool
    assert torch.equal(restored.alive_mask(clone), opt.alive_mask(alpha))


def test_supernet_stops_computing_removed_ops():
    from archsearch.relax.experts import Experts
    from archsearch.spaces import get_space

    relaxation = Experts()
    net = get_space("nb201").supernet(num_classes=3, relaxation=relaxation, C=4, N=1, in_channels=1)
    alpha = net.alphas["cell"]
    removed = torch.zeros(6, 5, dtype=torch.bool)
    removed[:, 3] = True  # nor_conv_3x3 off on every edge
    opt = ExpGrad([alpha], lr=0.1, removed=[removed])
    relaxation.attach(opt)
    calls = []
    for _, mixed in net.mixed_ops("cell"):
        mixed.ops[3].register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 1, 8, 8)
    net(x).sum().backward()
    assert calls == [] and all(not m.alive[3] for _, m in net.mixed_ops("cell"))
    assert torch.equal(net.op_weights()["cell"][:, 3].detach(), torch.zeros(6))
    # the experts' losses reach alpha unchanged: alpha.grad = dL/dp (identity Jacobian)
    assert alpha.grad is not None and torch.all(alpha.grad[:, 3] == 0)


@pytest.mark.parametrize("wipeout", [1.0, 0, "no", None])
def test_wipeout_must_be_true_or_false(wipeout):
    from archsearch.errors import ConfigError

    with pytest.raises(ConfigError, match="wipeout"):
        ExpGrad([torch.zeros(2, 3, requires_grad=True)], lr=0.1, wipeout=wipeout)


@settings(max_examples=60, deadline=None)
@given(remove_ops=st.one_of(st.integers(), st.none(), st.text(max_size=8), st.floats(allow_nan=True),
                            st.lists(st.one_of(st.integers(), st.none(), st.floats()), min_size=1, max_size=3),
                            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_remove_ops_that_is_no_list_of_names_is_one_config_error(remove_ops):
    from archsearch.errors import ConfigError
    from archsearch.optim import ARCH_OPTIMIZERS
    from archsearch.search.resolve import resolve_config

    config = resolve_config("xnas", overrides={"space": "nb201"})
    config.arch_options = {"remove_ops": remove_ops}
    with pytest.raises(ConfigError, match="remove_ops"):
        ARCH_OPTIMIZERS.get("expgrad")([torch.nn.Parameter(torch.zeros(6, 5))], config)


# -- XNAS Thm 1's learning rate, as the optimizer a search builds uses it ----------------------------------
def theorem_1_eta(experts: int, rounds: int, bound: float) -> float:
    """XNAS Thm 1: Regret_T <= eta T L^2 / 2 + ln(N) / eta, minimised at eta = sqrt(2 ln N / (T L^2))."""
    return math.sqrt(2.0 * math.log(experts) / (rounds * bound * bound))


@settings(max_examples=200, deadline=None)
@given(experts=st.integers(2, 12), removed=st.integers(0, 3), rounds=st.integers(1, 10**6),
       bound=st.floats(1e-3, 1e2))
def test_learning_rate_is_theorem_1s_over_the_experts_the_forecaster_has(experts, removed, rounds, bound):
    ops = experts + removed
    alpha = torch.nn.Parameter(torch.zeros(3, ops))
    opt = ExpGrad([alpha], grad_bound=bound, removed=[torch.arange(ops) < removed])
    opt.plan_rounds(rounds)
    assert opt.learning_rate(opt.param_groups[0]) == pytest.approx(theorem_1_eta(experts, rounds, bound), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(space=st.sampled_from(["nb201", "darts"]), rounds=st.integers(1, 10**6), bound=st.floats(1e-3, 1e2))
def test_the_built_optimizer_uses_theorem_1s_rate(space, rounds, bound):
    from archsearch.optim import ARCH_OPTIMIZERS
    from archsearch.search.resolve import resolve_config
    from archsearch.spaces import get_space

    config = resolve_config("xnas", overrides={"space": space, "arch_options": {"grad_bound": bound, "wipeout": True}})
    ops = len(get_space(space).ops)
    # NB201: one (6 edges, 5 ops) alpha; DARTS: normal and reduce, (14 edges, 8 ops) each
    alphas = [torch.nn.Parameter(torch.zeros(6, ops))] if space == "nb201" else [
        torch.nn.Parameter(torch.zeros(14, ops)) for _ in range(2)]
    opt = ARCH_OPTIMIZERS.get("expgrad")(alphas, config)
    opt.plan_rounds(rounds)
    experts = ops - 1  # the preset removes the zero op from the start (remove_ops: ["none"])
    for group in opt.param_groups:
        assert opt.learning_rate(group) == pytest.approx(theorem_1_eta(experts, rounds, bound), rel=1e-12)


def test_a_search_plans_theorem_1s_rate_for_its_rounds(tmp_path):
    from archsearch.data import load_dataset
    from archsearch.search.loop import DifferentiableSearch
    from archsearch.search.resolve import resolve_config

    data = load_dataset("synthetic", num_train=96, num_test=8, channels=3, size=8, num_classes=4, seed=0)
    config = resolve_config("xnas", overrides={"data": "synthetic", "C": 2, "N": 1, "epochs": 3, "batch_size": 16,
                                               "hessian_every": 0})
    search = DifferentiableSearch(config, None, quiet=True, dataset=data)
    rounds = 3 * 3  # epochs x steps: 48 search-train and 48 search-valid images in batches of 16
    eta = search.a_optimizer.learning_rate(search.a_optimizer.param_groups[0])
    assert eta == pytest.approx(theorem_1_eta(4, rounds, 1.0), rel=1e-12)  # NB201: 5 ops less the zero op
