"""Proxy scoring speed: the fast and the reference path side by side, on the proxy study's sample.

    OMP_NUM_THREADS=1 python benchmarks/proxy_speed.py --cells 50 \
        --data-dir ../shared/data/cifar10/cifar10-jpeg.tar.gz

Scores the first ``--cells`` of the 1,000 cells the proxy study draws (``archsearch proxies --archs 1000
--seed 0``: the zero-cost code's NB201 model for the proxies, the benchmark's network for params and
flops, cell i from seed + i on batch i of the augmented loader; without ``--data-dir`` a seeded random
batch per cell) with every proxy of the study, on one thread, each cell by both paths in alternating order
(reference first on even cells, fast first on odd ones), and checks that both give the same scores.

Prints cells per second of each path (data included: both read the same batch), then, on the first
``--profile-cells`` cells: the reference path's time per phase (build, initialisation, data) and per proxy
(a shared pass is charged to the first proxy that needs it), both paths' time per kind of operation
(torch.profiler, self time, one thread), and the FLOPs each path executes (torch.utils.flop_counter's
formulas: convolutions and matrix products of every forward and backward) against a peak of ``--peak`` GFLOP/s,
and the time each path spends in the kernels that fix the scores' bits (below) against the budget of a 3x
speed-up.

``--layout-cells N`` also scores the first N cells on the fast path with the network and batch in
channels-last memory format, alternating with the default (NCHW), and prints both times and each proxy's
largest relative change: what the layout the DARTS-space supernet uses would cost in scores.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict

from scipy.stats import spearmanr
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from archsearch.diagnostics.flops import count_flops
from archsearch.proxies import PROXIES, initialised_network, score_all
from archsearch.proxies.base import Probe
from archsearch.spaces import get_space
from archsearch.studies.proxy_data import loader_batches, training_loader
from archsearch.studies.proxy_scores import DEFAULT_PROXIES, SIZE_BASELINES, score_architectures
from archsearch.studies.proxy_study import ZERO_COST_NB201_NETWORK, sample_architectures

PATHS = ("reference", "fast")
LAYOUTS = ("NCHW", "channels-last")
#: torch.profiler op names -> the kind of work they are
KINDS = (("convolution", ("convolution", "conv2d")), ("average-pooling kernel", ("avg_pool",)),
         ("batch norm", ("batch_norm",)), ("matrix products", ("aten::mm", "addmm", "bmm", "matmul")),
         ("copies and conversions", ("copy_", "clone", "aten::to", "_to_copy")))
OTHER = "other element-wise and reductions (the fast path's pooling additions too)"
#: the kernels whose results set the scores' bits, with ATen's and oneDNN's kernels as they are: every
#: convolution (forward, backward, autograd's double backward with its transposed copies), every batch
#: norm, and the element-wise passes autograd's batch-norm double backward is written as
FIXED_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
             "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward", "aten::native_batch_norm",
             "aten::native_batch_norm_backward")
FIXED_INSIDE = "NativeBatchNormBackwardBackward0"


def same(a: dict, b: dict, names) -> bool:
    return all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in names)


class Study:
    """The proxy study's setting for one cell: its networks, batch and seed."""

    def __init__(self, args):
        self.space = get_space("nb201")
        self.cells = sample_architectures(self.space, args.sample, args.seed)[:args.cells]
        self.proxies, self.seed = list(args.proxies.split(",")), args.seed
        self.options = {**ZERO_COST_NB201_NETWORK, "in_channels": 3}
        if args.data_dir:
            loader, self.num_classes = training_loader("cifar10", args.data_dir, args.seed, 64, True, "cpu",
                                                       augment=True)
            self.batches = loader_batches(loader)
        else:
            self.num_classes = 10
            self.batches = self.random_batch

    def random_batch(self, i: int):
        gen = torch.Generator().manual_seed(self.seed + i)
        return torch.randn(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)

    def factory(self, i: int, size: bool = False):
        options = {} if size else self.options
        return lambda: self.space.network(self.cells[i], self.num_classes, **options)

    def score(self, i: int, batch, path: str) -> dict:
        return score_architectures(self.space, [self.cells[i]], self.proxies, None, None, seed=self.seed + i,
                                   num_classes=self.num_classes, network_options=self.options,
                                   batches=lambda _: batch, size_network_options={}, path=path)[0]


def timed_runs(study: Study) -> dict:
    seconds, data, mismatches = defaultdict(float), 0.0, 0
    per_cell = defaultdict(list)
    for i in range(len(study.cells)):
        start = time.perf_counter()
        batch = study.batches(i)
        data += time.perf_counter() - start
        rows = {}
        for path in (PATHS if i % 2 == 0 else PATHS[::-1]):
            start = time.perf_counter()
            rows[path] = study.score(i, batch, path)
            per_cell[path].append(time.perf_counter() - start)
            seconds[path] += per_cell[path][-1]
        mismatches += not same(rows["reference"], rows["fast"], study.proxies)
        n = i + 1
        print(f"  cell {n}: " + ", ".join(f"{p} {n / (seconds[p] + data):.3f} cells/s" for p in PATHS)
              + f", {mismatches} with different scores", flush=True)
    return {"seconds": dict(seconds), "per_cell": dict(per_cell), "data": data, "mismatches": mismatches}


def reference_breakdown(study: Study, cells: int) -> dict:
    """Seconds per cell of the reference path, per phase and per proxy (as its score_all runs them)."""
    spent = defaultdict(float)
    for i in range(cells):
        x, y = study.batches(i)
        for size, names in ((False, [p for p in study.proxies if p not in SIZE_BASELINES]),
                            (True, [p for p in study.proxies if p in SIZE_BASELINES])):
            if not names:
                continue
            start = time.perf_counter()
            net = initialised_network(study.factory(i, size), study.seed + i)
            built = time.perf_counter()
            with torch.random.fork_rng(devices=[]):  # the initialisation alone: every layer drawn again
                for module in net.modules():
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()
            init = time.perf_counter() - built
            spent["network build (modules, allocation)"] += built - start - init
            spent["weight initialisation"] += init
            net = initialised_network(study.factory(i, size), study.seed + i)
            probe = Probe(net, x, y)
            for name in names:
                start = time.perf_counter()
                PROXIES.get(name)(probe)
                spent[f"proxy {name}"] += time.perf_counter() - start
    return {k: v / cells for k, v in spent.items()}


def inside(event, name: str) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name == name:
            return True
        parent = parent.cpu_parent
    return False


def op_kinds(study: Study, cells: int, path: str) -> tuple[dict, float]:
    """Seconds per cell per kind of operation (profiler self time; the rest is outside ATen's operators),
    and seconds per cell in the kernels of FIXED_OPS and those run inside FIXED_INSIDE."""
    batches = [study.batches(i) for i in range(cells)]
    start = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(cells):
            study.score(i, batches[i], path)
    wall = time.perf_counter() - start
    kinds = defaultdict(float)
    for event in prof.key_averages():
        if not event.key.startswith(("aten::", "prims::")):
            continue
        kind = next((k for k, words in KINDS if any(w in event.key for w in words)), OTHER)
        kinds[kind] += event.self_cpu_time_total / 1e6
    kinds["outside ATen operators (Python, autograd engine, profiler)"] = wall - sum(kinds.values())
    fixed = sum(event.self_cpu_time_total for event in prof.events() if event.name.startswith("aten::")
                and (event.name in FIXED_OPS or inside(event, FIXED_INSIDE))) / 1e6
    return {k: v / cells for k, v in kinds.items()}, fixed / cells


def layout_comparison(study: Study, cells: int) -> None:
    """The fast path in NCHW (the default) and in channels-last, alternating: times and score changes."""
    names = [p for p in study.proxies if p not in SIZE_BASELINES]  # they read shapes only
    seconds, change, columns = defaultdict(float), defaultdict(float), defaultdict(list)
    for i in range(cells):
        x, y = study.batches(i)
        scores = {}
        for layout in (LAYOUTS if i % 2 == 0 else LAYOUTS[::-1]):
            last = layout == "channels-last"
            factory = study.factory(i)
            source = (lambda: factory().to(memory_format=torch.channels_last)) if last else factory
            inputs = x.contiguous(memory_format=torch.channels_last) if last else x
            start = time.perf_counter()
            scores[layout] = score_all(names, source, inputs, y, seed=study.seed + i, path="fast")
            seconds[layout] += time.perf_counter() - start
        for name in names:
            a, b = scores["NCHW"][name], scores["channels-last"][name]
            change[name] = max(change[name], abs(b - a) / abs(a) if a else float(b != a))
            columns[name].append((a, b))
    print(f"\nfast path by memory format (first {cells} cells, alternating; s per cell): "
          + ", ".join(f"{layout} {seconds[layout] / cells:.3f}" for layout in LAYOUTS))
    print("  largest relative change of each score in channels-last: "
          + ", ".join(f"{name} {change[name]:.1e}" for name in names))
    if cells > 2:
        print("  Spearman between the two layouts' scores of the cells: "
              + ", ".join(f"{name} {spearmanr(*zip(*columns[name])).statistic:.4f}" for name in names))


class FlopCount(TorchDispatchMode):
    """FLOPs of the ATen operators run inside it, by torch.utils.flop_counter's formulas (convolutions
    and their backward, matrix products); FlopCounterMode itself tracks modules with autograd hooks that
    refuse ``autograd.grad`` towards an input."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def executed_flops(study: Study, cells: int, path: str) -> float:
    """FLOPs per cell that ``path`` executes in convolutions and matrix products, all passes."""
    total = 0
    for i in range(cells):
        batch = study.batches(i)
        with FlopCount() as counter:
            study.score(i, batch, path)
        total += counter.total
    return total / cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=50, help="the first N cells of the sample (default 50)")
    parser.add_argument("--sample", type=int, default=1000, help="the study's sample size (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proxies", default=",".join(DEFAULT_PROXIES))
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 (else a seeded random batch per cell)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile-cells", type=int, default=3, help="profile the first N cells (0: none)")
    parser.add_argument("--peak", type=float, default=120.0, help="GFLOP/s per core taken as peak (default 120)")
    parser.add_argument("--layout-cells", type=int, default=0,
                        help="also compare the fast path in NCHW and channels-last on the first N cells")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    study = Study(args)
    study.score(0, study.batches(0), "fast")  # first calls: kernels loaded, meta device imported
    print(f"{len(study.cells)} cells of the {args.sample}-cell sample (seed {args.seed}), proxies "
          f"{','.join(study.proxies)}, {args.threads} thread(s)", flush=True)
    runs = timed_runs(study)
    n = len(study.cells)
    print(f"\ncells/s (data included, {runs['data'] / n:.3f} s per cell):")
    for path in PATHS:
        print(f"  {path:9s} {n / (runs['seconds'][path] + runs['data']):.3f} cells/s "
              f"({runs['seconds'][path] / n:.3f} s per cell scoring)")
    print(f"  speed-up {(runs['seconds']['reference'] + runs['data']) / (runs['seconds']['fast'] + runs['data']):.2f}x;"
          f" cells whose scores differ: {runs['mismatches']}")
    if args.layout_cells:
        layout_comparison(study, min(args.layout_cells, n))
    cells = min(args.profile_cells, n)
    if cells < 1:
        return  # --profile-cells 0: the timing alone
    # the fast path first: on this machine a profile run after others in the same process read up to 1.7x
    # slower, kernels included, than the same cells timed
    profiled = {path: op_kinds(study, cells, path) for path in PATHS[::-1]}
    kinds = {path: profiled[path][0] for path in PATHS}
    print(f"\nseconds per cell by kind of operation (torch.profiler, first {cells} cells): reference / fast")
    for key in kinds["reference"]:
        print(f"  {key:60s} {kinds['reference'][key]:.3f} / {kinds['fast'].get(key, 0.0):.3f}")
    timed = {path: sum(runs["per_cell"][path][:cells]) / cells for path in PATHS}
    print(f"  {'all, profiled (timed above without the profiler)':60s} {sum(kinds['reference'].values()):.3f} / "
          f"{sum(kinds['fast'].values()):.3f} ({timed['reference']:.3f} / {timed['fast']:.3f})")
    print(f"  {'of which in the kernels that fix the scores (FIXED_OPS)':60s} {profiled['reference'][1]:.3f} / "
          f"{profiled['fast'][1]:.3f}\n  a 3x speed-up leaves {timed['reference'] / 3:.3f} s per cell (the "
          f"reference's timed seconds on these cells / 3)")
    print(f"\nreference path, seconds per cell by phase and proxy (first {cells} cells):")
    for key, value in reference_breakdown(study, cells).items():
        print(f"  {key:50s} {value:.3f}")
    forward = sum(count_flops(study.factory(i)(), (1, 3, 32, 32)) for i in range(cells)) / cells
    print(f"\nFLOPs (first {cells} cells; forward of one image, diagnostics.flops: {forward / 1e6:.1f} MFLOPs):")
    for path in PATHS:  # FLOPs counted in a run of their own, over the time the same cells took when timed
        flops = executed_flops(study, cells, path)
        rate = flops * cells / sum(runs["per_cell"][path][:cells]) / 1e9
        print(f"  {path:9s} {flops / 1e9:.2f} GFLOP per cell executed, {rate:.1f} GFLOP/s "
              f"({100 * rate / args.peak:.0f}% of {args.peak:.0f} GFLOP/s per core)")


if __name__ == "__main__":
    main()
