"""Training in two stages with one function.

``stage="amplitude"``: MaskNet and both VQ-VAE branches learn to compress amplitude maps; the
mask is computed from the map itself.

``stage="phase"``: the amplitude stage's MaskNet is loaded and frozen (no gradient, eval mode);
it still looks at the *amplitude* map, and its mask is applied to the *phase* map; both branches
are trained anew for phase.

Loss: ``1 - SSIM(x, x_hat)`` (11x11 box window by default, as the reference) plus both branches'
VQ losses, plus a penalty on values outside [0, 1] that the reference does not have: without it
SSIM can be maximised by a negated map (see :func:`stage_loss`). Adam with amsgrad, one
learning rate per part, ReduceLROnPlateau on validation loss.
A checkpoint is written atomically after every epoch, so an interrupted run loses at most the
epoch it was in; ``resume=True`` continues exactly where that checkpoint left off (shuffling is
seeded per epoch, and the model has no other randomness). After the last epoch the entropy
prior (index frequencies on the training split) is fitted and stored in the checkpoint.

Several processes: the same call under ``torchrun --nproc_per_node=N`` (one or more machines)
trains with DistributedDataParallel (:mod:`mmslim.training.distributed`). ``batch_size`` is the
global batch: each of the N ranks takes ``batch_size / N`` frames of it (a ``DistributedSampler``
seeded per epoch; one process uses the same sampler, so one process and N ranks see the same
global batches), DDP averages the gradients, metrics are reduced across ranks, codebooks and
BatchNorm statistics stay identical on every rank, and rank 0 alone reads and writes files.
On CUDA: bf16 autocast, ``cudnn.benchmark`` and pinned host memory (:mod:`~mmslim.training.device`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler

from mmslim.codec.maps import encode_maps, fit_prior
from mmslim.config import STAGES, ModelConfig, TrainConfig
from mmslim.data.dataset import FrameSet, RadarFrames, load_frames, split_subjects
from mmslim.files import write_csv
from mmslim.nn import MMSlim
from mmslim.nn.losses import LossContext, stage_loss
from mmslim.training import distributed
from mmslim.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mmslim.training.device import peak_memory_gib, pin_memory, prepare_device, resolve_device
from mmslim.training.distributed import Ranks
from mmslim.training.evaluate import evaluate
from mmslim.tutorial.progress import progress_bar


@dataclass
class TrainResult:
    model: MMSlim  # trained model, eval mode, on the training device
    checkpoint: Path  # the last checkpoint written
    history: list[dict]  # one dict of floats per epoch


def checkpoint_path(out_dir: str | Path, stage: str) -> Path:
    return Path(out_dir) / f"{stage}.pt"


def train(
    stage: str,
    data: str | Path | FrameSet,
    out_dir: str | Path,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    amplitude_checkpoint: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = True,
    init: str | Path | None = None,
) -> TrainResult:
    """Train one stage and write ``out_dir/{stage}.pt`` and ``out_dir/history_{stage}.csv``.

    data: a data folder, an ``.npz`` bundle or a FrameSet (split by subject inside).
    model_config: ignored for ``phase`` beyond a consistency check: the amplitude checkpoint's
        config is used, because MaskNet comes from it.
    resume: continue from ``out_dir/{stage}.pt``; without it an existing checkpoint is refused
        unless ``overwrite``.
    device: ``"auto"`` (CUDA, MPS, CPU), ``"cpu"``, ``"cuda"``...; under ``torchrun`` with a GPU
        per process, ``"auto"``/``"cuda"`` mean the process's own GPU (``LOCAL_RANK``).
    init: fine-tune: start from the weights (codebooks and their state included) of this
        checkpoint of the same stage and model config, with a fresh optimiser and history; the
        recipe (``train_config``) is the new run's. Used to derive operating points at other
        rate weights from one trained model. (``resume`` continues a run; ``init`` starts one.)

    Under ``torchrun`` every rank calls this and gets the same model; ``batch_size`` is the
    global batch, a multiple of the number of processes.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    tcfg = train_config or TrainConfig.preset("cpu-small")
    with distributed.session(resolve_device(device)) as ranks:
        return _train(
            stage,
            data,
            out_dir,
            model_config,
            tcfg,
            amplitude_checkpoint,
            resume,
            overwrite,
            ranks,
            progress and ranks.is_main,
            init,
        )


def _train(
    stage,
    data,
    out_dir,
    model_config,
    tcfg,
    amplitude_checkpoint,
    resume,
    overwrite,
    ranks: Ranks,
    progress: bool,
    init=None,
) -> TrainResult:
    """The body of :func:`train`, run by every rank of ``ranks`` (or by the one process)."""
    dev = ranks.device
    prepare_device(dev)
    rank_batch = rank_batch_size(tcfg.batch_size, ranks.world_size)  # frames per rank and step
    ckpt_file = checkpoint_path(out_dir, stage)
    # Rank 0 reads (and refuses) for all: only its machine needs the files.
    previous = distributed.run_on_main(_previous_run, ckpt_file, stage, resume, overwrite)

    frames = data if isinstance(data, FrameSet) else load_frames(data)
    train_subjects, val_subjects = split_subjects(frames.subjects(), tcfg.val_fraction, tcfg.seed)
    train_set = RadarFrames(frames, train_subjects)
    val_set = RadarFrames(frames, val_subjects)

    torch.manual_seed(tcfg.seed)
    amp_state = None
    if stage == "phase":
        amp_state = distributed.run_on_main(_amplitude_state, amplitude_checkpoint, model_config)
        model_config = ModelConfig.from_dict(amp_state["model_config"]).without_sender_rules()
    mcfg = model_config or ModelConfig.preset("cpu-small")
    model = MMSlim(mcfg)
    if amp_state is not None:
        model.mask_net.load_state_dict(_mask_net_weights(amp_state["model"]))
        model.mask_net.requires_grad_(False)
    model.to(dev)

    optimizer = torch.optim.Adam(param_groups(model, tcfg, stage), amsgrad=tcfg.amsgrad)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=tcfg.plateau_factor, patience=tcfg.plateau_patience
    )

    history: list[dict] = []
    start_epoch = 1
    split = {"train": train_subjects, "val": val_subjects}
    if previous is not None:
        if not mcfg.same_as(previous["model_config"]):
            raise CheckpointError(
                f"{ckpt_file} was trained with another model config; resume with the same "
                "--preset, or choose another --out."
            )
        if "optimizer" not in previous:
            raise CheckpointError(
                f"{ckpt_file} holds no optimiser state (a checkpoint slimmed for shipping), so "
                "it cannot be resumed; fine-tune from it with --init into another --out."
            )
        model.load_state_dict(previous["model"])
        optimizer.load_state_dict(previous["optimizer"])
        scheduler.load_state_dict(previous["scheduler"])
        history = list(previous["history"])
        start_epoch = previous["epoch"] + 1
    elif init is not None:
        start = distributed.run_on_main(load_checkpoint, init, stage)
        try:  # any config whose weights have the same shapes (e.g. another mask mode)
            model.load_state_dict(start["model"])
        except RuntimeError as err:
            raise CheckpointError(
                f"--init {init}: its weights do not fit this model config ({err}); fine-tune "
                "it with the --preset it was trained with."
            ) from None
        if amp_state is not None:  # phase: MaskNet stays the given amplitude stage's
            model.mask_net.load_state_dict(_mask_net_weights(amp_state["model"]))
    # Several processes: global-batch BatchNorm, and DDP averages the gradients. A fixed or
    # absent mask leaves MaskNet without gradients.
    net = distributed.wrap(model, find_unused_parameters=mcfg.mask not in ("learned", "hard"))

    use_amp = tcfg.amp and dev.type == "cuda"
    sampler = DistributedSampler(
        train_set, ranks.world_size, ranks.rank, shuffle=True, seed=tcfg.seed * 100_003
    )
    loader = DataLoader(
        train_set,
        rank_batch,
        sampler=sampler,
        num_workers=tcfg.num_workers,
        pin_memory=pin_memory(dev),
        persistent_workers=tcfg.num_workers > 0,
    )
    writer = _tensorboard(out_dir, stage) if tcfg.tensorboard and ranks.is_main else None
    epochs = range(start_epoch, tcfg.epochs + 1)
    bar = progress_bar(epochs, desc=f"train {stage}", disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        if stage == "phase":
            model.mask_net.eval()  # frozen: BatchNorm keeps its amplitude-stage statistics
        sampler.set_epoch(epoch)  # this epoch's shuffle, the same on every rank
        loss_sum, n = torch.zeros((), dtype=torch.float64, device=dev), 0  # over this rank
        for batch in loader:
            x, src, context = _inputs(batch, stage, dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                out = net(
                    x,
                    mask_source=src,
                    estimate_rate=tcfg.rate_weight > 0,
                    lost_share=tcfg.lost_share,
                )
            loss = stage_loss(x, out, tcfg, context)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * len(x)  # on the device: no sync per step
            n += len(x)
        total = torch.stack([loss_sum, loss_sum.new_tensor(n)])  # (loss x frames, frames)
        distributed.all_reduce_sum_(total)  # every rank's frames
        seconds = time.perf_counter() - t0
        loss_sum, n = total.tolist()
        row = {"epoch": epoch, "train_loss": loss_sum / n, "seconds": seconds}
        row["samples_per_s"] = n / seconds  # all ranks together
        if dev.type == "cuda":
            row["gpu_mem_gib"] = peak_memory_gib(dev)  # this rank's peak
        if epoch % tcfg.val_every == 0 or epoch == tcfg.epochs:
            metrics = evaluate(model, val_set, stage, tcfg, tcfg.batch_size)
            scheduler.step(metrics["loss"])  # the same loss, hence the same lr, on every rank
            row.update({f"val_{k}": v for k, v in metrics.items()})
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_ssim=f"{metrics['ssim']:.3f}")
        else:
            bar.set_postfix(loss=f"{row['train_loss']:.4f}")
        row.update({f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups})
        history.append(row)
        if ranks.is_main:
            if writer is not None:
                for k, v in row.items():
                    writer.add_scalar(f"{stage}/{k}", v, epoch)
            _save(ckpt_file, stage, mcfg, tcfg, model, optimizer, scheduler, history, split)
            write_csv(history, Path(out_dir) / f"history_{stage}.csv")
    if writer is not None:
        writer.close()
    # The entropy coder's prior: index frequencies on the training split, in the model's buffers.
    fit_prior_shared(model, train_set, stage)
    if ranks.is_main:
        _save(ckpt_file, stage, mcfg, tcfg, model, optimizer, scheduler, history, split)
    distributed.barrier()  # on return, every rank can read the final checkpoint
    return TrainResult(distributed.unwrap(model).eval(), ckpt_file, history)


def rank_batch_size(batch_size: int, world_size: int) -> int:
    """Each rank's share of the global batch; refuses a batch the ranks cannot share evenly."""
    if batch_size % world_size:
        raise ValueError(
            f"the global batch of {batch_size} frames cannot be shared evenly by {world_size} "
            f"processes; use --batch-size {max(1, batch_size // world_size) * world_size} "
            f"or a number of processes that divides {batch_size}."
        )
    return batch_size // world_size


@torch.no_grad()
def fit_prior_shared(model: MMSlim, dataset: RadarFrames, stage: str) -> None:
    """:func:`~mmslim.codec.maps.fit_prior`, with the frames shared between ranks under
    ``torchrun``: each rank counts the indices of its share, the counts are summed over ranks,
    and every rank stores the same prior (add-one smoothed, as ``IndexPrior.update``)."""
    if not distributed.is_distributed():
        fit_prior(model, dataset, stage)
        return
    k, dev = model.config.num_codes, next(model.parameters()).device
    counts = torch.zeros(2, k, dtype=torch.int64)  # (2, K): hi, lo
    mine = torch.as_tensor(list(distributed.shard(len(dataset))), dtype=torch.int64)
    if len(mine):
        maps, amps = dataset.tensors(stage)[0][mine], dataset.tensors("amplitude")[0][mine]
        hi, lo = encode_maps(model, maps, amps)  # (n, H/4, W/4), (n, H/16, W/16) int64 numpy
        for row, indices in zip(counts, (hi, lo)):
            row += torch.bincount(torch.from_numpy(indices).reshape(-1), minlength=k)
    counts = counts.to(dev)
    distributed.all_reduce_sum_(counts)
    model.prior.set_counts(counts[0].cpu() + 1, counts[1].cpu() + 1)


def param_groups(model: MMSlim, tcfg: TrainConfig, stage: str) -> list[dict]:
    """One optimiser group per part: each branch's network, each branch's codebook (its
    learning rate scaled by ``lr_codebook_scale``), and MaskNet in the amplitude stage only."""
    groups = []
    for name, branch, lr in (("hi", model.hi, tcfg.lr_hi), ("lo", model.lo, tcfg.lr_lo)):
        codebook = list(branch.quantizer.parameters())
        ids = {id(p) for p in codebook}
        network = [p for p in branch.parameters() if id(p) not in ids]
        groups.append({"params": network, "lr": lr, "name": name})
        if codebook:
            groups.append(
                {"params": codebook, "lr": lr * tcfg.lr_codebook_scale, "name": f"{name}_codes"}
            )
    if stage == "amplitude":
        groups.append({"params": model.mask_net.parameters(), "lr": tcfg.lr_mask, "name": "mask"})
    return groups


def _save(path, stage, mcfg, tcfg, model, optimizer, scheduler, history, split) -> None:
    """Write everything a resumed run or a user of the model needs (atomically)."""
    save_checkpoint(
        {
            "stage": stage,
            "model_config": mcfg.to_dict(),
            "train_config": tcfg.to_dict(),
            "model": model.state_dict(),  # the entropy prior's buffers included
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": history[-1]["epoch"] if history else 0,
            "history": history,
            "split": split,
        },
        path,
    )


def _inputs(batch: dict, stage: str, dev: torch.device):
    """(map to compress, map the mask is computed from), each (B, 1, H, W) on ``dev`` (copied
    asynchronously from pinned memory on CUDA), and the :class:`~mmslim.nn.losses.LossContext`
    the radar objective needs."""
    amp = batch["amplitude"].to(dev, non_blocking=True)
    x = amp if stage == "amplitude" else batch["phase"].to(dev, non_blocking=True)
    amp_range = batch["amp_range"].to(dev, non_blocking=True)
    x_range = amp_range if stage == "amplitude" else batch["phase_range"].to(dev, non_blocking=True)
    return x, amp, LossContext(amp, amp_range, x_range, stage)


def _previous_run(ckpt_file: Path, stage: str, resume: bool, overwrite: bool) -> dict | None:
    if resume and ckpt_file.exists():
        return load_checkpoint(ckpt_file, stage)
    if ckpt_file.exists() and not overwrite:
        raise CheckpointError(
            f"{ckpt_file} already exists. Pass --resume to continue that run, or choose another "
            "--out (overwrite=True in Python) to start over."
        )
    return None


def _amplitude_state(path: str | Path | None, model_config: ModelConfig | None) -> dict:
    if path is None:
        raise CheckpointError(
            "the phase stage needs the amplitude stage's MaskNet. Run "
            "`mmslim train --stage amplitude --data DATA --out DIR` first, then pass "
            "--amplitude-checkpoint DIR/amplitude.pt."
        )
    state = load_checkpoint(path, stage="amplitude")
    trained = ModelConfig.from_dict(state["model_config"]).without_sender_rules()
    if model_config is not None and not model_config.without_sender_rules().same_as(
        trained.to_dict()
    ):
        raise CheckpointError(
            f"{path} was trained with model config {state['model_config']}, which does not "
            f"match the one asked for ({model_config.to_dict()}). Use the same --preset as the "
            "amplitude run, or train amplitude again with this one."
        )
    return state


def _mask_net_weights(model_state: dict) -> dict:
    prefix = "mask_net."
    return {k[len(prefix) :]: v for k, v in model_state.items() if k.startswith(prefix)}


def _tensorboard(out_dir, stage):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise RuntimeError("tensorboard=True needs `pip install tensorboard`.") from err
    return SummaryWriter(Path(out_dir) / "tensorboard" / stage)
