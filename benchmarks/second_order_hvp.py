"""How exact is the second-order architecture gradient? Error against double backward, by radius.

    python benchmarks/second_order_hvp.py --space nb201 --C 16 --N 5 --batch 64
    python benchmarks/second_order_hvp.py --space darts --C 16 --layers 8 --batch 64

On a real CIFAR-10 batch (../shared/data/cifar10, 32x32) after ``--warm`` weight steps (so SGD's
momentum buffer is part of the virtual step, as in a running search), at xi = the weight learning rate
(0.025), this prints, for float32 (as searches run) and float64:

- the relative error ||h - h*|| / ||h*|| of the Hessian-vector product h = grad^2_{alpha,w} L_train . v,
  v = grad_w' L_val(w', alpha), by central and forward differences at perturbation norms r (DARTS uses
  r = 0.01, quark0/darts cnn/architect.py:76-91) and by double backward at that precision; h* is the
  double-backward product in float64;
- the relative error of the whole unrolled gradient grad_alpha L_val(w', alpha) - xi h against the exact
  one, d/d alpha L_val(w - xi (grad_w L_train(w, alpha) + momentum, decay), alpha), by autograd through the
  virtual step in float64 (an oracle independent of search/bilevel.py);
- seconds and peak-RSS growth of one architecture gradient (``second_order_arch_grads``) with each
  ``hvp`` mode, float32, on the path the search runs (median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call

from archsearch.data import load_dataset
from archsearch.search.bilevel import (_add_, _copy_, _grads, exact_hvp, finite_difference_hvp, frozen,
                                       second_order_arch_grads, virtual_step_direction)
from archsearch.search.loop import DifferentiableSearch
from archsearch.search.resolve import resolve_config

RADII = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def rss_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        return int(re.search(rf"{field}:\s+(\d+)", handle.read()).group(1)) / 1024


def reset_peak() -> None:
    """Linux: VmHWM back to the current RSS, so that the next peak is the next call's."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten().double() for t in tensors])


def rel(a, b) -> float:
    a, b = flat(a), flat(b)
    return float((a - b).norm() / b.norm())


def make_search(args) -> DifferentiableSearch:
    limit = 4 * args.batch * (args.warm + 2)  # the search split halves it; both halves hold the batches
    dataset = load_dataset("cifar10", args.data_dir, limit_train=limit, quiet=True)
    sizes = {"C": args.C, "N": args.N} if args.space == "nb201" else {"C": args.C, "layers": args.layers}
    config = resolve_config("darts2", overrides={"space": args.space, **sizes, "batch_size": args.batch, "epochs": 1,
                                                 "hessian_every": 0, "data": "cifar10", "seed": args.seed})
    search = DifferentiableSearch(config, quiet=True, dataset=dataset)
    search.model.train()
    search.train_loader.set_epoch(0)
    search.valid_loader.set_epoch(0)
    return search


class State:
    """A copy of the search's supernet, weight optimizer state and batches at one precision."""

    def __init__(self, search: DifferentiableSearch, train, valid, dtype: torch.dtype):
        self.model = copy.deepcopy(search.model).to(dtype)
        self.weights, self.alphas = self.model.weight_parameters(), self.model.arch_parameters()
        group = search.w_optimizer.param_groups[0]
        self.opt = torch.optim.SGD(self.weights, lr=group["lr"], momentum=group["momentum"],
                                   weight_decay=group["weight_decay"])
        for w_new, w_old in zip(self.weights, search.weights):
            buffer = search.w_optimizer.state.get(w_old, {}).get("momentum_buffer")
            if buffer is not None:
                self.opt.state[w_new]["momentum_buffer"] = buffer.to(dtype)
        self.train = (train[0].to(dtype), train[1])
        self.valid = (valid[0].to(dtype), valid[1])

    def train_loss(self):
        return F.cross_entropy(self.model(self.train[0]), self.train[1])  # L_train(w, alpha)

    def val_loss(self):
        return F.cross_entropy(self.model(self.valid[0]), self.valid[1])  # L_val(w, alpha)

    def reference(self):
        return self.model.using_path("reference")

    def unrolled_parts(self, xi: float):
        """grad_alpha L_val(w', alpha) and v = grad_w' L_val(w', alpha) at w' = w - xi * direction."""
        saved = [w.detach().clone() for w in self.weights]
        direction = virtual_step_direction(_grads(self.train_loss(), self.weights), self.weights, self.opt)
        _add_(self.weights, direction, -xi)
        grads = _grads(self.val_loss(), self.alphas + self.weights)
        _copy_(self.weights, saved)
        return grads[: len(self.alphas)], grads[len(self.alphas):]

    def arch_grad(self):
        """grad_alpha L_train(w, alpha) at the weights as they are."""
        with frozen(self.weights):
            return _grads(self.train_loss(), self.alphas)

    def forward_difference(self, vector, radius: float, at_w):
        """[grad_alpha L_train(w + R v, alpha) - grad_alpha L_train(w, alpha)] / R, R = radius / ||v||."""
        eps = radius / float(flat(vector).norm())
        saved = [w.detach().clone() for w in self.weights]
        _add_(self.weights, vector, eps)
        shifted = self.arch_grad()
        _copy_(self.weights, saved)
        return [(s - g) / eps for s, g in zip(shifted, at_w)]


def exact_unrolled(state: State, xi: float):
    """Oracle: d/d alpha L_val(w'(alpha), alpha), w'(alpha) = w - xi (grad_w L_train(w, alpha) + wd w + mu buf),
    by autograd through the virtual step (create_graph), on the reference path."""
    names = dict(state.model.named_parameters())
    alpha_ids = {id(a) for a in state.alphas}
    weight_names = [n for n, p in names.items() if id(p) not in alpha_ids]
    group = state.opt.param_groups[0]

    def loss(params, batch):
        return F.cross_entropy(functional_call(state.model, params, (batch[0],)), batch[1])

    with state.reference():
        weights = [names[n] for n in weight_names]
        grads = torch.autograd.grad(loss(names, state.train), weights, create_graph=True, allow_unused=True)
        unrolled = dict(names)
        for n, w, g in zip(weight_names, weights, grads):
            step = (torch.zeros_like(w) if g is None else g) + group["weight_decay"] * w.detach()
            buffer = state.opt.state.get(w, {}).get("momentum_buffer")
            if buffer is not None:
                step = step + group["momentum"] * buffer
            unrolled[n] = w.detach() - xi * step
        return torch.autograd.grad(loss(unrolled, state.valid), state.alphas)


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median seconds and the largest peak-RSS growth (MB) over ``repeats`` calls (one warm-up first)."""
    fn()
    seconds, growth = [], []
    for _ in range(repeats):
        base = rss_mb("VmRSS")
        reset_peak()
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
        growth.append(rss_mb("VmHWM") - base)
    return statistics.median(seconds), max(growth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", choices=("nb201", "darts"), default="nb201")
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warm", type=int, default=5, help="weight steps before measuring (fills momentum)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per hvp mode (0: no timing)")
    parser.add_argument("--timing-only", action="store_true", help="skip the error tables")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--data-dir", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    args = parser.parse_args()
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # glibc then maps every tensor over 64 KiB on its own and unmaps it when freed, so that RSS follows
        # the live tensors and a call's peak is its own (otherwise freed memory stays in the heap)
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if args.threads:
        torch.set_num_threads(args.threads)

    search = make_search(args)
    batches = iter(search.train_loader)
    for _ in range(args.warm):
        search.weight_step(next(batches))
    train, valid = next(batches), next(iter(search.valid_loader))
    xi = search.w_optimizer.param_groups[0]["lr"]
    size = f"C={args.C} " + (f"N={args.N}" if args.space == "nb201" else f"layers={args.layers}")
    print(f"{args.space} {size} batch {args.batch}, 32x32 CIFAR-10, xi={xi}, after {args.warm} weight steps, "
          f"{torch.get_num_threads()} threads")

    if not args.timing_only:
        errors(search, train, valid, xi)
    if args.repeats:
        timing(search, train, valid, xi, args.repeats)


def errors(search, train, valid, xi: float) -> None:
    """The error-against-exact tables, float32 and float64."""
    exact64 = State(search, train, valid, torch.float64)
    start = time.perf_counter()
    truth = exact_unrolled(exact64, xi)
    print(f"oracle (float64 autograd through the virtual step): {time.perf_counter() - start:.1f} s")

    rows: dict[str, dict[str, str]] = {}
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        state = exact64 if dtype is torch.float64 else State(search, train, valid, dtype)
        d_alpha, vector = state.unrolled_parts(xi)
        # h* for this v: double backward in float64
        h_true = exact_hvp(exact64.train_loss, exact64.weights, exact64.alphas, [v.double() for v in vector],
                           second_derivatives=exact64.reference)
        at_w = state.arch_grad()
        first = rel(d_alpha, truth)
        if dtype is torch.float32:
            with frozen(state.weights), frozen(exact64.weights):
                floor = rel(_grads(state.val_loss(), state.alphas), _grads(exact64.val_loss(), exact64.alphas))
            print(f"float32's floor: grad_alpha L_val(w, alpha) in float32 is {floor:.3g} off float64's")
        share = float(xi * flat(h_true).norm() / flat(d_alpha).norm())
        print(f"{name}: ||xi h*|| / ||grad_alpha L_val(w')|| = {share:.3g}; unrolled gradient without the "
              f"Hessian term: {first:.3g} off")

        def record(label, h):
            unrolled = [d - xi * hv.to(d.dtype) for d, hv in zip(d_alpha, h)]
            rows.setdefault(label, {})[f"hvp {name}"] = f"{rel(h, h_true):.3g}"
            rows[label][f"unrolled {name}"] = f"{rel(unrolled, truth):.3g}"

        record("exact (double backward)", exact_hvp(state.train_loss, state.weights, state.alphas, vector,
                                                    second_derivatives=state.reference))
        for r in RADII:
            tag = " (DARTS)" if r == 1e-2 else ""
            record(f"central r={r:g}{tag}", finite_difference_hvp(state.train_loss, state.weights, state.alphas,
                                                                   vector, r))
            record(f"forward r={r:g}", state.forward_difference(vector, r, at_w))
        got, _ = second_order_arch_grads(state.train_loss, state.val_loss, state.weights, state.alphas, state.opt,
                                         xi, second_derivatives=state.reference)
        rows.setdefault("second_order_arch_grads (default)", {})[f"unrolled {name}"] = f"{rel(got, truth):.3g}"

    columns = ["hvp float32", "unrolled float32", "hvp float64", "unrolled float64"]
    print("\nrelative error against exact (float64 double backward)")
    print("| HVP | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for label, row in rows.items():
        print(f"| {label} | " + " | ".join(row.get(c, "") for c in columns) + " |")



def timing(search, train, valid, xi: float, repeats: int) -> None:
    """Seconds and peak memory of one architecture gradient with each hvp mode, float32, as searches run."""
    state = State(search, train, valid, torch.float32)
    print(f"\none architecture gradient, float32, {search.config.supernet_path} path "
          f"(median of {repeats}; peak RSS growth)")
    print("| hvp | whole gradient s | its peak MB | the product alone s | its peak MB |")
    print("|---|---|---|---|---|")
    _, vector = state.unrolled_parts(xi)
    products = {
        "finite-difference": lambda: finite_difference_hvp(state.train_loss, state.weights, state.alphas, vector),
        "exact": lambda: exact_hvp(state.train_loss, state.weights, state.alphas, vector,
                                   second_derivatives=state.reference),
    }
    for mode, product in products.items():
        whole = timed(lambda: second_order_arch_grads(
            state.train_loss, state.val_loss, state.weights, state.alphas, state.opt, xi, hvp=mode,
            second_derivatives=state.reference), repeats)
        alone = timed(product, repeats)
        print(f"| {mode} | {whole[0]:.2f} | {whole[1]:.0f} | {alone[0]:.2f} | {alone[1]:.0f} |")


if __name__ == "__main__":
    main()
