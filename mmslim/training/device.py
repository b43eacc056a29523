"""Choosing where tensors live, and the settings that make a GPU fast. Nothing here runs at
import time.

``resolve_device("auto")`` picks CUDA, then Apple MPS, then the CPU. On CUDA, training uses bf16
autocast (``TrainConfig.amp``; bf16 has float32's range, so no loss scaling is needed),
``torch.backends.cudnn.benchmark`` (the frames have one fixed shape, so cuDNN's search for the
fastest convolution algorithms runs once per batch shape and pays for itself), and page-locked
("pinned") host memory for batches, so that copies to the GPU can overlap computation.
"""

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


def prepare_device(device: torch.device) -> None:
    """Process-wide settings for training on ``device``: on CUDA, ``cudnn.benchmark`` (fixed
    frame shapes) and this process's current GPU; nothing elsewhere."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        if device.index is not None:
            torch.cuda.set_device(device)


def pin_memory(device: torch.device) -> bool:
    """Whether DataLoaders feeding ``device`` should pin host memory (CUDA only)."""
    return device.type == "cuda"


def peak_memory_gib(device: torch.device) -> float | None:
    """Peak memory allocated by tensors on a CUDA ``device`` since the last reset, in GiB;
    None elsewhere."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def describe_device(device: torch.device) -> str:
    """A one-line description, e.g. ``cuda (NVIDIA H100, 80 GiB)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"cuda ({p.name}, {p.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
