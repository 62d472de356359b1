"""Where a run computes: the device, checked against what this build of PyTorch and this machine have."""

from __future__ import annotations

import torch

from archsearch.errors import DeviceError


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``None``: CUDA when present, else the CPU. Otherwise the named device, which must exist here."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown device {str(name)!r} (use cpu, cuda or cuda:<index>)") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"device {str(name)!r} is not available: {why}; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(name)!r} is not available: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {str(name)!r} is not available on this machine; use --device cpu")
        return device
    raise DeviceError(f"device {str(name)!r} is not supported (use cpu, cuda or cuda:<index>)")
