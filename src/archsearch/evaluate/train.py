"""Train a found architecture from scratch and score it on the test set.

``train(genotype, space, dataset, recipe, out_dir)`` writes a run directory:

- ``config.yaml``: the resolved run (space, genotype string, dataset, data_dir, recipe fields, seed);
- ``metrics.jsonl``: one line per epoch (epoch, train_loss, train_acc, valid_loss, valid_acc, lr, seconds);
- ``checkpoint.pt``: written atomically after every epoch (model, optimizer, scheduler, scaler, epoch,
  RNG states, loader state), so ``resume=True`` continues where a killed run stopped;
- ``result.json``: test accuracy (%) and loss, params (without the auxiliary head), FLOPs, epochs.

On CUDA it trains under autocast (bf16 where supported, else fp16 with loss scaling) in channels-last
memory format; on CPU in float32.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.diagnostics.flops import count_flops, count_params
from archsearch.errors import ConfigError, NonFiniteLossError
from archsearch.evaluate.recipes import Recipe, default_recipe, get_recipe
from archsearch.runtime import resolve_device
from archsearch.validation import SEED, check_options, coerce
from archsearch.utils.io import (
    append_jsonl,
    read_jsonl,
    save_torch_atomic,
    truncate_jsonl,
    write_json_atomic,
    write_yaml_atomic,
)

CONFIG, METRICS, CHECKPOINT, RESULT = "config.yaml", "metrics.jsonl", "checkpoint.pt", "result.json"
#: the validation split is drawn with this seed whatever the run's seed, so runs compare on one split
VALID_SPLIT_SEED = 0


# ---- the pieces a run is built from ---------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it, else fp16; None (float32) off CUDA."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    """Cosine from lr to lr_min over the run, stepped per epoch or per batch (see Recipe.schedule_unit)."""
    total = recipe.epochs * (steps_per_epoch if recipe.schedule_unit == "step" else 1)
    if recipe.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=recipe.lr_min)


def _logits(output):
    return output if torch.is_tensor(output) else output[0]


@dataclass
class _Data:
    dataset: Any
    train: Any
    valid: Any | None
    test: Any


def load_data(dataset, data_dir, recipe: Recipe, quiet: bool, limit_train, limit_test) -> _Data:
    from archsearch.data import Subset, load_dataset

    ds = dataset if not isinstance(dataset, str) else load_dataset(
        dataset, data_dir, quiet=quiet, limit_train=limit_train, limit_test=limit_test)
    if recipe.valid_fraction > 0:
        train, valid = ds.split(recipe.valid_fraction, seed=VALID_SPLIT_SEED)
    else:
        train, valid = Subset(ds.train_x, ds.train_y), None
    return _Data(ds, train, valid, ds.test_set())


# ---- the run ------------------------------------------------------------------------------------
class Trainer:
    """One training run; ``run()`` trains (or resumes) to ``recipe.epochs`` and returns the result."""

    def __init__(self, genotype, space, dataset, recipe: Recipe | str | None = None, out_dir=None, *,
                 seed: int = 0, device=None, quiet: bool = False, resume: bool = False,
                 deterministic: bool = False, data_dir=None, limit_train: int | None = None,
                 limit_test: int | None = None, stop_after: int | None = None):
        if isinstance(space, str):
            from archsearch.spaces import get_space

            space = get_space(space)
        self.space = space
        self.genotype = space.parse(genotype)
        self.recipe = default_recipe(space) if recipe is None else get_recipe(recipe)
        check_options(f"the {space.name} network", space.network, self.recipe.network,
                      fixed=("genotype", "num_classes", "in_channels"))
        self.out_dir = Path(out_dir) if out_dir is not None else None
        seed = coerce("seed", int, seed)
        SEED.check("seed", seed)
        self.seed, self.quiet, self.resume, self.deterministic = seed, quiet, resume, deterministic
        self.device = resolve_device(device)
        self.stop_after = stop_after
        if resume and self.out_dir is None:
            raise ConfigError("resume=True needs the out_dir of the run to continue")
        self.data = load_data(dataset, data_dir, self.recipe, quiet, limit_train, limit_test)
        self.dataset_name = dataset if isinstance(dataset, str) else self.data.dataset.name
        self.data_dir = None if data_dir is None else str(data_dir)
        self.limits = {"limit_train": limit_train, "limit_test": limit_test}

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
        has_run = (self.out_dir / CHECKPOINT).exists() or (self.out_dir / METRICS).exists()
        if self.resume:
            if not (self.out_dir / CHECKPOINT).exists():
                raise ConfigError(f"cannot resume: no {CHECKPOINT} in '{self.out_dir}'; start it with resume=False")
            import yaml

            saved = yaml.safe_load((self.out_dir / CONFIG).read_text())
            if saved != self.config():
                changed = sorted(k for k in set(saved) | set(self.config()) if saved.get(k) != self.config().get(k))
                raise ConfigError(
                    f"cannot resume '{self.out_dir}': its config differs in {', '.join(changed)}; "
                    "resume with the same settings or start a new out_dir"
                )
        elif has_run:
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
        self.train_loader = BatchLoader(self.data.train, recipe.batch_size, shuffle=True, augment=augment,
                                        seed=self.seed, **common)
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
                "rng": rng_states(), "loader": self.train_loader.state_dict()}

    def _restore(self) -> int:
        state = torch.load(self.out_dir / CHECKPOINT, map_location=self.device, weights_only=False)
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.train_loader.load_state_dict(state["loader"])
        set_rng_states(state["rng"])
        truncate_jsonl(self.out_dir / METRICS, state["epoch"])
        return int(state["epoch"])

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
        batches = self.train_loader
        if not self.quiet:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=len(self.train_loader), desc=f"epoch {epoch + 1}/{recipe.epochs}",
                           leave=False)
        for step, (x, y) in enumerate(batches):
            with self._autocast():
                output = net(self._prepare(x))
                logits = _logits(output)
                loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)  # L_train(w)
                if not torch.is_tensor(output) and recipe.auxiliary_weight > 0:
                    loss = loss + recipe.auxiliary_weight * F.cross_entropy(
                        output[1], y, label_smoothing=recipe.label_smoothing)  # + w_aux * L_aux(w)
            if not bool(torch.isfinite(loss)):
                raise NonFiniteLossError(
                    f"training loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}; the last checkpoint "
                    "is kept. Lower the learning rate or enable gradient clipping (recipe grad_clip)"
                )
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
        if recipe.schedule_unit == "epoch":
            self.scheduler.step()
        return {"train_loss": float(loss_sum) / seen, "train_acc": 100.0 * int(correct) / seen, "lr": lr}

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        """(loss, accuracy %) on 'valid' or 'test'."""
        self.net.eval()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in self.eval_loaders[split]:
            with self._autocast():
                logits = _logits(self.net(self._prepare(x)))
            loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        return loss_sum / seen, 100.0 * correct / seen

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> dict:
        previous = torch.are_deterministic_algorithms_enabled()
        if self.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        try:
            return self._run()
        finally:
            torch.use_deterministic_algorithms(previous)

    def _run(self) -> dict:
        self._prepare_dir()
        self._build()
        start_epoch = self._restore() if self.resume else 0
        history = read_jsonl(self.out_dir / METRICS) if self.out_dir is not None else []
        last_epoch = self.recipe.epochs if self.stop_after is None else min(self.stop_after, self.recipe.epochs)
        for epoch in range(start_epoch, last_epoch):
            tic = time.perf_counter()
            record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            valid_loss, valid_acc = self.evaluate("valid") if "valid" in self.eval_loaders else (math.nan, math.nan)
            record.update(valid_loss=valid_loss, valid_acc=valid_acc, seconds=time.perf_counter() - tic)
            record = {k: record[k] for k in ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr",
                                             "seconds")}
            history.append(record)
            if self.out_dir is not None:
                save_torch_atomic(self.out_dir / CHECKPOINT, self._checkpoint(epoch + 1))
                append_jsonl(self.out_dir / METRICS, record)
            if not self.quiet:
                print(f"epoch {epoch + 1}/{self.recipe.epochs}  train {record['train_loss']:.4f} "
                      f"{record['train_acc']:.2f}%  valid {valid_loss:.4f} {valid_acc:.2f}%  "
                      f"lr {record['lr']:.5f}  {record['seconds']:.1f}s")
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
    ``data_dir``, ``limit_train``, ``limit_test`` (passed to ``load_dataset``) and ``stop_after``
    (stop once that many epochs are done, as if interrupted: ``resume=True`` continues the run).
    Returns result.json's fields plus ``history`` (the metrics lines) and ``completed``.
    """
    return Trainer(genotype, space, dataset, recipe, out_dir, seed=seed, device=device, quiet=quiet,
                   resume=resume, deterministic=deterministic, **options).run()
