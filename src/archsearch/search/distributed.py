"""Data-parallel search under torchrun: DistributedDataParallel for the weights, one all-reduce for alpha.

    torchrun --nproc_per_node 2 -m archsearch.cli search ... distributed=true

Every process holds the whole supernet and computes on its shard of each global batch (``batch_size`` is
the global batch; process r takes the r-th of ``world_size`` equal contiguous slices). The batches
themselves are identical on every process: the loaders draw from generators seeded by (seed, epoch).

* weight step: the forward runs through ``DistributedDataParallel``, whose reducer averages the weight
  gradients over the processes during backward (bucketed, overlapped with the backward pass);
* architecture step: alpha's gradient comes from ``torch.autograd.grad`` (DDP's hooks see only
  ``.backward()``), so ``average`` all-reduces it (and, second order, the virtual step's and the finite
  difference's gradients) over the same process group. The architecture parameters are excluded from
  DDP's reducer.

What equals one process: the gradients are means over the global batch of per-sample losses, so every
process takes exactly the step one process would take on the global batch computed shard by shard. Batch
norm is the exception, as in every data-parallel CPU setup without SyncBatchNorm: batch statistics (and
running statistics, when tracked) are those of each process's shard. Relaxation samples (Gumbel, BaLeNAS'
alpha ~ q) are identical on every process because every process seeds torch alike and draws the same
numbers; drop-path masks are drawn per local sample. Only process 0 writes the run directory.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.distributed as dist

from archsearch.errors import ConfigError


class Distributed:
    """This process's place in a data-parallel search (rank, world size) and the collectives it uses."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = int(rank), int(world_size)

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> Distributed:
        """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)."""
        if not dist.is_initialized():
            missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
            if missing:
                raise ConfigError(f"distributed=true needs torchrun's environment ({', '.join(missing)} unset): "
                                  "launch with `torchrun --nproc_per_node K ...`")
            backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's contiguous slice of a global batch. A batch that does not split evenly (an
        epoch's last, partial batch) is cut to a multiple of the world size first, dropping at most
        world_size - 1 samples, so that every shard weighs the same in the average."""
        x, y = batch
        size = x.shape[0] // self.world_size
        if size == 0:
            raise ConfigError(f"a batch of {x.shape[0]} cannot be split over {self.world_size} processes: "
                              "choose a batch_size of at least the world size")
        part = slice(self.rank * size, (self.rank + 1) * size)
        return x[part], y[part]

    def average(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """The mean of each tensor over the processes, in one all-reduce of their concatenation."""
        if self.world_size == 1 or not tensors:
            return tensors
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        return [part.view_as(t) for part, t in zip(torch.split(flat, [t.numel() for t in tensors]), tensors)]


def wrap_weights(model: torch.nn.Module, arch_parameters: list[torch.nn.Parameter], device: torch.device):
    """DistributedDataParallel over ``model`` whose reducer averages the weights' gradients only. Unused
    parameters are looked for (a hard relaxation computes one op per edge; XNAS removes ops)."""
    from torch.nn.parallel import DistributedDataParallel

    arch = {id(p) for p in arch_parameters}
    ignored = [name for name, p in model.named_parameters() if id(p) in arch]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
    with warnings.catch_warnings():  # broadcast_buffers=False is what keeps BN statistics per process
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       broadcast_buffers=False, find_unused_parameters=True)
