"""Choosing where tensors live. Nothing here runs at import time."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` means CUDA, then Apple MPS, then CPU; anything else is passed to torch."""
    if str(device) != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {device!r} asked for, but CUDA is not available here; "
                "use device='auto' or 'cpu'."
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """A one-line description, e.g. ``cuda (NVIDIA H100, 80 GiB)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"cuda ({p.name}, {p.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
