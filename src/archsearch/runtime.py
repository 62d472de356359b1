"""Run utilities: the device a run asks for."""

from __future__ import annotations

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
