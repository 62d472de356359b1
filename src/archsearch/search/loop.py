"""DifferentiableSearch: the one bilevel search loop every differentiable method plugs into.

Per iteration, one architecture step on a search-valid batch and one weight step on a search-train batch, in
the order ``step_order`` names: arch-first (DARTS, the default) or weights-first (XNAS' Alg. 1, the NB201
scripts: alpha's gradient is then taken at the updated weights); or, with ``arch_steps`` K > 0, every weight step of
the epoch and then K architecture steps (ENAS). What varies between methods is handed in: the
relaxation (alpha -> op weights), the architecture optimizer (any torch.optim.Optimizer, stepped with a closure),
the selector, and epoch hooks (early stopping). Diagnostics and a checkpoint are written every epoch. The
components see the search through a SearchView (search/view.py), built afresh for each call.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

import torch
from torch import nn

from archsearch.diagnostics.cells import skip_count
from archsearch.errors import NonFiniteLossError
from archsearch.optim import ARCH_OPTIMIZERS
from archsearch.relax import build_relaxation
from archsearch.runtime import deterministic, resolve_device, seed_everything
from archsearch.search.bilevel import first_order_arch_grads, frozen, second_order_arch_grads
from archsearch.search.config import SearchConfig
from archsearch.search.distributed import Distributed, wrap_weights
from archsearch.search.eigenvalue import coupled_weight_decay, eigenvalue_every, supernet_eigenvalue, unroll_for
from archsearch.search.estimators import reinforce_arch_grads
from archsearch.search.hooks import build_hooks
from archsearch.search.loop_state import Checkpointed
from archsearch.search.meter import Meter, running_figures
from archsearch.search.resolve import build_selector, build_supernet, check_config
from archsearch.search.selectors import ArgmaxSelector
from archsearch.search.task_select import build_task
from archsearch.search.view import SearchView
from archsearch.search.watch import SearchWatch
from archsearch.spaces import get_space
from archsearch.utils.checkpoint import CheckpointStore
from archsearch.utils.io import append_jsonl, write_json_atomic
from archsearch.utils.progress import Console
from archsearch.utils.rundir import lock_run_dir
from archsearch.utils.tensorboard import resolve_tensorboard

class DifferentiableSearch(Checkpointed):
    """Bilevel search of one space's supernet. ``run()`` returns the selected genotype; ``console`` and
    ``tensorboard`` (None: where installed): search/watch.py."""

    def __init__(self, config: SearchConfig, out_dir: str | Path | None = None, *, quiet: bool = False,
                 dataset=None, hooks=(), relaxation=None, selector=None, distributed=None, console=None,
                 tensorboard: bool | None = None):
        self.console, self.tensorboard = Console.of(console, quiet), resolve_tensorboard(tensorboard)
        self.config, self.quiet = config, quiet or not self.console.bars
        self.out_dir = Path(out_dir) if out_dir is not None else None
        check_config(config)
        self.store = CheckpointStore(self.out_dir) if self.out_dir is not None else None
        #: the directory a user resumes (a P-DARTS stage's search runs in a subdirectory of it)
        self.run_dir = self.out_dir
        self._resumed = False
        seed_everything(config.seed)  # deterministic kernels are switched on for run() alone
        self.device = resolve_device(config.device)
        if config.distributed and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process
        self.space = get_space(config.space)
        # the cheap parts first, so that a bad option fails before any data is read
        self.relaxation = relaxation or build_relaxation(config.relaxation, **config.relaxation_options)
        self.selector = selector or build_selector(config.selector, config.selector_options)
        self.hooks = list(hooks) + build_hooks(config)
        # the data side: batches, their loss, a fixed batch (search/tasks.py: images or a token stream)
        self.task = build_task(config, dataset, self.device, self.quiet)
        self.dataset = self.task.dataset
        self.model = build_supernet(self.space, config, self.relaxation, self.task.supernet_inputs, self.device)
        self.model.set_path(config.supernet_path)  # "fast" (fused kernels where exact) or "reference"
        self.relaxation.bind(self.model, self.space)  # SNAS' resource costs read the network, ENAS' the space
        self.alphas = self.relaxation.arch_parameters(self.model)  # ENAS: its controller's parameters
        self.weights = self.model.weight_parameters()
        # data-parallel search (search/distributed.py): DDP averages the weights' gradients, `average` alpha's
        self.distributed = distributed
        if self.distributed is None and config.distributed:
            self.distributed = Distributed.from_env(self.device)
        self.weight_model = (wrap_weights(self.model, self.alphas, self.device)
                             if self.distributed is not None and self.distributed.world_size > 1 else self.model)
        self.is_main = self.distributed is None or self.distributed.is_main
        self.console = self.console if self.is_main else Console("quiet")  # one process reports

        self.train_loader, self.valid_loader = self.task.train_loader, self.task.valid_loader
        self.hessian_batch = self.task.fixed_batch

        # DARTS: SGD(0.025, momentum 0.9, wd 3e-4), cosine to 0.001 over the search.
        self.w_optimizer = torch.optim.SGD(self.weights, lr=config.w_lr, momentum=config.w_momentum,
                                           nesterov=config.w_nesterov, weight_decay=config.w_weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=config.epochs, eta_min=config.w_lr_min)
        self.a_optimizer = ARCH_OPTIMIZERS.get(config.arch_optimizer)(self.alphas, config,
                                                                      dataset_size=self.task.valid_size)
        # the horizon T, for optimizers whose step size or schedule follows it
        self.a_optimizer.plan_rounds(config.epochs * min(len(self.train_loader), len(self.valid_loader)))
        self.relaxation.attach(self.a_optimizer)
        self.hessian_every = eigenvalue_every(config.hessian_every, config.hessian_iters, min(
            len(self.train_loader), len(self.valid_loader)), config.hessian_order, hard=self.relaxation.hard)
        self.epoch = 0
        self.stop_reason: str | None = None
        self.history: list[dict] = []

    def view(self) -> SearchView:
        """What selectors, hooks and the relaxation see of the search now."""
        return SearchView(
            space=self.space, supernet=self.model, relaxation=self.relaxation, arch_optimizer=self.a_optimizer,
            config=self.config, epoch=self.epoch, device=self.device, score_batch=self.hessian_batch,
            num_classes=self.task.num_classes, in_channels=self.task.in_channels, out_dir=self.out_dir,
            valid_batches=self.task.score_loader, score=self.task.score, score_name=self.task.score_name)

    # -- losses -------------------------------------------------------------------------------
    def _loss(self, batch, meter: Meter | None = None, with_extra: bool = False, model=None,
              step: str | None = None) -> torch.Tensor:
        loss = self.task.loss(model or self.model, batch, meter, step)  # step: search/tasks.py
        if with_extra:
            extra = self.relaxation.extra_loss(self.model.named_arch_parameters())
            if extra is not None:
                loss = loss + extra
        return loss

    def deterministic_weights(self) -> dict[str, torch.Tensor]:
        return self.view().deterministic_weights()  # the relaxation's weights of what was learned, per cell type

    def current_genotype(self):
        """The argmax genotype of what has been learned so far (cheap: logged every epoch)."""
        return ArgmaxSelector().select(self.view())

    # -- one iteration --------------------------------------------------------------------------
    def arch_step(self, train_batch, valid_batch, meter: Meter | None = None, more=None) -> torch.Tensor:
        """One step of the architecture optimizer on the gradient ``arch_gradient`` names (search/estimators.py);
        ``more``: where a score-function estimator draws its further valid batches (else ``valid_batch`` again)."""
        self.relaxation.phase = "arch"

        def val_loss():  # L_val(w, alpha) (+ the relaxation's regulariser)
            return self._loss(valid_batch, meter, with_extra=True, step="arch")

        def train_loss():
            return self._loss(train_batch)  # L_train(w, alpha)

        def closure():
            self.a_optimizer.zero_grad(set_to_none=True)
            if self.config.arch_gradient == "reinforce":  # score function: ENAS' controller
                batches = itertools.chain([valid_batch], itertools.repeat(valid_batch) if more is None else more)
                grads, loss = reinforce_arch_grads(self.relaxation, self.model, batches, self.alphas, meter,
                                                   self.task)
            elif self.config.order == 1:
                # VON's Hessian diagonal differentiates the gradient again: its graph, on the supernet's
                # twice-differentiable path
                graph = getattr(self.a_optimizer, "needs_gradient_graph", False)
                with self.model.twice_differentiable() if graph else contextlib.nullcontext():
                    grads, loss = first_order_arch_grads(val_loss, self.alphas, self.weights, self._average, graph)
            else:
                xi = self.config.unrolled_lr or self.w_optimizer.param_groups[0]["lr"]
                grads, loss = second_order_arch_grads(train_loss, val_loss, self.weights, self.alphas, self.w_optimizer, xi,
                    self._average, hvp=self.config.hvp, second_derivatives=self.model.twice_differentiable,
                    clip=self.task.unrolled_clip)
            for alpha, grad in zip(self.alphas, grads):
                alpha.grad = grad
            return loss

        return self.a_optimizer.step(closure)

    def weight_step(self, batch, meter: Meter | None = None) -> torch.Tensor:
        self.relaxation.phase = "weights"
        self.w_optimizer.zero_grad(set_to_none=True)
        with frozen(self.alphas):  # only grad_w is wanted
            loss = self._loss(batch, meter, model=self.weight_model, step="weights")  # L_train(w, alpha)
        loss.backward(inputs=self.weights)  # under DDP: averaged over the processes during backward
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_optimizer.step()
        return loss.detach()

    def _average(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:  # mean over a data-parallel search's processes
        return grads if self.distributed is None else self.distributed.average(grads)

    def _nan_advice(self) -> str:
        if self.run_dir is None:
            return "lower the learning rates or check the data"
        c = self.config
        return (f"the last checkpoint in '{self.run_dir}' is kept: resume with lower learning rates, e.g. "
                f"archsearch search --resume {self.run_dir} w_lr={c.w_lr / 2:g} arch_lr={c.arch_lr / 2:g}")

    def _check_finite(self, loss, what: str, step: int) -> None:
        if loss is not None and not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"{what} loss is {float(loss)} at epoch {self.epoch + 1}, step {step + 1}; {self._nan_advice()}")

    def _check_finite_state(self) -> None:
        """A NaN that reached the weights in an epoch's last step shows in no loss yet: it must not reach
        the checkpoint either, or resuming would start from it."""
        for name, tensor in self.model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise NonFiniteLossError(f"'{name}' holds non-finite values after epoch {self.epoch + 1}; "
                                         f"{self._nan_advice()}")

    def train_epoch(self) -> dict:
        self.model.train()
        self.relaxation.set_epoch(self.epoch, self.config.epochs)
        if self.config.drop_path_prob:  # RobustDARTS: p * epoch / (epochs - 1), 0 in the first epoch
            self.model.set_drop_path_prob(self.config.drop_path_prob * self.epoch / max(1, self.config.epochs - 1))
        self.task.begin_epoch(self.epoch)
        train_meter, valid_meter = Meter(), Meter()
        steps = min(len(self.train_loader), len(self.valid_loader))
        batches = zip(self.train_loader, self.valid_loader)
        bar = self.console.bar(batches, steps, f"search epoch {self.epoch + 1}/{self.config.epochs}")
        train_arch = self.a_optimizer.learns and self.epoch >= self.config.arch_warmup_epochs  # RSPS; PC-DARTS' warm-up
        weights_first = self.config.step_order == "weights-first"
        if self.config.arch_steps:  # ENAS: the epoch's weight steps, then arch_steps architecture steps
            return self._weights_then_arch(train_arch, train_meter, valid_meter)
        for step, (train_batch, valid_batch) in enumerate(bar):
            if self.distributed is not None:  # this process's shard of the global batches
                train_batch, valid_batch = self.distributed.shard(train_batch), self.distributed.shard(valid_batch)
            with self.task.step_scope(self.w_optimizer, train_batch):  # PTB: the lr scaled to the window
                if weights_first:
                    self._check_finite(self.weight_step(train_batch, train_meter), "training", step)
                if train_arch:
                    self._check_finite(self.arch_step(train_batch, valid_batch, valid_meter), "validation", step)
                if not weights_first:
                    self._check_finite(self.weight_step(train_batch, train_meter), "training", step)
            bar.postfix(step, lambda: running_figures(train_meter, valid_meter))  # the meters' sums: no new sync
        return self.task.epoch_stats(train_meter, valid_meter)

    def _weights_then_arch(self, train_arch: bool, train_meter: Meter, valid_meter: Meter) -> dict:
        """A weight step on every search-train batch, then ``arch_steps`` architecture steps on search-valid
        batches, the loader restarted when it runs out (ENAS.py:387-422, :127-133)."""
        epoch = f"search epoch {self.epoch + 1}/{self.config.epochs}"
        for step, batch in enumerate(self.console.bar(self.train_loader, len(self.train_loader), epoch)):
            with self.task.step_scope(self.w_optimizer, batch):  # PTB: the lr scaled to the window
                self._check_finite(self.weight_step(batch, train_meter), "training", step)
        valid = itertools.chain.from_iterable(iter(self.valid_loader) for _ in itertools.count())
        for step in range(self.config.arch_steps if train_arch else 0):
            self._check_finite(self.arch_step(None, next(valid), valid_meter, more=valid), "validation", step)
        return self.task.epoch_stats(train_meter, valid_meter)

    # -- diagnostics ----------------------------------------------------------------------------
    def hessian_eigenvalue(self) -> float:
        """Largest eigenvalue of the Hessian of L_val + the arch L2 w.r.t. alpha (search/eigenvalue.py)."""
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + self.epoch)
        with self.console.task("hessian eigenvalue", self.config.hessian_iters) as progress:
            return supernet_eigenvalue(self.model, self.relaxation, self.hessian_batch, self.config.hessian_iters,
                                       generator, progress, l2=coupled_weight_decay(self.a_optimizer),
                                       unroll=unroll_for(self.config, self.w_optimizer, self.train_loader),
                                       loss_of=self.task.diagnostic_loss)

    def epoch_record(self, stats: dict, seconds: float) -> dict:
        view = self.view()
        genotype = ArgmaxSelector().select(view)
        record = {"epoch": self.epoch + 1, "genotype": self.space.to_string(genotype), **stats,
                  "lr": self.w_optimizer.param_groups[0]["lr"]}
        record["op_weights"] = {name: [[round(v, 6) for v in row] for row in w.tolist()]
                                for name, w in view.deterministic_weights().items()}
        record.update(self.relaxation.describe(view))
        record["skip_count"] = skip_count(self.space, genotype)
        every = self.hessian_every
        record["hessian_max_eigenvalue"] = (
            self.hessian_eigenvalue() if every and (self.epoch + 1) % every == 0 else None)
        truth = self.space.ground_truth(genotype)
        if truth is not None:
            record["ground_truth"] = truth
        record.update(self.a_optimizer.record())  # each part may add fields to the record
        record.update(self.selector.record(view))
        for hook in self.hooks:
            record.update(hook.record(view))
        record["seconds"] = seconds
        return record

    # -- the run --------------------------------------------------------------------------------
    def run(self):
        writes = self.out_dir is not None and self.is_main  # one writer in a data-parallel search
        with (deterministic(self.config.deterministic),
              lock_run_dir(self.out_dir) if writes else contextlib.nullcontext(),
              SearchWatch(self, writes) as watch):
            if writes:
                self.config.save(self.out_dir / "config.yaml")  # what the run now uses, changes included
                if self.epoch == 0 and not (self._resumed and self.store.exists()):
                    self.save_checkpoint()  # epoch 0: a run killed in its first epoch resumes too
            while self.epoch < self.config.epochs and self.stop_reason is None:
                start = time.perf_counter()
                for hook in self.hooks:
                    hook.on_epoch_start(self.view())
                stats = self.train_epoch()
                self._check_finite_state()
                self.scheduler.step()
                record = self.epoch_record(stats, 0.0)
                record["seconds"] = round(time.perf_counter() - start, 3)
                self.history.append(record)
                self.epoch += 1
                for hook in self.hooks:
                    reason = hook.on_epoch_end(self.view(), record)
                    if reason:
                        self.stop_reason = reason
                        break
                if writes:
                    # the line first: a kill before the checkpoint leaves a line the resume drops again
                    append_jsonl(self.out_dir / "metrics.jsonl", record)
                    self.save_checkpoint()
                watch.epoch_end()  # the console's line, metrics.csv, plots, TensorBoard (search/watch.py)
            genotype = self.selector.select(self.view())  # the final choice (may rank samples with a proxy)
            if writes:
                write_summary(self.out_dir, self.summary(genotype))
                watch.plots(final=True)
        return genotype

    def summary(self, genotype) -> dict:
        out = {"space": self.space.name, "method": self.config.method,
               "genotype": self.space.to_string(genotype), "epochs_run": self.epoch,
               "stopped_early": self.stop_reason}
        invalid = self.selector.invalid_reason(self.view(), genotype)
        if invalid:  # a selector that can tell a broken cell reports it instead of a result
            out.update(genotype=None, invalid_architecture=invalid, rejected_genotype=out["genotype"])
            return out
        truth = self.space.ground_truth(genotype)
        if truth is not None:
            out["ground_truth"] = truth
        return out


def write_summary(out_dir: Path, summary: dict) -> None:
    """A run's genotype.json: written as the search ends, so that the result outlives a failure after it,
    then again by the runner with what it adds (the trained cell's accuracy, the run directory)."""
    write_json_atomic(Path(out_dir) / "genotype.json", summary)
