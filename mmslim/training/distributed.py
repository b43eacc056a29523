"""Several processes, one model: PyTorch's DistributedDataParallel (DDP) under ``torchrun``.

Nothing here starts processes or opens sockets of its own. ``torchrun`` (``torch.distributed.run``)
starts one process per GPU (or per share of the CPU cores), on one machine or several, and sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`session` joins
the process group they describe (NCCL on GPUs, Gloo on CPUs) and leaves it at the end. Every
collective helper below is a no-op in a single process, so model code calls them unconditionally.

Who does what in :func:`mmslim.training.fit.train`:

- every rank trains on its share of each global batch (``DistributedSampler``, seeded per epoch);
  DDP averages the gradients, so every rank takes the same optimiser step;
- rank 0 alone reads the checkpoint to resume (and the amplitude checkpoint), then sends it to the
  others (:func:`run_on_main`), so only rank 0's machine needs the files; rank 0 alone writes
  checkpoints, the history and TensorBoard logs (atomically);
- metrics are reduced across ranks (:func:`all_reduce_sum_`), so every rank gets the same
  validation loss and ReduceLROnPlateau changes the learning rate on every rank at once.

**BatchNorm: statistics of the global batch (SyncBatchNorm), not per-rank statistics.** In
training, every BatchNorm normalises with the mean and variance of the whole global batch, all
ranks' shares together, so N ranks compute what one process computes with the same global batch
(the tests pin the loss to rounding) and the running statistics are the same on every rank. Why:

1. the recipe keeps its meaning: the paper's batch of 32 is the batch BatchNorm sees on 1 GPU or
   on 8 (4 frames each), and a run can be resumed on another number of GPUs without changing
   what is trained;
2. per-rank statistics measurably change training: with 4 frames per rank (the CI test's
   setting) the tiny model's loss after 9 steps was 4 % away from the one-process run's, and a
   one-process run that normalised each rank's share separately reproduced the per-rank run to
   1e-6, so the gap was BatchNorm alone;
3. the price is small for this model: per BatchNorm layer (9) and step, PyTorch's SyncBatchNorm
   adds one all-gather of 2C+1 numbers in the forward pass and one all-reduce of 2C in the
   backward pass (C <= 128 channels), next to the all-reduce of 1.6 M gradients.

On CUDA the layers are PyTorch's ``torch.nn.SyncBatchNorm``. It has no CPU kernels (it raises
on CPU tensors, and DDP refuses it in a CPU module), so on the CPU (Gloo)
:class:`CpuSyncBatchNorm` computes the same statistics with two all-reduces whose gradients are
summed over ranks too. MaskNet frozen in the phase stage is in eval mode: it normalises with its
stored statistics and never communicates.

**Codebook state** (EMA statistics, k-means initialisation, dead-code replacement) is kept
identical on every rank by the quantizers themselves (:mod:`mmslim.nn.quantizers`), with the
helpers below; DDP's own buffer broadcast is switched off (``forward_sync_buffers=False``) so
that it cannot hide a divergence.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the job (one process: rank 0 of 1)."""

    rank: int = 0  # this process among all (0 writes the files)
    world_size: int = 1  # processes in the job
    local_rank: int = 0  # this process on its machine; its GPU index on CUDA
    device: torch.device = torch.device("cpu")  # where this process trains

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launch_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` as set by ``torchrun``; ``(0, 1, 0)`` without it."""
    try:
        return (
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as err:
        raise RuntimeError(
            f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({err}); launch with torchrun."
        ) from None


def process_device(device: torch.device, local_rank: int, world_size: int) -> torch.device:
    """The device of this process: with several processes, CUDA means GPU ``LOCAL_RANK``."""
    if world_size == 1 or device.type == "cpu":
        return device
    if device.type != "cuda":
        raise RuntimeError(
            f"several processes need CUDA GPUs (NCCL) or the CPU (Gloo), not {device.type!r}; "
            "pass --device cpu."
        )
    if device.index not in (None, local_rank):
        raise RuntimeError(
            f"under torchrun each process uses GPU LOCAL_RANK ({local_rank}), not {device}; "
            "pass --device cuda (or auto) and choose GPUs with CUDA_VISIBLE_DEVICES."
        )
    if local_rank >= torch.cuda.device_count():
        raise RuntimeError(
            f"process LOCAL_RANK={local_rank} has no GPU: this machine has "
            f"{torch.cuda.device_count()}. Use --nproc_per_node={torch.cuda.device_count()}."
        )
    return torch.device("cuda", local_rank)


@contextmanager
def session(device: torch.device) -> Iterator[Ranks]:
    """Join the process group ``torchrun`` describes (if any) for the duration of the block.

    ``device`` is the resolved device kind (:func:`~mmslim.training.device.resolve_device`);
    the yielded :class:`Ranks` carries this process's own device (GPU ``LOCAL_RANK`` on CUDA).
    A caller that initialised the group itself keeps it, and its ``device`` is used as given.
    """
    rank, world, local = launch_env()
    if dist.is_available() and dist.is_initialized():  # the caller manages group and devices
        yield Ranks(dist.get_rank(), dist.get_world_size(), local, device)
        return
    if world == 1:
        yield Ranks(device=device)
        return
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed; train in one process.")
    dev = process_device(device, local, world)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl", device_id=dev)
    else:
        dist.init_process_group("gloo")
    try:
        yield Ranks(rank, world, local, dev)
    finally:
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether this process is one of several in an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def shard(n: int) -> range:
    """This rank's items of ``n`` (every ``world_size``-th, from its rank): all of them alone."""
    return range(rank(), n, world_size())


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum_(*tensors: torch.Tensor) -> None:
    """In place: each tensor becomes its sum over ranks (one collective for tensors of one dtype
    and device). The result is the same bits on every rank."""
    if not is_distributed() or not tensors:
        return
    if len({(t.dtype, t.device) for t in tensors}) > 1:
        for t in tensors:
            all_reduce_sum_(t)
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])  # (sum of numels,)
    dist.all_reduce(flat)
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(part.view_as(t))


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """In place: ``tensor`` becomes rank ``src``'s on every rank; returns it."""
    if is_distributed():
        dist.broadcast(tensor, src)
    return tensor


def total_rows(x: torch.Tensor) -> int:
    """``len(x)`` summed over ranks."""
    n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    all_reduce_sum_(n)
    return int(n)


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` (n_r, ...) concatenated in rank order: (sum n_r, ...). Ranks may hold
    different numbers of rows; alone, ``x`` itself."""
    if not is_distributed():
        return x
    n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    sizes = [torch.empty_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    padded = x.new_zeros((max(sizes), *x.shape[1:]))  # all_gather needs equal shapes
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def run_on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run by rank 0 alone; its result (or its exception) reaches every
    rank. For reading files only rank 0 needs to have, and for decisions every rank must share
    (a refusal raised on one rank only would leave the others waiting)."""
    if not is_distributed():
        return fn(*args, **kwargs)
    payload: list[Any] = [None]
    if rank() == 0:
        try:
            payload = [(True, fn(*args, **kwargs))]
        except Exception as err:  # sent to the other ranks, raised everywhere
            payload = [(False, err)]
    dist.broadcast_object_list(payload, src=0)
    ok, value = payload[0]
    if not ok:
        raise value
    return value


class _SumOverRanks(torch.autograd.Function):
    """Sum of a tensor over ranks; its gradient is the sum of the ranks' gradients, because every
    rank's loss depends on every rank's share of the sum."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d with the global batch's statistics on CPU ranks (Gloo): what
    ``torch.nn.SyncBatchNorm`` does on GPUs, which PyTorch cannot do on the CPU (no kernels, and
    DDP refuses SyncBatchNorm in a CPU module).

    In training with several processes it normalises with the mean from one all-reduce of
    per-channel sums and counts and the (biased) variance from a second one of squared
    deviations from that mean; the running statistics take the unbiased variance, as PyTorch's.
    In eval mode, or in one process, it is a plain ``BatchNorm2d``.

    Shapes: x (B, C, H, W) -> (B, C, H, W).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        self._check_input_dim(x)
        c, shape = x.shape[1], (1, x.shape[1], 1, 1)
        count = x.new_tensor([x.numel() // c])  # positions per channel on this rank
        sums = _SumOverRanks.apply(torch.cat([x.sum((0, 2, 3)), count]))  # (C + 1,) all ranks
        n = sums[c].detach()
        mean = sums[:c] / n  # (C,)
        centred = x - mean.view(shape)  # (B, C, H, W)
        var = _SumOverRanks.apply((centred * centred).sum((0, 2, 3))) / n  # (C,) biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                if m is None:  # cumulative average, as PyTorch's
                    m = 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * n / (n - 1), alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_batchnorm(module: nn.Module, kind: type[nn.modules.batchnorm._BatchNorm]) -> None:
    """In place: every BatchNorm layer of ``module`` becomes a ``kind`` (``nn.SyncBatchNorm``,
    :class:`CpuSyncBatchNorm` or ``nn.BatchNorm2d``). The new layers hold the same parameter and
    buffer tensors, so an optimiser built before still updates them and the ``state_dict`` keeps
    its keys."""
    for parent in list(module.modules()):
        for name, old in list(parent.named_children()):
            if not isinstance(old, nn.modules.batchnorm._BatchNorm) or type(old) is kind:
                continue
            new = kind(old.num_features, old.eps, old.momentum, old.affine, old.track_running_stats)
            if old.affine:
                new.weight, new.bias = old.weight, old.bias
            if old.track_running_stats:
                new.running_mean, new.running_var = old.running_mean, old.running_var
                new.num_batches_tracked = old.num_batches_tracked
            new.train(old.training)
            setattr(parent, name, new)


def wrap(model: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` ready for several processes, or ``model`` itself in one: its BatchNorm layers
    synchronise (in place: ``nn.SyncBatchNorm`` on CUDA, :class:`CpuSyncBatchNorm` on the CPU;
    :func:`unwrap` undoes it), and it is wrapped in
    DistributedDataParallel, which averages the gradients over ranks.

    Buffers are not broadcast from rank 0 at each forward (``forward_sync_buffers=False``): the
    quantizers and the synchronised BatchNorm keep them identical, and a broadcast would hide a
    rank that drifted. ``find_unused_parameters``: set when some parameters get no gradient
    (e.g. a fixed mask leaves MaskNet unused).
    """
    if not is_distributed():
        return model
    dev = next(model.parameters()).device
    convert_batchnorm(model, nn.SyncBatchNorm if dev.type == "cuda" else CpuSyncBatchNorm)
    return nn.parallel.DistributedDataParallel(
        model,
        device_ids=[dev] if dev.type == "cuda" else None,
        forward_sync_buffers=False,
        find_unused_parameters=find_unused_parameters,
    )


def unwrap(model: nn.Module) -> nn.Module:
    """``model`` (the module given to :func:`wrap`) with plain BatchNorm layers again."""
    convert_batchnorm(model, nn.BatchNorm2d)
    return model


__all__ = [
    "Ranks",
    "CpuSyncBatchNorm",
    "all_gather_rows",
    "all_reduce_sum_",
    "barrier",
    "broadcast_",
    "convert_batchnorm",
    "is_distributed",
    "launch_env",
    "process_device",
    "rank",
    "run_on_main",
    "session",
    "shard",
    "total_rows",
    "unwrap",
    "world_size",
    "wrap",
]
