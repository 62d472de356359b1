"""The epoch-hook protocol (what the search loop calls around each epoch) and the registry of
early-stopping rules."""

from __future__ import annotations

from archsearch.registry import Registry


class EpochHook:
    """Watches a search epoch by epoch through a SearchView (search/view.py); every method is optional.

    Early-stopping rules return a reason from ``on_epoch_end``, which stops the search and is recorded
    in the summary (``stopped_early``); schedules set something up in ``on_epoch_start``. A hook's
    memory goes into the checkpoint (``state_dict``), so a resumed run decides as an uninterrupted one.
    """

    def on_epoch_start(self, view) -> None:
        """Before the epoch ``view.epoch`` (0-based) trains."""

    def record(self, view) -> dict:
        """Fields added to the metrics record of the epoch just trained (``view.epoch`` is still its index)."""
        return {}

    def on_epoch_end(self, view, record: dict) -> str | None:
        """After the epoch, with its metrics ``record`` (``view.epoch`` now counts it): a reason to stop, or None."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


EARLY_STOPPING: Registry[type[EpochHook]] = Registry("early-stopping rule")
