"""Run utilities: the device a run asks for, seeds, the random state of a checkpoint, and deterministic
kernels for the length of a run."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from archsearch.errors import DeviceError


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The device ``name`` names, checked to exist here; None is CUDA where there is one, else the CPU.

    Raises DeviceError for a string torch does not know, or a device this build or machine lacks (``cuda``
    without CUDA, ``cuda:7`` on a machine with fewer GPUs, ``mps`` off Apple silicon), so that a run fails
    at once and in one line, not at its first tensor.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(name, torch.device):
        device = name
    elif isinstance(name, str):
        try:
            device = torch.device(name.strip())
        except (RuntimeError, ValueError, TypeError):
            raise DeviceError(f"unknown device {name!r:.80}; use cpu, cuda, cuda:N or mps") from None
    else:
        raise DeviceError(f"a device is a string such as 'cpu' or 'cuda:0', got {type(name).__name__}")
    if device.type == "cpu":
        return device
    backend = getattr(torch, device.type, None) if device.type != "mps" else getattr(torch.backends, "mps", None)
    available = getattr(backend, "is_available", None)
    if available is None or not available():
        raise DeviceError(f"device '{device}' is not available: this build of PyTorch or this machine has no "
                          f"{device.type.upper()}; use --device cpu")
    count = getattr(backend, "device_count", lambda: 1)()
    if device.index is not None and device.index >= count:
        raise DeviceError(f"device '{device}' does not exist: this machine has {count} {device.type.upper()} "
                          f"device(s), {device.type}:0..{device.type}:{count - 1}")
    return device


# ---- seeds and random state ------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (every device's)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict:
    """The global generators' states, for a checkpoint (``cuda`` only where CUDA is present)."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what ``rng_states`` captured; a CUDA state is skipped on a machine without CUDA."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---- deterministic kernels ---------------------------------------------------------------------------
@contextlib.contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Run the block with torch's deterministic algorithms (and cuDNN's autotuner off), then put back
    what was set before, so that a run leaves the process as it found it. ``enabled=False`` changes
    nothing. cuBLAS needs a fixed workspace to be deterministic; the variable is set only where the
    user has not set it."""
    if not enabled:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.benchmark, os.environ.get(_CUBLAS_WORKSPACE))
    os.environ.setdefault(_CUBLAS_WORKSPACE, ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False  # the autotuner may pick a different kernel on each run
    try:
        yield
    finally:
        algorithms, warn_only, benchmark, workspace = previous
        torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
        if workspace is None:
            os.environ.pop(_CUBLAS_WORKSPACE, None)


_CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"
