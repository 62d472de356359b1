"""The fused NAS-Bench-201 cell computes the per-op cell's function: outputs, losses, gradients w.r.t.
every weight and architecture parameter, and BN running buffers agree to 1e-5 in float64."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from archsearch.errors import ConfigError
from archsearch.relax import build_relaxation
from archsearch.relax.base import Relaxation
from archsearch.spaces import get_space
from archsearch.spaces.nb201_supernet import SearchCell

SPACE = get_space("nb201")
TOL = dict(atol=1e-5, rtol=1e-5)


def _pair(relaxation=None, **options):
    torch.manual_seed(0)
    options = {"C": 4, "N": 1, "num_classes": 3, **options}
    fast = SPACE.supernet(relaxation=relaxation, **options).double()
    with torch.no_grad():  # alphas away from uniform, so every op weight differs
        for alpha in fast.arch_parameters():
            alpha.copy_(torch.randn_like(alpha))
    reference = copy.deepcopy(fast)
    fast.set_path("fast")
    reference.set_path("reference")
    return fast, reference


def _batch(n=6, size=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _step(model, x, y):
    model.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return logits.detach(), loss.detach()


def _grad(p):
    """A parameter's gradient; no graph reaching it (a cell of `none` ops cuts the input off) is zero."""
    return torch.zeros_like(p) if p.grad is None else p.grad


def _assert_same(fast, reference, x, y, steps=2):
    for step in range(steps):  # a second step reads the running buffers the first one updated
        out_f, loss_f = _step(fast, x + step, y)
        out_r, loss_r = _step(reference, x + step, y)
        torch.testing.assert_close(out_f, out_r, **TOL)
        torch.testing.assert_close(loss_f, loss_r, **TOL)
        params_r = dict(reference.named_parameters())
        for name, p in fast.named_parameters():
            g_f, g_r = _grad(p), _grad(params_r[name])
            torch.testing.assert_close(g_f, g_r, **TOL, msg=lambda m: f"{name}: {m}")
        buffers_r = dict(reference.named_buffers())
        for name, b in fast.named_buffers():
            torch.testing.assert_close(b, buffers_r[name], **TOL, msg=lambda m: f"{name}: {m}")


def _fused_calls(model):
    calls = []
    for cell in model.modules():
        if isinstance(cell, SearchCell):
            original = cell._forward_fused
            cell._forward_fused = lambda *a, _f=original: (calls.append(1), _f(*a))[1]
    return calls


@pytest.mark.parametrize("track", [True, False])
def test_softmax_weights_train_mode(track):
    fast, reference = _pair(build_relaxation("softmax"), track_running_stats=track)
    calls = _fused_calls(fast)
    fast.train(), reference.train()
    _assert_same(fast, reference, *_batch())
    assert calls, "the fast path was not taken"


def test_softmax_weights_eval_mode_reads_running_statistics():
    fast, reference = _pair(build_relaxation("softmax"))
    fast.train(), reference.train()
    _assert_same(fast, reference, *_batch(), steps=1)  # running statistics away from (0, 1)
    fast.eval(), reference.eval()
    _assert_same(fast, reference, *_batch(seed=2))


def test_full_nb201_shape_one_step():
    """Three stages with the reduction blocks, larger maps: C=4, N=2, 16x16."""
    fast, reference = _pair(build_relaxation("softmax"), N=2)
    _assert_same(fast, reference, *_batch(n=4, size=16), steps=1)


def test_gaussian_sample_path_balenas():
    """BaLeNAS' architecture step: softmax of a sample alpha ~ N(mu, sigma^2) (drawn by VAdam into alpha)."""
    fast, reference = _pair(build_relaxation("gaussian"))
    with torch.no_grad():
        for model in (fast, reference):
            torch.manual_seed(5)
            for alpha in model.arch_parameters():
                alpha.add_(0.3 * torch.randn_like(alpha))
    _assert_same(fast, reference, *_batch())


class _FixedHard(Relaxation):
    """Straight-through one-hot weights of a given choice per edge, with softmax gradient (GDAS' form
    without the noise), so that a test picks exactly which ops run."""

    hard = True

    def __init__(self, choice):
        self.choice = torch.tensor(choice)

    def __call__(self, alpha):
        soft = torch.softmax(alpha, dim=-1)
        one_hot = torch.nn.functional.one_hot(self.choice, alpha.shape[-1]).to(soft)
        return one_hot - soft.detach() + soft


# NB201 ops: 0 none, 1 skip, 2 conv1x1, 3 conv3x3, 4 pool; edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
HARD_CHOICES = {
    "mixed": [3, 2, 4, 1, 0, 3],
    "stacked convs from node 0": [3, 3, 2, 3, 2, 2],
    "all none": [0, 0, 0, 0, 0, 0],
    "node 1 is zero": [0, 3, 1, 2, 4, 3],
    "skips and pools": [1, 4, 4, 1, 1, 4],
}


@pytest.mark.parametrize("choice", list(HARD_CHOICES.values()), ids=list(HARD_CHOICES))
@pytest.mark.parametrize("track", [True, False])
def test_hard_one_op_per_edge_is_fused_and_matches(choice, track):
    """GDAS: each edge runs its one sampled op (several convs of one source stacked); the ops not run
    still pass the straight-through gradient to their alphas; only the run BNs count the batch."""
    fast, reference = _pair(_FixedHard(choice), track_running_stats=track)
    calls = _fused_calls(fast)
    _assert_same(fast, reference, *_batch())
    assert calls, "the fast path was not taken"
    fast.eval(), reference.eval()
    _assert_same(fast, reference, *_batch(seed=2), steps=1)


def test_gdas_gumbel_samples_match_on_both_paths():
    fast, reference = _pair(build_relaxation("gumbel_hard"))
    calls = _fused_calls(fast)
    x, y = _batch()
    for step in range(3):
        torch.manual_seed(10 + step)  # the same Gumbel sample in both
        out_f, loss_f = _step(fast, x, y)
        torch.manual_seed(10 + step)
        out_r, loss_r = _step(reference, x, y)
        torch.testing.assert_close(out_f, out_r, **TOL)
        for (name, p), q in zip(fast.named_parameters(), reference.parameters()):
            torch.testing.assert_close(_grad(p), _grad(q), **TOL, msg=lambda m: f"{name}: {m}")
    assert calls


@pytest.mark.parametrize("removed", [[(edge, 0) for edge in range(6)], [(2, 3)], [(0, 2), (1, 2), (3, 4), (4, 1)],
                                     [(0, 1), (0, 2), (0, 3), (0, 4)]],
                         ids=["none everywhere (XNAS' start)", "one conv", "several ops", "every op of edge 1<-0"])
def test_alive_masks_are_fused_and_match(removed):
    """XNAS' wipeout: the removed ops are not computed on either path (their BNs do not count the batch)."""
    fast, reference = _pair(build_relaxation("softmax"))
    mask = torch.ones(6, 5, dtype=torch.bool)
    for edge, op in removed:
        mask[edge, op] = False
    for model in (fast, reference):
        model.set_alive("cell", mask)
    calls = _fused_calls(fast)
    _assert_same(fast, reference, *_batch())
    assert calls


def test_state_dict_is_unchanged_and_loads_both_ways():
    fast, reference = _pair(build_relaxation("softmax"))
    assert list(fast.state_dict()) == list(reference.state_dict())
    _step(fast, *_batch())  # the fused path updated the BN buffers
    state = fast.state_dict()
    other = copy.deepcopy(reference)
    other.load_state_dict(state)
    for name, value in other.state_dict().items():
        torch.testing.assert_close(value, state[name])
    fresh, _ = _pair(build_relaxation("softmax"))
    fresh.load_state_dict(reference.state_dict())  # then trains on from the loaded buffers
    _step(fresh, *_batch())
    _step(reference, *_batch())
    for (name, a), b in zip(fresh.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, **TOL)


def test_hessian_diagnostic_runs_on_the_reference_path():
    fast, _ = _pair(build_relaxation("softmax"))
    x, y = _batch()
    with pytest.raises(ConfigError, match="using_path"):  # the fused backward is first order only
        torch.autograd.grad(F.cross_entropy(fast(x), y), fast.arch_parameters(), create_graph=True)
    with fast.using_path("reference"):
        g = torch.autograd.grad(F.cross_entropy(fast(x), y), fast.arch_parameters(), create_graph=True)
        torch.autograd.grad(sum(v.sum() for v in g), fast.arch_parameters())
    assert fast.path == "fast"


def test_unknown_path_is_a_config_error():
    fast, _ = _pair()
    with pytest.raises(ConfigError, match="supernet_path"):
        fast.set_path("quick")


def test_a_replaced_candidate_module_takes_the_reference_path():
    fast, reference = _pair(build_relaxation("softmax"))
    for model in (fast, reference):
        model.net.cells[0].edges[1].ops[3][0] = torch.nn.Softplus()  # no longer relu
    calls = _fused_calls(fast)
    _assert_same(fast, reference, *_batch(), steps=1)
    assert len(calls) == 2  # the other stages' cells (N=1) are still fused


@pytest.mark.parametrize("hvp", ["exact", "finite-difference"])
def test_second_order_arch_gradient_matches_the_reference_path(hvp):
    from archsearch.search.bilevel import second_order_arch_grads

    fast, reference = _pair(build_relaxation("softmax"), track_running_stats=False)
    (x_t, y_t), (x_v, y_v) = _batch(), _batch(seed=7)
    got = []
    for model in (fast, reference):
        opt = torch.optim.SGD(model.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
        grads, loss = second_order_arch_grads(
            lambda: F.cross_entropy(model(x_t), y_t), lambda: F.cross_entropy(model(x_v), y_v),
            model.weight_parameters(), model.arch_parameters(), opt, 0.5, hvp=hvp,
            second_derivatives=lambda model=model: model.using_path("reference"))  # as the loop calls it
        got.append((grads, loss))
    for a, b in zip(got[0][0], got[1][0]):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(got[0][1], got[1][1], **TOL)


@pytest.mark.parametrize("relaxation", [lambda: build_relaxation("softmax"),
                                        lambda: _FixedHard(HARD_CHOICES["mixed"])], ids=["soft", "hard"])
def test_edge_normalisation_is_folded_into_the_op_weights(relaxation):
    fast, reference = _pair(relaxation(), edge_normalization=True)
    with torch.no_grad():
        for model in (fast, reference):
            torch.manual_seed(3)
            for beta in model.betas.values():
                beta.copy_(torch.randn_like(beta))
    _assert_same(fast, reference, *_batch())


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 5), (7, 4), (8, 8)])
def test_fused_average_pool_is_avgpool2d_without_padding_counts(size):
    from archsearch.spaces.nb201_fused import _avg_pool, _box_sum, _inverse_count

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64, generator=g, requires_grad=True)
    y = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    upstream = torch.randn(y.shape, dtype=torch.float64, generator=g)
    y.backward(upstream)
    torch.testing.assert_close(_avg_pool(x.detach()), y.detach(), **TOL)
    # the backward SourceMix computes: the box sum is its own transpose
    torch.testing.assert_close(_box_sum(upstream * _inverse_count(upstream)), x.grad, **TOL)


@pytest.mark.parametrize("relaxation", [lambda: build_relaxation("softmax"),
                                        lambda: _FixedHard(HARD_CHOICES["mixed"])], ids=["soft", "hard"])
@pytest.mark.parametrize("frozen_part", ["weights", "alpha"])
def test_half_steps_with_one_side_frozen_match(relaxation, frozen_part):
    """The search loop's two half-steps: the architecture step builds its graph with the weights frozen
    (the fused cell then skips their gradients and keeps the pool output for dL/dw_pool), the weight step
    with alpha frozen."""
    from archsearch.search.bilevel import frozen

    fast, reference = _pair(relaxation())
    x, y = _batch()
    grads = []
    for model in (fast, reference):
        weights, alphas = list(model.weight_parameters()), list(model.arch_parameters())
        constant, wanted = (weights, alphas) if frozen_part == "weights" else (alphas, weights)
        with frozen(constant):
            loss = F.cross_entropy(model(x), y)
        found = torch.autograd.grad(loss, wanted, allow_unused=True)
        grads.append((loss.detach(), [torch.zeros_like(p) if g is None else g for g, p in zip(found, wanted)]))
    torch.testing.assert_close(grads[0][0], grads[1][0], **TOL)
    for g_f, g_r in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g_f, g_r, **TOL)


@pytest.mark.parametrize("choice", [None, *HARD_CHOICES.values()], ids=["soft", *HARD_CHOICES])
def test_one_cell_under_a_loss_whose_gradient_does_not_sum_to_zero(choice):
    """A whole network hides some errors: behind a train-mode BN the gradient reaching a node sums to
    (nearly) zero, so a constant added to a term (the hard path's straight-through weights) has almost no
    effect on any gradient. One cell under a random linear loss checks every term and constant directly."""
    torch.manual_seed(0)
    fast = SearchCell(4, track_running_stats=True).double()
    reference = copy.deepcopy(fast)
    reference.fused = False
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=g)
    alpha0 = torch.randn(6, 5, dtype=torch.float64, generator=g)
    projection = torch.randn(3, 4, 6, 6, dtype=torch.float64, generator=g) + 0.5
    results = []
    for cell in (fast, reference):
        x, alpha = x0.clone().requires_grad_(), alpha0.clone().requires_grad_()
        if choice is None:
            weights, hard = torch.softmax(alpha, dim=-1), None
        else:
            weights, hard = _FixedHard(choice)(alpha), list(choice)
        out = cell(x, weights, hard)
        loss = (out * projection).sum()
        inputs = [x, alpha, *cell.parameters()]
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
        results.append((out.detach(), [torch.zeros_like(p) if g is None else g for g, p in zip(grads, inputs)]))
    torch.testing.assert_close(results[0][0], results[1][0], **TOL)
    for g_f, g_r in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(g_f, g_r, **TOL)
    for b_f, b_r in zip(fast.buffers(), reference.buffers()):
        torch.testing.assert_close(b_f, b_r, **TOL)
