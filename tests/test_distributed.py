"""Data-parallel search: 2 CPU processes (gloo) take the step one process takes on the same global batch.

Batch norm normalises with each process's own shard statistics (no SyncBatchNorm on CPU), so the
single-process reference computes the global batch shard by shard: L = mean over shards of each shard's
mean loss, whose gradient is what DDP's average of per-process gradients is. With that, one full
iteration (architecture step + weight step) leaves alpha, every weight and the optimizers' updates equal
on both processes and to the single process. BN running statistics are per process (off here).
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from archsearch.data import ImageDataset
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.meter import Meter
from archsearch.search.resolve import resolve_config

WORLD = 2


def _dataset():
    g = torch.Generator().manual_seed(0)
    n = 64
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return ImageDataset("random", x, y, x[:8], y[:8], ["a", "b", "c"])


def _config(method, distributed):
    return resolve_config(method, overrides={
        "C": 4, "N": 1, "batch_size": 8, "epochs": 1, "hessian_every": 0, "track_running_stats": False,
        "distributed": distributed, "seed": 3})


def _first_batches(search):
    search.model.train()
    search.train_loader.set_epoch(0)
    search.valid_loader.set_epoch(0)
    return next(iter(search.train_loader)), next(iter(search.valid_loader))


def _state(search):
    return {name: p.detach().clone() for name, p in search.model.named_parameters()}


def _worker(rank, port, method, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        search = DifferentiableSearch(_config(method, True), quiet=True, dataset=_dataset())
        train, valid = _first_batches(search)
        train, valid = search.distributed.shard(train), search.distributed.shard(valid)
        search.arch_step(train, valid, Meter())
        search.weight_step(train, Meter())
        torch.save(_state(search), os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _single_process_by_shards(method):
    """The same iteration in one process: the global batch's loss as the mean of its shards' losses."""
    search = DifferentiableSearch(_config(method, False), quiet=True, dataset=_dataset())
    train, valid = _first_batches(search)

    def shards(batch):
        return [(batch[0][i * 4:(i + 1) * 4], batch[1][i * 4:(i + 1) * 4]) for i in range(WORLD)]

    def mean_loss(batches):
        # each process draws the same relaxation sample (same seed, same draws): one sample for all shards
        rng = torch.get_rng_state()
        total = 0.0
        for x, y in batches:
            torch.set_rng_state(rng)
            total = total + F.cross_entropy(search.model(x), y)
        return total / WORLD

    search.relaxation.phase = "arch"

    def closure():
        search.a_optimizer.zero_grad(set_to_none=True)
        loss = mean_loss(shards(valid))  # L_val on the global batch, shard by shard
        for alpha, g in zip(search.alphas, torch.autograd.grad(loss, search.alphas)):
            alpha.grad = g
        return loss.detach()

    search.a_optimizer.step(closure)
    search.relaxation.phase = "weights"
    search.w_optimizer.zero_grad(set_to_none=True)
    mean_loss(shards(train)).backward(inputs=search.weights)
    torch.nn.utils.clip_grad_norm_(search.weights, search.config.grad_clip)
    search.w_optimizer.step()
    return _state(search), _state(DifferentiableSearch(_config(method, False), quiet=True, dataset=_dataset()))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("method", ["darts", "gdas"])
def test_two_processes_take_the_single_process_step(tmp_path, method):
    mp.spawn(_worker, args=(_free_port(), method, str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    expected, initial = _single_process_by_shards(method)
    assert set(ranks[0]) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(ranks[0][name], ranks[1][name], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(ranks[0][name], value, atol=1e-5, rtol=1e-5, msg=lambda m: f"{name}: {m}")
    moved = [name for name in expected if not torch.equal(expected[name], initial[name])]
    assert "alphas.cell" in moved and len(moved) > 10  # the step did move alpha and the weights (GDAS: sampled ops)


def test_an_uneven_batch_is_cut_to_equal_shards():
    from archsearch.errors import ConfigError
    from archsearch.search.distributed import Distributed

    x, y = torch.arange(15.0).view(15, 1), torch.arange(15)
    assert Distributed(1, 2).shard((x, y))[1].tolist() == list(range(7, 14))  # sample 14 dropped
    with pytest.raises(ConfigError, match="at least the world size"):
        Distributed(0, 4).shard((x[:3], y[:3]))
