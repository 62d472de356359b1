"""The architecture gradients an arch step can take (config key ``arch_gradient``), chosen by the method:

- ``pathwise``: through the relaxed op weights, grad_alpha L_val (search/bilevel.py; ``order`` 1 or 2).
- ``reinforce``: a score function for a relaxation that is a distribution over cells with no path from the
  cell to the loss (ENAS' controller, relax/controller.py). With ``aggregate`` samples a_k ~ pi_theta,

      g = clip_5( (1 / K) sum_k grad_theta loss_k ),   loss_k = -log pi_theta(a_k) (R_k - b_k)

  where R_k is the task's reward of a_k on the next search-valid batch (``SearchTask.reward``: the
  shared-weight top-1 accuracy of an image task, c / perplexity of a language model's; plus the entropy
  bonus) and b_k the baseline (the relaxation's ``policy_loss``). No gradient passes through the supernet.
  AutoDL-Projects exps/NAS-Bench-201-algos/ENAS.py:128-172: per sample a new batch (:129-133), the supernet
  in eval mode without gradient (:123, :139-143), loss / num_aggregate accumulated (:162-163), the
  controller's gradient clipped to norm 5 (:169) before Adam steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from archsearch.search.bilevel import _grads
from archsearch.search.meter import Meter
from archsearch.search.selectors.shared_weights import FixedPath
from archsearch.search.tasks import accuracy_reward

ESTIMATORS = ("pathwise", "reinforce")


@contextlib.contextmanager
def on_path(supernet, weights: dict[str, torch.Tensor]) -> Iterator[None]:
    """Inside the block the supernet computes only the path of the one-hot op ``weights`` per cell type
    (the relaxation's ``path_weights`` of a sampled cell), in eval mode, without gradient (ENAS.py:123,
    :139-141); its relaxation and mode restored after."""
    alphas = supernet.named_arch_parameters()
    weights = {name: w.to(alphas[name].device, alphas[name].dtype) for name, w in weights.items()}
    relaxation, training = supernet.relaxation, supernet.training
    supernet.set_relaxation(FixedPath(supernet, weights))
    supernet.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        supernet.set_relaxation(relaxation)
        supernet.train(training)


def path_logits(supernet, weights: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The supernet's logits on ``x`` on the path of ``weights`` (``on_path``)."""
    with on_path(supernet, weights):
        return supernet(x)


def clip_by_total_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """torch.nn.utils.clip_grad_norm_'s rule on a list of gradients: scale by min(1, c / (||g|| + 1e-6))."""
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (float(total) + 1e-6))
    return [g * scale for g in grads]


def reinforce_arch_grads(relaxation, supernet, batches: Iterator, params: Sequence[torch.Tensor],
                         meter: Meter | None = None, task=None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The score-function gradient over ``relaxation.aggregate`` cells, each on the next of ``batches``;
    returns (clipped gradients, the mean of the samples' losses). ``task``: whose ``reward`` scores a cell
    (None: an image task's accuracy)."""

    params, k = list(params), relaxation.aggregate
    total = [torch.zeros_like(p) for p in params]
    loss_sum = 0.0
    for _ in range(k):
        batch = next(batches)
        actions, log_prob, entropy = relaxation.sample()  # a ~ pi_theta, with log pi_theta(a) and H
        weights = relaxation.path_weights(actions)  # only a's path is computed, without gradient
        if task is None:  # an image batch: top-1 accuracy
            reward = accuracy_reward(path_logits(supernet, weights, batch[0]), batch[1], meter)
        else:
            with on_path(supernet, weights):
                reward = task.reward(supernet, batch, meter)
        loss = relaxation.policy_loss(reward, log_prob, entropy)
        for g, d in zip(total, _grads(loss / k, params)):  # the mean over the K samples
            g += d
        loss_sum += float(loss.detach())
    clipped = total if relaxation.grad_clip is None else clip_by_total_norm(total, relaxation.grad_clip)
    return clipped, torch.tensor(loss_sum / k)


__all__ = ["ESTIMATORS", "clip_by_total_norm", "on_path", "path_logits", "reinforce_arch_grads"]
