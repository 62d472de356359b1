"""Train a recurrent cell's language model on Penn Treebank as quark0/darts ``rnn/train.py`` does.

Per step (train(), lines 159-229): a sequence length drawn by ``bptt_length`` with the learning rate scaled by
``seq_len / bptt``; the hidden state carried across steps and detached; loss = NLL + alpha AR + beta TAR,
accumulated over chunks of ``small_batch_size`` sequences; the gradient norm clipped to ``clip``. After each
epoch (lines 268-305): the validation loss (with ASGD's averaged weights once ASGD runs), the best model so far
kept, and SGD turned into ASGD (t0=0, lambd=0) when ``switch_to_asgd`` says. The test loss is that of the best
model, with batches of one sequence (line 111).

The run directory is the image trainer's (config.yaml, metrics.jsonl + metrics.csv, checksummed checkpoints
that a resume continues from, result.json); the differences from the reference are in docs/rnn.md.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.checks import integer
from archsearch.data.ptb import batchify, bptt_length, get_batch, load_ptb, lr_scale, perplexity
from archsearch.errors import CheckpointError, ConfigError, NonFiniteLossError
from archsearch.evaluate.lm_recipes import LMRecipe
from archsearch.evaluate.recipes import get_recipe
from archsearch.runtime import deterministic, resolve_device, rng_states, seed_everything, set_rng_states
from archsearch.settings import SEED, coerce
from archsearch.utils.checkpoint import CheckpointStore, one_line, require_checkpoint_for
from archsearch.utils.epoch_output import EpochOutput
from archsearch.utils.io import append_jsonl, rewrite_jsonl, write_json_atomic, write_yaml_atomic
from archsearch.utils.progress import Console
from archsearch.utils.resume import check_fits, refuse_changes
from archsearch.utils.rundir import lock_run_dir, read_run_config
from archsearch.utils.tensorboard import resolve_tensorboard

CONFIG, METRICS, RESULT = "config.yaml", "metrics.jsonl", "result.json"
#: what a resumed run may change: more epochs, the step size or clipping after a NaN, where the data lies
RESUMABLE = frozenset({"epochs", "lr", "clip", "wdecay", "data_dir", "deterministic"})
RECORD = ("epoch", "train_loss", "train_ppl", "valid_loss", "valid_ppl", "lr", "optimizer", "tokens_per_s",
          "seconds")


def switch_to_asgd(previous: list[float], val_loss: float, nonmono: int) -> bool:
    """NT-ASGD's trigger (rnn/train.py:302; awd-lstm-lm main.py:275): more than ``nonmono`` earlier validation
    losses, and this one worse than the best of all but the last ``nonmono`` of them."""
    return len(previous) > nonmono and val_loss > min(previous[:-nonmono])


class LMTrainer:
    """One language-model training run; ``run()`` trains (or resumes) to ``recipe.epochs``."""

    def __init__(self, genotype, space, recipe: LMRecipe | str | None = None, out_dir=None, *, data_dir=None,
                 corpus=None, seed: int = 0, device=None, quiet: bool = False, resume: bool = False,
                 deterministic: bool = False, limit_train: int | None = None, limit_test: int | None = None,
                 stop_after: int | None = None, console: Console | None = None, tensorboard: bool | None = None):
        if isinstance(space, str):
            from archsearch.spaces import get_space

            space = get_space(space)
        self.space, self.genotype = space, space.parse(genotype)
        self.recipe = recipe if isinstance(recipe, LMRecipe) else get_recipe("darts-rnn" if recipe is None else recipe)
        if not isinstance(self.recipe, LMRecipe):
            raise ConfigError(f"recipe '{self.recipe.name}' trains image networks; a language model takes the "
                              "darts-rnn recipe")
        self.seed = coerce("seed", int, seed)
        SEED.check("seed", self.seed)
        self.limits = {name: None if value is None else integer(value, name, minimum=2, maximum=2**63 - 1)
                       for name, value in (("limit_train", limit_train), ("limit_test", limit_test))}
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if resume and self.out_dir is None:
            raise ConfigError("resume=True needs the out_dir of the run to continue")
        self.console, self.tensorboard = Console.of(console, quiet), resolve_tensorboard(tensorboard)
        self.resume, self.deterministic, self.stop_after = resume, deterministic, stop_after
        self.device = resolve_device(device)
        self.data_dir = None if data_dir is None else str(data_dir)
        self.corpus = corpus if corpus is not None else load_ptb(data_dir)
        self.store = CheckpointStore(self.out_dir) if self.out_dir is not None else None
        self.history: list[dict] = []

    def config(self) -> dict:
        return {"space": self.space.name, "genotype": self.space.to_string(self.genotype), "dataset": "ptb",
                "data_dir": self.data_dir, **self.limits, "seed": self.seed, "deterministic": self.deterministic,
                "recipe": self.recipe.as_dict()}

    # -- building -----------------------------------------------------------------------------------
    def _build(self) -> None:
        recipe, corpus = self.recipe, self.corpus
        seed_everything(self.seed)
        self.rng = np.random.default_rng(self.seed)  # the sequence lengths (np.random in the reference)
        train, limit_test = corpus.train, self.limits["limit_test"]
        if self.limits["limit_train"] is not None:
            train = train[: self.limits["limit_train"]]
        evaluation = {split: corpus.split(split)[:limit_test] for split in ("valid", "test")}
        self.train_data = batchify(train, recipe.batch_size).to(self.device)
        self.valid_data = batchify(evaluation["valid"], recipe.eval_batch_size).to(self.device)
        self.test_data = batchify(evaluation["test"], recipe.test_batch_size).to(self.device)
        self.net = self.space.network(self.genotype, num_classes=corpus.ntokens, **recipe.network).to(self.device)
        self.params = sum(p.numel() for p in self.net.parameters())
        self.optimizer = self._optimizer("sgd")
        self.losses: list[float] = []  # the validation losses while SGD runs (rnn/train.py:233, best_val_loss)
        self.best_loss, self.best_state, self.asgd_from = math.inf, None, None

    def _optimizer(self, kind: str) -> torch.optim.Optimizer:
        recipe, params = self.recipe, self.net.parameters()
        if kind == "asgd":  # rnn/train.py:304: averaging from the switch on, no decay of the step size
            return torch.optim.ASGD(params, lr=recipe.lr, t0=0, lambd=0.0, weight_decay=recipe.wdecay)
        return torch.optim.SGD(params, lr=recipe.lr, weight_decay=recipe.wdecay)  # line 246

    @property
    def averaging(self) -> bool:
        return isinstance(self.optimizer, torch.optim.ASGD)

    # -- checkpoints ----------------------------------------------------------------------------------
    def _checkpoint(self, epoch: int) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "optimizer_kind": "asgd" if self.averaging else "sgd", "epoch": epoch, "rng": rng_states(),
                "bptt_rng": self.rng.bit_generator.state, "losses": list(self.losses), "best_loss": self.best_loss,
                "best_state": self.best_state, "asgd_from": self.asgd_from, "config": self.config(),
                "history": list(self.history)}

    def _restore(self) -> int:
        state, path = self.store.load(self.device)
        epoch = 0
        if state is None:
            require_checkpoint_for(self.out_dir / METRICS)
        else:
            saved = state.get("config")
            check_fits(_flat(saved) if isinstance(saved, dict) else None, _flat(self.config()), RESUMABLE, path)
            try:
                self.net.load_state_dict(state["model"])
                self.optimizer = self._optimizer(state["optimizer_kind"])
                self.optimizer.load_state_dict(state["optimizer"])
                set_rng_states(state["rng"])
                self.rng.bit_generator.state = state["bptt_rng"]
                self.losses, self.best_loss = list(state["losses"]), float(state["best_loss"])
                self.best_state, self.asgd_from = state["best_state"], state["asgd_from"]
                epoch, self.history = int(state["epoch"]), list(state["history"])
            except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as err:
                reason = f"it holds no {err}" if isinstance(err, KeyError) else one_line(err)
                raise CheckpointError(f"checkpoint '{path}' does not fit this run: {reason}") from None
            if self.recipe.epochs < epoch:
                raise ConfigError(f"cannot lower epochs to {self.recipe.epochs}: the run has done {epoch}")
            for group in self.optimizer.param_groups:  # a changed lr / wdecay replaces the saved one
                group["lr"], group["weight_decay"] = self.recipe.lr, self.recipe.wdecay
        rewrite_jsonl(self.out_dir / METRICS, self.history)
        write_yaml_atomic(self.out_dir / CONFIG, self.config())
        return epoch

    # -- one epoch ------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        recipe, net, optimizer, data = self.recipe, self.net, self.optimizer, self.train_data
        chunk = recipe.chunk
        hidden = [net.init_hidden(chunk) for _ in range(recipe.batch_size // chunk)]
        total, steps, tokens, i = 0.0, 0, 0, 0
        tic = time.perf_counter()
        while i < data.size(0) - 1 - 1:  # rnn/train.py:168
            seq_len = bptt_length(recipe.bptt, self.rng, recipe.max_seq_len_delta)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.param_groups[0]["lr"] = lr * lr_scale(seq_len, recipe.bptt)
            net.train()
            x, y = get_batch(data, i, seq_len)
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for s, start in enumerate(range(0, recipe.batch_size, chunk)):
                hidden[s] = hidden[s].detach()  # truncated backpropagation through time
                log_prob, hidden[s], raw, dropped = net(x[:, start: start + chunk], hidden[s], return_h=True)
                raw_loss = F.nll_loss(log_prob.view(-1, log_prob.size(2)), y[:, start: start + chunk].reshape(-1))
                loss = raw_loss
                if recipe.alpha > 0:  # AR: alpha * mean(dropped h^2) (lines 195-196)
                    loss = loss + recipe.alpha * dropped[-1].pow(2).mean()
                # TAR: beta * mean((h_t - h_{t-1})^2) on the raw output (line 198)
                loss = loss + recipe.beta * (raw[-1][1:] - raw[-1][:-1]).pow(2).mean()
                (loss * (chunk / recipe.batch_size)).backward()
                step_loss += raw_loss.item() * chunk / recipe.batch_size
            if not math.isfinite(step_loss):
                raise NonFiniteLossError(f"training loss is {step_loss} at epoch {epoch + 1}, step {steps + 1}; "
                                         f"{self._nan_advice()}")
            if recipe.clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), recipe.clip)
            optimizer.step()
            optimizer.param_groups[0]["lr"] = lr
            total, steps, tokens, i = total + step_loss, steps + 1, tokens + x.numel(), i + seq_len
        seconds = time.perf_counter() - tic
        loss = total / max(steps, 1)
        return {"train_loss": loss, "train_ppl": perplexity(loss), "lr": optimizer.param_groups[0]["lr"],
                "tokens_per_s": tokens / seconds if seconds > 0 else math.nan}

    def _nan_advice(self) -> str:
        advice = f"lower the learning rate (lr={self.recipe.lr / 2:g}) or clip harder (clip=0.1)"
        if self.out_dir is None:
            return advice
        return (f"the last checkpoint in '{self.out_dir}' is kept: {advice}, e.g. "
                f"archsearch train --resume {self.out_dir} lr={self.recipe.lr / 2:g}")

    @torch.no_grad()
    def evaluate(self, source: torch.Tensor, batch_size: int) -> float:
        """Mean NLL per predicted token over ``source`` in chunks of ``bptt`` (rnn/train.py:140-156). The
        reference divides the sum by every row of ``source``; the last row is never predicted, so the mean here
        is over the rows predicted (a relative difference of 1 / rows)."""
        self.net.eval()
        hidden, total = self.net.init_hidden(batch_size), 0.0
        for i in range(0, source.size(0) - 1, self.recipe.bptt):
            x, y = get_batch(source, i, self.recipe.bptt)
            log_prob, hidden = self.net(x, hidden)
            total += float(F.nll_loss(log_prob.view(-1, log_prob.size(2)), y.reshape(-1))) * len(x)
        return total / (source.size(0) - 1)

    def _averaged(self):
        """ASGD's averages swapped into the model (lines 269-272); a function that swaps the weights back."""
        kept = [p.detach().clone() for p in self.net.parameters()]
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(self.optimizer.state[p]["ax"])

        def restore():
            with torch.no_grad():
                for p, value in zip(self.net.parameters(), kept):
                    p.copy_(value)
        return restore

    def end_of_epoch(self, epoch: int) -> float:
        """The validation loss; the best model kept; SGD turned to ASGD when NT-ASGD's rule says (268-305)."""
        restore = self._averaged() if self.averaging and self.optimizer.state else None
        val_loss = self.evaluate(self.valid_data, self.recipe.eval_batch_size)
        if val_loss < self.best_loss:  # the reference saves this model (averaged while ASGD runs)
            self.best_loss = val_loss
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        if restore is not None:
            restore()
        if not self.averaging:
            if switch_to_asgd(self.losses, val_loss, self.recipe.nonmono):
                self.optimizer, self.asgd_from = self._optimizer("asgd"), epoch + 2
            self.losses.append(val_loss)
        return val_loss

    # -- the whole run --------------------------------------------------------------------------------
    def run(self) -> dict:
        with deterministic(self.deterministic):
            if self.out_dir is None:
                return self._train()
            if self.resume and not self.out_dir.is_dir():
                read_run_config(self.out_dir, "train")
            with lock_run_dir(self.out_dir, create=not self.resume):
                return self._train()

    def _train(self) -> dict:
        if self.out_dir is not None:
            if self.resume:
                refuse_changes(_flat(read_run_config(self.out_dir, "train")), _flat(self.config()), RESUMABLE,
                               self.out_dir)
            elif (self.out_dir / CONFIG).exists():
                raise ConfigError(f"'{self.out_dir}' already holds a run; pass resume=True or choose another out_dir")
            else:
                write_yaml_atomic(self.out_dir / CONFIG, self.config())
        self._build()
        start = self._restore() if self.resume else 0
        if self.out_dir is not None and not (self.resume and self.store.exists()):
            self.store.save(self._checkpoint(0))
        output = EpochOutput("train", self.console, self.out_dir, tensorboard=self.tensorboard, history=self.history)
        try:
            last = self.recipe.epochs if self.stop_after is None else min(self.stop_after, self.recipe.epochs)
            for epoch in range(start, last):
                tic = time.perf_counter()
                record = {"epoch": epoch + 1, "optimizer": "asgd" if self.averaging else "sgd",
                          **self.train_epoch(epoch)}
                record["valid_loss"] = self.end_of_epoch(epoch)
                record.update(valid_ppl=perplexity(record["valid_loss"]), seconds=time.perf_counter() - tic)
                self.history.append({k: record[k] for k in RECORD})
                if self.out_dir is not None:
                    append_jsonl(self.out_dir / METRICS, self.history[-1])
                    self.store.save(self._checkpoint(epoch + 1))
                output.epoch(self.history, self.recipe.epochs)
        finally:
            output.close()
        if last < self.recipe.epochs:
            return {"completed": False, "epochs_done": last, "history": self.history}
        return self._finish()

    def _finish(self) -> dict:
        self.net.load_state_dict(self.best_state)  # rnn/train.py:314: the best model on validation
        test_loss = self.evaluate(self.test_data, self.recipe.test_batch_size)
        result = {"space": self.space.name, "genotype": self.space.to_string(self.genotype), "dataset": "ptb",
                  "valid_loss": self.best_loss, "valid_ppl": perplexity(self.best_loss), "test_loss": test_loss,
                  "test_ppl": perplexity(test_loss), "params": self.params, "epochs": self.recipe.epochs,
                  "asgd_from_epoch": self.asgd_from, "seed": self.seed,
                  "train_seconds": sum(r["seconds"] for r in self.history),
                  "tokens_per_s": float(np.mean([r["tokens_per_s"] for r in self.history]))}
        if self.out_dir is not None:
            write_json_atomic(self.out_dir / RESULT, result)
        return {**result, "completed": True, "history": self.history}


def train_language_model(genotype, space="darts-rnn", recipe: LMRecipe | str | None = None, out_dir=None,
                         **options) -> dict:
    """Train ``genotype``'s language model; ``options`` are LMTrainer's (``data_dir`` or ``corpus``, ``seed``,
    ``device``, ``limit_train`` / ``limit_test``: the first that many tokens of train / of valid and test,
    ``stop_after``, ``resume``, ...). Returns result.json's fields plus ``history`` and ``completed``."""
    return LMTrainer(genotype, space, recipe, out_dir, **options).run()


def _flat(config: dict) -> dict:
    return {**{k: v for k, v in config.items() if k != "recipe"}, **config.get("recipe", {})}


def resume_language_model(out_dir: str | os.PathLike, changes: dict | None = None, **options) -> dict:
    """Continue the language-model run in ``out_dir`` with ``changes`` (those in RESUMABLE)."""
    saved = read_run_config(out_dir, "train")
    changes = dict(changes or {})
    if "genotype" in changes:  # the same architecture, however it is written, is no change
        from archsearch.spaces import get_space

        space = get_space(saved.get("space"))
        changes["genotype"] = space.to_string(space.from_string(changes["genotype"]))
    try:
        recipe = LMRecipe(**saved["recipe"])
    except (TypeError, KeyError) as err:
        raise ConfigError(f"cannot resume '{out_dir}': its config.yaml holds no language-model recipe "
                          f"({one_line(err)})") from None
    fields = {f: changes.pop(f) for f in list(changes) if f in LMRecipe.__dataclass_fields__}
    recipe = recipe.replace(**fields) if fields else recipe
    run = {k: saved.get(k) for k in ("space", "genotype", "dataset", "data_dir", "limit_train", "limit_test", "seed",
                                     "deterministic")}
    unknown = [k for k in changes if k not in run]
    if unknown:
        raise ConfigError(f"unknown setting '{unknown[0]}' (recipe fields: "
                          f"{', '.join(LMRecipe.__dataclass_fields__)}; run settings: {', '.join(run)})")
    refuse_changes(_flat(saved), _flat({**run, **changes, "recipe": recipe.as_dict()}), RESUMABLE, out_dir)
    run.update(changes)
    return LMTrainer(run["genotype"], run["space"], recipe, out_dir, data_dir=run["data_dir"], seed=run["seed"],
                     resume=True, deterministic=bool(run["deterministic"]), limit_train=run["limit_train"],
                     limit_test=run["limit_test"], **options).run()
