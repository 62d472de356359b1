"""Where a study's jobs run: inline, on local processes or threads, or as Ray tasks on a cluster.

A job depends only on its plain description, so results are the same whatever executes it. Jobs run side
by side with one torch thread each (several threads per job would oversubscribe the cores); the thread
count is set inside worker processes only, and put back after jobs run in this process.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from archsearch.errors import ArchSearchError, shown

EXECUTORS = ("process", "thread")


def one_torch_thread() -> None:
    """The initializer of a worker process."""
    import torch

    torch.set_num_threads(1)


@contextlib.contextmanager
def torch_threads(count: int):
    """``count`` torch threads in this process while the block runs, then the previous count again."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_reachable(address: str | None) -> None:
    """A cluster address (``host:port`` or ``ray://host:port``) answers a TCP connection within seconds:
    ray.init would otherwise retry an unreachable one for minutes."""
    if address in (None, "local", "auto"):
        return
    host, sep, port = str(address).split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ArchSearchError(f"Ray address {shown(address)} is not host:port; give 'local', 'auto' or "
                              "'ray://host:port'")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, UnicodeError) as err:
        raise ArchSearchError(f"cannot reach Ray at {shown(address)} ({getattr(err, 'strerror', None) or err}); "
                              "is the cluster up?") from None


def _in_worker(fn, job):
    one_torch_thread()
    return fn(job)


class RayPool:
    """Jobs as Ray tasks (one CPU, one torch thread each), submitted as to a ``concurrent.futures`` pool."""

    def __init__(self, address: str | None):
        try:
            import ray
        except ImportError:
            raise ArchSearchError("--ray-address needs Ray: pip install 'archsearch[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            check_reachable(address)
            try:
                ray.init(address=None if address in (None, "local") else address, log_to_driver=False)
            except Exception as error:  # Ray reports an unreachable or malformed address in several types
                raise ArchSearchError(f"cannot start or reach Ray at {shown(address)} ({type(error).__name__}: "
                                      f"{shown(str(error), 200)}); give 'local', 'auto' or 'ray://host:port'") from None
        self.task = ray.remote(num_cpus=1)(_in_worker)

    def submit(self, fn, job) -> "_RayResult":
        return _RayResult(self.ray, self.task.remote(fn, job))

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Ray stays up for the caller (it may have started it); tasks not collected are left to it."""


class _RayResult:
    """A submitted Ray task, read as a ``concurrent.futures.Future`` is read."""

    def __init__(self, ray, ref):
        self.ray, self.ref = ray, ref

    def result(self):
        return self.ray.get(self.ref)


def make_pool(workers: int, ray_address: str | None, executor: str):
    """A pool with ``map(fn, jobs)``, or None where the jobs run inline (one worker, no cluster)."""
    if ray_address is not None:
        return RayPool(ray_address)
    if workers <= 1:
        return None
    if executor == "thread":
        return ThreadPoolExecutor(workers)
    return ProcessPoolExecutor(workers, initializer=one_torch_thread)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def imap_ordered(fn: Callable, jobs: Iterable, pool, window: int) -> Iterator:
    """``fn(job)`` for every job, yielded in the jobs' order, with at most ``window`` jobs submitted and not
    yet collected: the jobs are drawn from ``jobs`` as room frees up (a job may carry a batch of images, and a
    thousand of them queued at once would hold gigabytes). Inline where ``pool`` is None. A worker process
    that dies (killed, out of memory) is reported as an ``ArchSearchError``; the jobs not yet run are
    cancelled."""
    if pool is None:
        for job in jobs:
            yield fn(job)
        return
    pending: collections.deque = collections.deque()
    completed = False
    try:
        for job in jobs:
            pending.append(pool.submit(fn, job))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        completed = True
    except BrokenProcessPool:
        raise ArchSearchError("a worker process died before its job finished (killed, or out of memory?); "
                              "run again with fewer workers") from None
    finally:
        pool.shutdown(wait=completed, cancel_futures=not completed)


def run_jobs(fn, jobs: list, pool, on_done=None) -> list:
    """``fn(job)`` for every job, results in order. Inline and on threads, this process runs the jobs with
    one torch thread, as a worker process would; ``on_done(job)`` follows each inline job."""
    if pool is None:
        results = []
        with torch_threads(1):
            for job in jobs:
                results.append(fn(job))
                if on_done is not None:
                    on_done(job)
        return results
    with torch_threads(1) if isinstance(pool, ThreadPoolExecutor) else contextlib.nullcontext():
        return list(imap_ordered(fn, jobs, pool, window=max(1, len(jobs))))  # every job submitted at once
