#!/usr/bin/env python
"""Time one DARTS-space search step of xautodl's (D-X-Y AutoDL-Projects) NASNetworkDARTS on CPU.

Peer: xautodl 1.0.0 from PyPI (installed with --no-deps, as ../shared/peers/README.md describes).
Supernet: xautodl.models.cell_searchs.NASNetworkDARTS (search_model_darts_nasnet.py) with its own
NASNetSearchCell / MixedOp / ops over get_search_spaces("cell", "darts"): C=16, steps=4, multiplier=4,
stem_multiplier=3, 10 classes, affine=False, track_running_stats=<--bn, default 1>.

The cell layout is DARTS' search configuration (quark0/darts cnn/train_search.py: 8 cells, reductions at
1/3 and 2/3 of the depth: C, C, 2C*, 2C, 2C, 4C*, 4C, 4C). NASNetworkDARTS places N normal cells per
stage (3N cells), which cannot give 8, so the network is built with N=3 and its cell list rebuilt with
xautodl's own NASNetSearchCell on DARTS' 8-cell plan, wired exactly as NASNetworkDARTS.__init__ wires
its cells; stem, forward, lastact, classifier stay xautodl's.

One "search step" =
  first order (--order 1):
    arch step  : Adam(alphas, lr 3e-4, betas (0.5, 0.999), wd 1e-3) on one validation batch
    weight step: SGD(weights, lr 0.025, momentum 0.9, wd 3e-4), grad-norm clip 5 on one train batch
  second order (--order 2): xautodl has no unrolled step (its DARTS-V2 script exists for NB201 only), so
    the arch step is quark0/darts' ``architect.py`` unrolled step written here in plain torch on the
    peer's network: a virtual SGD step w' = w - xi (dL_train/dw + wd w) (momentum buffer as the
    reference), dL_val(w', alpha)/dalpha and dL_val/dw', then the finite-difference Hessian-vector
    product at w +- eps v (eps = 0.01 / ||v||) on the train batch, grad = dL_val/dalpha - xi * hvp.
    The weight step is as above.
Batches: random N(0,1) 64x3x32x32, labels in [0, 10), pre-generated, a fresh pair per step.
Prints the median wall-clock seconds per step after --warmup steps and the peak RSS (ru_maxrss).

Run: <peer-venv>/bin/python benchmarks/xautodl_darts_step.py [--order 1|2]
"""
import argparse
import os
import platform
import resource
import statistics
import sys
import time


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_batches(n, batch_size, seed, num_classes=10):
    import torch
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 3, 32, 32, generator=g), torch.randint(0, num_classes, (batch_size,), generator=g))
            for _ in range(n)]


def build(bn=1, C=16, layers=8):
    import torch.nn as nn
    from xautodl.models import get_search_spaces
    from xautodl.models.cell_searchs import NASNetworkDARTS
    from xautodl.models.cell_searchs.search_cells import NASNetSearchCell

    space = get_search_spaces("cell", "darts")
    net = NASNetworkDARTS(C, 3, 4, 4, 3, 10, space, False, bool(bn))
    # DARTS' 8-cell plan, wired as NASNetworkDARTS.__init__ wires its cells
    cells, c_pp, c_p, red_prev, c_curr = [], 3 * C, 3 * C, False, C
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        c_curr = c_curr * 2 if reduction else c_curr
        cells.append(NASNetSearchCell(space, 4, 4, c_pp, c_p, c_curr, reduction, red_prev, False, bool(bn)))
        c_pp, c_p, red_prev = c_p, 4 * c_curr, reduction
    net.cells = nn.ModuleList(cells)
    net._Layer = len(cells)
    net.lastact = nn.Sequential(nn.BatchNorm2d(c_p), nn.ReLU(inplace=True))
    net.classifier = nn.Linear(c_p, 10)
    return net


class Step:
    """The peer's search step on its own network, optimizers and batches (first or second order)."""

    def __init__(self, order, batch, total, seed=0, bn=1):
        import torch
        import torch.nn as nn
        torch.manual_seed(seed)
        self.torch, self.order = torch, order
        self.net = build(bn)
        self.net.train()
        self.weights = list(self.net.get_weights())
        self.alphas = list(self.net.get_alphas())
        self.w_opt = torch.optim.SGD(self.weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(self.alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.crit = nn.CrossEntropyLoss()
        self.train = make_batches(total, batch, seed + 1)
        self.valid = make_batches(total, batch, seed + 2)

    def loss(self, x, y):
        return self.crit(self.net(x)[1], y)

    def unrolled_arch_grad(self, xt, yt, xv, yv, xi=0.025, wd=3e-4, momentum=0.9):
        """quark0/darts architect._backward_step_unrolled, in plain torch on the peer's network."""
        torch, ws = self.torch, self.weights
        g = torch.autograd.grad(self.loss(xt, yt), ws)
        backup = [w.detach().clone() for w in ws]
        with torch.no_grad():
            for w, gw in zip(ws, g):
                buf = self.w_opt.state.get(w, {}).get("momentum_buffer")
                step = gw + wd * w + (0 if buf is None else momentum * buf)
                w.sub_(xi * step)
        val = self.loss(xv, yv)
        ga = torch.autograd.grad(val, self.alphas + ws)
        d_alpha, v = ga[:len(self.alphas)], ga[len(self.alphas):]
        eps = 0.01 / torch.cat([t.flatten() for t in v]).norm()
        grads = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for w, b, t in zip(ws, backup, v):
                    w.copy_(b + sign * eps * t)
            grads.append(torch.autograd.grad(self.loss(xt, yt), self.alphas))
        with torch.no_grad():
            for w, b in zip(ws, backup):
                w.copy_(b)
        for a, d, gp, gn in zip(self.alphas, d_alpha, *grads):
            a.grad = d - xi * (gp - gn) / (2 * eps)

    def __call__(self, i):
        (xt, yt), (xv, yv) = self.train[i], self.valid[i]
        self.a_opt.zero_grad()
        if self.order == 2:
            self.unrolled_arch_grad(xt, yt, xv, yv)
        else:
            self.loss(xv, yv).backward()
        self.a_opt.step()
        self.w_opt.zero_grad()
        self.loss(xt, yt).backward()
        self.torch.nn.utils.clip_grad_norm_(self.weights, 5.0)
        self.w_opt.step()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--order", type=int, choices=[1, 2], default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bn", type=int, default=1, choices=[0, 1])
    args = ap.parse_args()

    import torch
    import xautodl

    torch.set_num_threads(args.threads)
    print(f"peer: xautodl {getattr(xautodl, '__version__', '1.0.0')} NASNetworkDARTS (D-X-Y AutoDL-Projects, PyPI)")
    print(f"python {platform.python_version()} torch {torch.__version__} threads={torch.get_num_threads()} "
          f"cpus={os.cpu_count()}")
    print(f"config: C=16 layers=8 steps=4 multiplier=4 classes=10 input={args.batch_size}x3x32x32 space=darts "
          f"affine=False track_running_stats={bool(args.bn)} order={args.order} warmup={args.warmup} steps={args.steps}")
    total = args.warmup + args.steps
    step = Step(args.order, args.batch_size, total, args.seed, args.bn)
    times = []
    for i in range(total):
        t0 = time.perf_counter()
        step(i)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    print(f"[xautodl] DARTS space, order {args.order}")
    print(f"  median s/search-step = {statistics.median(times):.4f}  (min {min(times):.4f}, max {max(times):.4f})")
    print(f"  peak RSS (ru_maxrss) {rss_mib():.1f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
