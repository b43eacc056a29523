"""The GPU path: ``device="auto"``, bf16 autocast, ``cudnn.benchmark``, pinned memory, and
several ranks on CUDA (NCCL with a GPU each; Gloo with both ranks on one GPU).

What a CPU can check runs everywhere: under bf16 autocast (CPU autocast has bf16 too) the
quantizer still picks the float32 nearest code. The rest is marked ``gpu`` and skipped without
CUDA; CI runs neither ``gpu`` nor ``slow``. Speed and memory figures of the GPU path come from
``mmslim bench ddp --device cuda``, not from tests.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmslim.config import ModelConfig, TrainConfig
from mmslim.data.dataset import RadarFrames, load_frames, save_bundle
from mmslim.nn.quantizers.vq import VectorQuantizer
from mmslim.nn.quantizers.zoo import variant_config
from mmslim.training.checkpoint import load_model
from mmslim.training.device import pin_memory, resolve_device
from mmslim.training.fit import train

TINY = ModelConfig.preset("tiny")
RECIPE = TrainConfig.preset("tiny", epochs=2, batch_size=8, lr_hi=2e-3, lr_lo=2e-3, lr_mask=2e-3)
VARIANT = variant_config(TINY, "vq-ema-kmeans-dead", dead_code_steps=2)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_quantizer_keeps_float32_distances_under_bf16_autocast():
    torch.manual_seed(0)
    q = VectorQuantizer(512, 64).eval()
    q.codebook.weight.data = torch.randn(512, 64)  # (K, D), |e|^2 about 64
    a, b = torch.randint(0, 512, (2, 4, 14, 4))  # (B, h, w) pairs of codes
    # Between two codes, a little nearer to a: squared distances 0.26 apart, about 100 in size,
    # where bf16 keeps steps of 0.5 and float32 of 1e-5.
    z = 0.499 * q.lookup(b) + 0.501 * q.lookup(a)  # (B, D, h, w)
    exact = q.nearest(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(q.nearest(z), exact)
        # What the guard prevents: the same distances in bf16 pick other codes.
        flat = z.permute(0, 2, 3, 1).reshape(-1, 64)
        codes = q.codebook.weight
        lossy = torch.addmm((codes * codes).sum(1), flat, codes.t(), alpha=-2.0).argmin(1)
    assert lossy.dtype == exact.dtype and (lossy != exact.reshape(-1)).any()


@pytest.fixture(scope="module")
def bundle(few_frames, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "frames.npz"
    save_bundle(few_frames(4, 4), path)
    return path


@pytest.mark.gpu
@needs_cuda
def test_auto_trains_on_cuda_with_bf16_and_the_checkpoint_runs_on_cpu(bundle, tmp_path):
    assert resolve_device("auto").type == "cuda" and pin_memory(torch.device("cuda"))
    torch.backends.cudnn.benchmark = False
    result = train("amplitude", bundle, tmp_path, TINY, RECIPE, device="auto", progress=False)
    assert RECIPE.amp and torch.backends.cudnn.benchmark
    assert next(result.model.parameters()).device.type == "cuda"
    for row in result.history:
        assert math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])
        assert row["samples_per_s"] > 0 and row["gpu_mem_gib"] > 0
    # The checkpoint runs on a CPU and codes nearly every position as the GPU does (cuDNN and
    # the CPU round differently, so a latent on the border of two cells may change code).
    model, _ = load_model(result.checkpoint)
    x = RadarFrames(load_frames(bundle)).tensors("amplitude")[0][:8]  # (8, 1, 224, 64)
    with torch.no_grad():
        on_cpu = model.encode(x)
        on_gpu = result.model.encode(x.cuda())
    for key in ("indices_hi", "indices_lo"):
        assert (on_cpu[key] == on_gpu[key].cpu()).float().mean() > 0.95


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cuda_rank(rank: int, backend: str, port: int, bundle: str, out: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    device = "cuda"  # NCCL: train() joins the group, on GPU LOCAL_RANK
    if backend == "gloo":  # both ranks on GPU 0, the group joined here
        dist.init_process_group("gloo")
        device = "cuda:0"
    states = {}
    for name, config in (("plain", TINY), ("variant", VARIANT)):
        result = train("amplitude", bundle, Path(out) / name, config, RECIPE, device=device,
                       progress=False)  # fmt: skip
        states[name] = {k: v.cpu() for k, v in result.model.state_dict().items()}
    if dist.is_initialized():
        dist.destroy_process_group()
    torch.save(states, Path(out) / f"rank{rank}.pt")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("backend", ["nccl", "gloo"])
def test_two_cuda_ranks_keep_identical_weights_and_codebooks(backend, bundle, tmp_path):
    if backend == "nccl" and torch.cuda.device_count() < 2:
        pytest.skip("NCCL needs a GPU per rank")
    mp.spawn(_cuda_rank, args=(backend, _free_port(), str(bundle), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    for run in ("plain", "variant"):
        assert r0[run].keys() == r1[run].keys()
        for k in r0[run]:
            assert torch.equal(r0[run][k], r1[run][k]), f"{run}: {k} differs between ranks"
    assert bool(r0["variant"]["hi.quantizer.initialized"])
