"""The search loop's checkpoint and resume (``DifferentiableSearch`` inherits them): what a checkpoint holds,
loading one, and making settings changed on resume take effect (docs/reliability.md)."""

from __future__ import annotations

import contextlib

from archsearch.errors import CheckpointError, ConfigError
from archsearch.runtime import rng_states, set_rng_states
from archsearch.search.config import A_GROUP_KEYS, RESUMABLE, W_GROUP_KEYS
from archsearch.utils.checkpoint import one_line, require_checkpoint_for
from archsearch.utils.io import rewrite_jsonl
from archsearch.utils.resume import check_fits, replan_cosine, set_hyperparameters
from archsearch.utils.rundir import lock_run_dir


class Checkpointed:
    """state_dict / load_state_dict / save_checkpoint / resume of the search (mixed into the loop)."""

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "a_optimizer": self.a_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "relaxation": self.relaxation.state_dict(),
            "hooks": [hook.state_dict() for hook in self.hooks],
            "stop_reason": self.stop_reason,
            "config": self.config.to_dict(),  # whose checkpoint this is, and with which settings
            "history": list(self.history),  # what metrics.jsonl holds at this checkpoint
            "rng": rng_states(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.model.load_state_dict(state["model"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.relaxation.load_state_dict(state["relaxation"])
        for hook, hook_state in zip(self.hooks, state.get("hooks", [])):
            hook.load_state_dict(hook_state)
        self.stop_reason = state.get("stop_reason")
        self.history = list(state["history"])
        set_rng_states(state["rng"])

    def save_checkpoint(self) -> None:
        if self.out_dir is not None and self.is_main:
            self.store.save(self.state_dict())

    def resume(self) -> None:
        """Continue from the newest good checkpoint in ``out_dir`` (the one before it, with a warning, where
        the newest is damaged), or from the beginning where the run died before its first checkpoint.
        metrics.jsonl becomes what the checkpoint saw. Settings in RESUMABLE may differ from the
        checkpoint's and take effect from here on; any other difference means another run's checkpoint."""
        with lock_run_dir(self.out_dir) if self.is_main else contextlib.nullcontext():
            state, path = self.store.load(self.device)
            if state is None:
                require_checkpoint_for(self.out_dir / "metrics.jsonl")
            else:
                changed = set(check_fits(state.get("config"), self.config.to_dict(), RESUMABLE, path))
                try:
                    self.load_state_dict(state)
                except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as err:
                    reason = f"it holds no {err}" if isinstance(err, KeyError) else one_line(err)
                    raise CheckpointError(f"checkpoint '{path}' does not fit this run: {reason}") from None
                self._apply_changes(state["config"], changed)
            self._resumed = True
            if self.is_main:
                rewrite_jsonl(self.out_dir / "metrics.jsonl", self.history)

    def _apply_changes(self, saved: dict, changed: set[str]) -> None:
        """Make settings that differ from the checkpoint's take effect (a loaded optimizer or scheduler
        state brings back the old values)."""
        c = self.config
        if "epochs" in changed:
            if c.epochs < self.epoch:
                raise ConfigError(f"cannot lower epochs to {c.epochs}: the run has done {self.epoch}")
            if self.a_optimizer.plans_rounds:
                raise ConfigError(f"cannot change 'epochs' when resuming: the '{c.arch_optimizer}' architecture "
                                  "optimizer planned its step sizes over the old number; start a new run")
        if changed & {"epochs", "w_lr", "w_lr_min"}:
            replan_cosine(self.scheduler, total=c.epochs, lr=c.w_lr, lr_min=c.w_lr_min)
        for optimizer, keys, what in ((self.w_optimizer, W_GROUP_KEYS, "weight optimizer"),
                                      (self.a_optimizer, A_GROUP_KEYS, "architecture optimizer")):
            set_hyperparameters(optimizer, {k: (g, saved[k], getattr(c, k)) for k, g in keys.items() if k in changed},
                                what)
