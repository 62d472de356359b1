"""Train a found architecture from scratch and score it on the test set.

``train(genotype, space, dataset, recipe, out_dir)`` writes a run directory:

- ``config.yaml``: the resolved run (space, genotype string, dataset, data_dir, recipe fields, seed);
- ``metrics.jsonl``: one line per epoch (epoch, train_loss, train_acc, valid_loss, valid_acc, lr, seconds),
  and the same as ``metrics.csv``; TensorBoard's scalars in ``tensorboard/`` where it is installed;
- ``checkpoint.pt``: written after every epoch (model, optimizer, scheduler, scaler, epoch, RNG states,
  loader state), checksummed, with the one before kept as ``checkpoint.prev.pt`` (utils/checkpoint.py),
  so ``resume=True`` continues where a killed run stopped, with changed settings if they are in
  ``RESUMABLE``;
- ``result.json``: test accuracy (%) and loss, params (without the auxiliary head), FLOPs, epochs.

On CUDA it trains under autocast (bf16 where supported, else fp16 with loss scaling) in channels-last
memory format; on CPU in float32.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.diagnostics.flops import count_flops, count_params
from archsearch.errors import CheckpointError, ConfigError, NonFiniteLossError, RunDirectoryError
from archsearch.evaluate.recipes import Recipe, default_recipe, get_recipe
from archsearch.evaluate.training_parts import autocast_dtype, load_data, logits_of, make_scheduler
from archsearch.runtime import deterministic, resolve_device, rng_states, seed_everything, set_rng_states
from archsearch.utils.checkpoint import CheckpointStore, one_line, require_checkpoint_for
from archsearch.utils.epoch_output import EpochOutput
from archsearch.utils.io import append_jsonl, rewrite_jsonl, write_json_atomic, write_yaml_atomic
from archsearch.utils.progress import Console
from archsearch.utils.resume import check_fits, refuse_changes, replan_cosine, set_hyperparameters
from archsearch.utils.rundir import lock_run_dir, read_run_config
from archsearch.utils.tensorboard import resolve_tensorboard
from archsearch.checks import integer
from archsearch.settings import SEED, check_options, coerce

CONFIG, METRICS, CHECKPOINT, RESULT = "config.yaml", "metrics.jsonl", "checkpoint.pt", "result.json"
#: what a resumed training may change (recipe fields and run settings, by name): more epochs (the
#: schedule is re-planned over the new total), the optimizer's settings after a NaN loss, and where the
#: data lives or how deterministic the kernels are. Everything else defines the run.
RESUMABLE = frozenset({"epochs", "lr", "lr_min", "momentum", "weight_decay", "grad_clip", "label_smoothing",
                       "eval_batch_size", "deterministic", "data_dir"})


# ---- the run ------------------------------------------------------------------------------------
class Trainer:
    """One training run; ``run()`` trains (or resumes) to ``recipe.epochs`` and returns the result."""

    def __init__(self, genotype, space, dataset, recipe: Recipe | str | None = None, out_dir=None, *,
                 seed: int = 0, device=None, quiet: bool = False, resume: bool = False,
                 deterministic: bool = False, data_dir=None, limit_train: int | None = None,
                 limit_test: int | None = None, stop_after: int | None = None, console: Console | None = None,
                 tensorboard: bool | None = None):
        if isinstance(space, str):
            from archsearch.spaces import get_space

            space = get_space(space)
        self.space = space
        self.genotype = space.parse(genotype)
        self.recipe = default_recipe(space) if recipe is None else get_recipe(recipe)
        if not isinstance(self.recipe, Recipe) or getattr(space, "input_kind", "images") != "images":
            raise ConfigError(f"recipe '{self.recipe.name}' and space '{space.name}': a language model trains "
                              "with evaluate.lm_train (space darts-rnn, recipe darts-rnn), an image network here")
        check_options(f"the {space.name} network", space.network, self.recipe.network,
                      fixed=("genotype", "num_classes", "in_channels"))
        self.out_dir = Path(out_dir) if out_dir is not None else None
        seed = coerce("seed", int, seed)
        SEED.check("seed", seed)
        for name, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
            if limit is not None:  # a count past 64 bits is no size of a dataset, as in a search's config
                integer(limit, name, maximum=2**63 - 1)
        self.console, self.tensorboard = Console.of(console, quiet), resolve_tensorboard(tensorboard)
        quiet = quiet or not self.console.bars  # the data loaders' bars too
        self.seed, self.quiet, self.resume, self.deterministic = seed, quiet, resume, deterministic
        self.device = resolve_device(device)
        self.stop_after = stop_after
        if resume and self.out_dir is None:
            raise ConfigError("resume=True needs the out_dir of the run to continue")
        self.data = load_data(dataset, data_dir, self.recipe, quiet, limit_train, limit_test)
        self.dataset_name = dataset if isinstance(dataset, str) else self.data.dataset.name
        self.data_dir = None if data_dir is None else str(data_dir)
        self.limits = {"limit_train": limit_train, "limit_test": limit_test}
        self.store = CheckpointStore(self.out_dir) if self.out_dir is not None else None
        self.history: list[dict] = []

    # -- configuration ----------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "space": self.space.name,
            "genotype": self.space.to_string(self.genotype),
            "dataset": self.dataset_name,
            "data_dir": self.data_dir,
            **self.limits,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "recipe": self.recipe.as_dict(),
        }

    def _prepare_dir(self) -> None:
        if self.out_dir is None:
            return
        if self.resume:
            refuse_changes(_flat(read_run_config(self.out_dir, "train")), _flat(self.config()), RESUMABLE,
                           self.out_dir)
        elif (self.out_dir / CONFIG).exists():
            raise ConfigError(f"'{self.out_dir}' already holds a run; pass resume=True or choose another out_dir")
        else:
            write_yaml_atomic(self.out_dir / CONFIG, self.config())

    # -- building -----------------------------------------------------------------------------------
    def _build(self):
        ds, recipe = self.data.dataset, self.recipe
        seed_everything(self.seed)
        net = self.space.network(self.genotype, num_classes=ds.num_classes, in_channels=ds.in_channels,
                                 **recipe.network)
        self.params = count_params(net)
        self.flops = count_flops(net, (1, ds.in_channels, *ds.train_x.shape[2:]))
        net = net.to(self.device)
        if self.device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        from archsearch.data import Augment, BatchLoader, default_augment

        if recipe.crop_flip:
            augment = default_augment(ds, cutout=recipe.cutout)
        else:
            augment = Augment(crop_padding=0, flip=False, cutout=recipe.cutout) if recipe.cutout else None
        common = {"mean": ds.mean, "std": ds.std, "device": self.device}
        # a last batch of one image would fail batch norm in training mode (see Recipe): it is left out
        lone_last = len(self.data.train) % recipe.batch_size == 1
        self.train_loader = BatchLoader(self.data.train, recipe.batch_size, shuffle=True, augment=augment,
                                        seed=self.seed, drop_last=lone_last, **common)
        self.eval_loaders = {
            name: BatchLoader(subset, recipe.eval_batch_size, shuffle=False, **common)
            for name, subset in (("valid", self.data.valid), ("test", self.data.test)) if subset is not None
        }
        optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                    nesterov=recipe.nesterov and recipe.momentum > 0,
                                    weight_decay=recipe.weight_decay)
        scheduler = make_scheduler(optimizer, recipe, len(self.train_loader))
        self.amp_dtype = autocast_dtype(self.device)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.net, self.optimizer, self.scheduler, self.scaler = net, optimizer, scheduler, scaler

    def _checkpoint(self, epoch: int) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": epoch,
                "rng": rng_states(), "loader": self.train_loader.state_dict(),
                "config": self.config(), "history": list(self.history)}

    def _restore(self) -> int:
        """Load the newest good checkpoint (the previous one, with a warning, where the newest is damaged);
        the epoch to go on from (0 where the run died before its first checkpoint)."""
        state, path = self.store.load(self.device)
        epoch = 0
        if state is None:
            require_checkpoint_for(self.out_dir / METRICS)
        else:
            saved = state.get("config")
            changed = set(check_fits(_flat(saved) if isinstance(saved, dict) else None, _flat(self.config()),
                                     RESUMABLE, path))
            try:
                self.net.load_state_dict(state["model"])
                self.optimizer.load_state_dict(state["optimizer"])
                self.scheduler.load_state_dict(state["scheduler"])
                self.scaler.load_state_dict(state["scaler"])
                self.train_loader.load_state_dict(state["loader"])
                set_rng_states(state["rng"])
                epoch, self.history = int(state["epoch"]), list(state["history"])
            except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as err:
                reason = f"it holds no {err}" if isinstance(err, KeyError) else one_line(err)
                raise CheckpointError(f"checkpoint '{path}' does not fit this run: {reason}") from None
            self._apply_changes(saved["recipe"], changed, epoch)
        rewrite_jsonl(self.out_dir / METRICS, self.history)
        write_yaml_atomic(self.out_dir / CONFIG, self.config())  # what the run now uses
        return epoch

    def _apply_changes(self, saved: dict, changed: set[str], epoch: int) -> None:
        """Make recipe fields that differ from the checkpoint's take effect (the loaded optimizer and
        scheduler states bring back the old values)."""
        recipe = self.recipe
        if recipe.epochs < epoch:
            raise ConfigError(f"cannot lower epochs to {recipe.epochs}: the run has done {epoch}")
        if changed & {"epochs", "lr", "lr_min"}:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                steps = len(self.train_loader) if recipe.schedule_unit == "step" else 1
                replan_cosine(self.scheduler, total=recipe.epochs * steps, lr=recipe.lr, lr_min=recipe.lr_min)
            else:  # constant
                self.scheduler.base_lrs = [recipe.lr] * len(self.optimizer.param_groups)
                for group in self.optimizer.param_groups:
                    group["initial_lr"] = group["lr"] = recipe.lr
                self.scheduler._last_lr = [recipe.lr] * len(self.optimizer.param_groups)
        set_hyperparameters(self.optimizer, {k: (k, saved[k], getattr(recipe, k))
                                             for k in ("momentum", "weight_decay") if k in changed}, "optimizer")

    # -- one pass ---------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _prepare(self, x):
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    def train_epoch(self, epoch: int) -> dict:
        recipe, net = self.recipe, self.net
        if hasattr(net, "drop_path_prob"):
            # quark0/darts train.py: model.drop_path_prob = args.drop_path_prob * epoch / args.epochs
            net.drop_path_prob = recipe.drop_path_prob * epoch / recipe.epochs
        net.train()
        lr = self.optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        batches = self.console.bar(self.train_loader, len(self.train_loader), f"epoch {epoch + 1}/{recipe.epochs}")
        for step, (x, y) in enumerate(batches):
            with self._autocast():
                output = net(self._prepare(x))
                logits = logits_of(output)
                loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)  # L_train(w)
                if not torch.is_tensor(output) and recipe.auxiliary_weight > 0:
                    loss = loss + recipe.auxiliary_weight * F.cross_entropy(
                        output[1], y, label_smoothing=recipe.label_smoothing)  # + w_aux * L_aux(w)
            if not bool(torch.isfinite(loss)):
                raise NonFiniteLossError(
                    f"training loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}; {self._nan_advice()}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if recipe.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if recipe.schedule_unit == "step":
                self.scheduler.step()
            loss_sum += loss.detach().float() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            batches.postfix(step, lambda: {"loss": float(loss_sum) / seen, "acc": 100.0 * int(correct) / seen})
        if recipe.schedule_unit == "epoch":
            self.scheduler.step()
        return {"train_loss": float(loss_sum) / seen, "train_acc": 100.0 * int(correct) / seen, "lr": lr}

    def _nan_advice(self) -> str:
        advice = f"lower the learning rate (lr={self.recipe.lr / 2:g}) or clip gradients (grad_clip=5)"
        if self.out_dir is None:
            return advice
        return (f"the last checkpoint in '{self.out_dir}' is kept: {advice}, e.g. "
                f"archsearch train --resume {self.out_dir} lr={self.recipe.lr / 2:g}")

    def _check_finite_state(self, epoch: int) -> None:
        """A NaN that reached the weights in an epoch's last step shows in no loss yet: keep it out of the
        checkpoint, or resuming would start from it."""
        for name, tensor in self.net.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise NonFiniteLossError(f"'{name}' holds non-finite values after epoch {epoch + 1}; "
                                         f"{self._nan_advice()}")

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        """(loss, accuracy %) on 'valid' or 'test'."""
        self.net.eval()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in self.eval_loaders[split]:
            with self._autocast():
                logits = logits_of(self.net(self._prepare(x)))
            loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        return loss_sum / seen, 100.0 * correct / seen

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> dict:
        with deterministic(self.deterministic):
            if self.out_dir is None:
                return self._train()
            if self.resume and not self.out_dir.is_dir():
                read_run_config(self.out_dir, "train")  # says what is wrong, in one line
            with lock_run_dir(self.out_dir, create=not self.resume):
                return self._train()

    def _train(self) -> dict:
        self._prepare_dir()
        self._build()
        start_epoch = self._restore() if self.resume else 0
        if self.out_dir is not None and not (self.resume and self.store.exists()):
            self.store.save(self._checkpoint(0))  # epoch 0: a run killed in its first epoch resumes too
        output = EpochOutput("train", self.console, self.out_dir, tensorboard=self.tensorboard,
                             history=self.history)
        try:
            return self._epochs(start_epoch, output)
        finally:
            output.close()

    def _epochs(self, start_epoch: int, output: EpochOutput) -> dict:
        history = self.history
        last_epoch = self.recipe.epochs if self.stop_after is None else min(self.stop_after, self.recipe.epochs)
        for epoch in range(start_epoch, last_epoch):
            tic = time.perf_counter()
            record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            self._check_finite_state(epoch)
            valid_loss, valid_acc = self.evaluate("valid") if "valid" in self.eval_loaders else (math.nan, math.nan)
            record.update(valid_loss=valid_loss, valid_acc=valid_acc, seconds=time.perf_counter() - tic)
            record = {k: record[k] for k in ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr",
                                             "seconds")}
            history.append(record)
            if self.out_dir is not None:
                # the line first: a kill before the checkpoint leaves a line the resume drops again
                append_jsonl(self.out_dir / METRICS, record)
                self.store.save(self._checkpoint(epoch + 1))
            output.epoch(history, self.recipe.epochs)  # the console's line, metrics.csv, TensorBoard
        if last_epoch < self.recipe.epochs:
            return {"completed": False, "epochs_done": last_epoch, "history": history}
        test_loss, test_acc = self.evaluate("test")
        final = history[-1] if history else {}
        result = {
            "space": self.space.name,
            "genotype": self.space.to_string(self.genotype),
            "dataset": self.dataset_name,
            "test_accuracy": test_acc,
            "test_loss": test_loss,
            "valid_accuracy": final.get("valid_acc", math.nan),
            "params": self.params,
            "flops": self.flops,
            "epochs": self.recipe.epochs,
            "seed": self.seed,
            "train_seconds": sum(r["seconds"] for r in history),
        }
        if self.out_dir is not None:
            write_json_atomic(self.out_dir / RESULT, result)
        # short aliases read by the train-from-scratch evaluator
        return {**result, "completed": True, "history": history, "valid_acc": result["valid_accuracy"],
                "test_acc": test_acc}


def train(genotype, space, dataset, recipe: Recipe | str | None = None, out_dir=None, seed: int = 0,
          device=None, quiet: bool = False, resume: bool = False, deterministic: bool = False,
          **options) -> dict:
    """Train ``genotype`` of ``space`` on ``dataset`` (a name or a loaded dataset) from scratch.

    ``recipe`` is a Recipe, a registered name, or None for the space's default. ``options``:
    ``data_dir``, ``limit_train``, ``limit_test`` (passed to ``load_dataset``), ``stop_after``
    (stop once that many epochs are done, as if interrupted: ``resume=True`` continues the run), and
    ``console`` / ``tensorboard`` (what the run shows, utils/progress.py; TensorBoard, None: where installed).
    Returns result.json's fields plus ``history`` (the metrics lines) and ``completed``.
    """
    return Trainer(genotype, space, dataset, recipe, out_dir, seed=seed, device=device, quiet=quiet,
                   resume=resume, deterministic=deterministic, **options).run()


def _flat(config: dict) -> dict:
    """A training run's config.yaml with the recipe's fields at the top: the names a resume changes."""
    return {**{k: v for k, v in config.items() if k != "recipe"}, **config.get("recipe", {})}


def resume_train(out_dir: str | os.PathLike, changes: dict | None = None, *, device=None,
                 quiet: bool = False, console: Console | None = None, tensorboard: bool | None = None) -> dict:
    """Continue the training run in ``out_dir`` with ``changes`` ({recipe field or run setting: value};
    those in RESUMABLE, any other raises ConfigError naming it)."""
    read_run_config(out_dir, "train")  # what is wrong with the directory, if anything, before locking it
    with lock_run_dir(out_dir, create=False):  # before loading data: a second writer learns at once
        return _resume_train(out_dir, changes, device, quiet, {"console": console, "tensorboard": tensorboard})


def _resume_train(out_dir, changes: dict | None, device, quiet: bool, watch: dict) -> dict:
    saved = read_run_config(out_dir, "train")
    changes = dict(changes or {})
    if "genotype" in changes:  # the same architecture, however it is written, is no change
        from archsearch.spaces import get_space

        space = get_space(changes.get("space", saved.get("space")))
        changes["genotype"] = space.to_string(space.from_string(changes["genotype"]))
    fields = {f: changes.pop(f) for f in list(changes) if f in Recipe.__dataclass_fields__}
    try:
        recipe = Recipe(**saved["recipe"])
    except TypeError as err:
        raise RunDirectoryError(f"cannot resume '{out_dir}': its config.yaml holds no recipe this archsearch "
                                f"reads ({one_line(err)})") from None
    recipe = recipe.replace(**fields) if fields else recipe
    run = {k: saved.get(k) for k in ("space", "genotype", "dataset", "data_dir", "limit_train", "limit_test", "seed",
                                     "deterministic")}
    unknown = [k for k in changes if k not in run]
    if unknown:
        raise ConfigError(f"unknown setting '{unknown[0]}' (recipe fields: {', '.join(Recipe.__dataclass_fields__)}; "
                          f"run settings: {', '.join(run)})")
    refuse_changes(_flat(saved), _flat({**run, **changes, "recipe": recipe.as_dict()}), RESUMABLE, out_dir)
    run.update(changes)
    return Trainer(run["genotype"], run["space"], run["dataset"], recipe, out_dir, seed=run["seed"], device=device,
                   quiet=quiet, resume=True, deterministic=bool(run["deterministic"]), data_dir=run["data_dir"],
                   limit_train=run["limit_train"], limit_test=run["limit_test"], **watch).run()
