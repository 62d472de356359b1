"""TensorBoard logs of a run, in ``<run dir>/tensorboard/`` (``tensorboard --logdir runs``).

Optional: ``resolve_tensorboard(None)`` turns logging on where the ``tensorboard`` package is installed
(``pip install 'archsearch[tensorboard]'``), ``False`` turns it off, and ``True`` insists, with one clear
error where it is missing. The step of every value is the epoch (1-based); a resumed run opens the log
with ``purge_step`` at its next epoch, so that epochs a killed run logged past its checkpoint are dropped
rather than shown twice.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from archsearch.errors import ConfigError, shown
from archsearch.utils.scalars import flat_scalars, numeric

TENSORBOARD_DIR = "tensorboard"


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def resolve_tensorboard(wanted: bool | None) -> bool:
    """Whether to log: ``None`` where the package is installed, ``True`` (an error where it is not), ``False``."""
    if wanted is not None and not isinstance(wanted, bool):
        raise ConfigError(f"tensorboard takes true, false or None (where installed), got {shown(wanted)}")
    if wanted is None:
        return tensorboard_installed()
    if wanted and not tensorboard_installed():
        raise ConfigError("TensorBoard logging was asked for but the 'tensorboard' package is not installed: "
                          "pip install 'archsearch[tensorboard]', or run without it (--no-tensorboard)")
    return wanted


class TensorBoardLog:
    """A SummaryWriter on ``<run dir>/tensorboard`` whose steps are epochs; ``next_epoch`` is the first
    epoch this process logs (later steps a previous process logged are purged)."""

    def __init__(self, run_dir: str | os.PathLike, next_epoch: int = 1):
        log_dir = str(Path(run_dir) / TENSORBOARD_DIR)
        try:  # the event writer encodes its path as UTF-8; a name of other bytes reaches Python as surrogates
            log_dir.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"TensorBoard cannot log under {shown(str(run_dir))}: the name is not valid UTF-8 "
                              "(rename the directory, or run without TensorBoard: --no-tensorboard)") from None
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir, purge_step=next_epoch)

    def scalars(self, group: str, record: dict) -> None:
        """Every plottable scalar of ``record``: ``<group>/<column>``, NAS-Bench-201 accuracies under
        ``ground_truth/``; the step is ``record["epoch"]``."""
        step = record["epoch"]
        truth = set(flat_scalars({"ground_truth": record["ground_truth"]})) if "ground_truth" in record else set()
        for name, value in flat_scalars(record).items():
            if name != "epoch" and numeric(value):
                self.writer.add_scalar(f"{'ground_truth' if name in truth else group}/{name}", value, step)

    def histograms(self, tag: str, values: dict, step: int) -> None:
        """One histogram per entry of ``values`` ({name: tensor}): ``<tag>/<name>``."""
        for name, tensor in values.items():
            self.writer.add_histogram(f"{tag}/{name}", tensor.detach().float().cpu(), step)

    def image(self, tag: str, array, step: int) -> None:
        """An image array (height, width, channels)."""
        self.writer.add_image(tag, array, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
