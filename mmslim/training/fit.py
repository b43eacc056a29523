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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mmslim.codec.maps import fit_prior
from mmslim.config import STAGES, ModelConfig, TrainConfig
from mmslim.data.dataset import FrameSet, RadarFrames, load_frames, split_subjects
from mmslim.files import write_csv
from mmslim.nn import MMSlim
from mmslim.nn.losses import LossContext, stage_loss
from mmslim.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mmslim.training.device import resolve_device
from mmslim.training.evaluate import evaluate


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
) -> TrainResult:
    """Train one stage and write ``out_dir/{stage}.pt`` and ``out_dir/history_{stage}.csv``.

    data: a data folder, an ``.npz`` bundle or a FrameSet (split by subject inside).
    model_config: ignored for ``phase`` beyond a consistency check: the amplitude checkpoint's
        config is used, because MaskNet comes from it.
    resume: continue from ``out_dir/{stage}.pt``; without it an existing checkpoint is refused
        unless ``overwrite``.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    tcfg = train_config or TrainConfig.preset("cpu-small")
    dev = resolve_device(device)
    ckpt_file = checkpoint_path(out_dir, stage)
    previous = _previous_run(ckpt_file, stage, resume, overwrite)

    frames = data if isinstance(data, FrameSet) else load_frames(data)
    train_subjects, val_subjects = split_subjects(frames.subjects(), tcfg.val_fraction, tcfg.seed)
    train_set = RadarFrames(frames, train_subjects)
    val_set = RadarFrames(frames, val_subjects)

    torch.manual_seed(tcfg.seed)
    amp_state = None
    if stage == "phase":
        amp_state = _amplitude_state(amplitude_checkpoint, model_config)
        model_config = ModelConfig.from_dict(amp_state["model_config"])
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
        model.load_state_dict(previous["model"])
        optimizer.load_state_dict(previous["optimizer"])
        scheduler.load_state_dict(previous["scheduler"])
        history = list(previous["history"])
        start_epoch = previous["epoch"] + 1

    use_amp = tcfg.amp and dev.type == "cuda"
    writer = _tensorboard(out_dir, stage) if tcfg.tensorboard else None
    epochs = range(start_epoch, tcfg.epochs + 1)
    bar = tqdm(epochs, desc=f"train {stage}", disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        if stage == "phase":
            model.mask_net.eval()  # frozen: BatchNorm keeps its amplitude-stage statistics
        gen = torch.Generator().manual_seed(tcfg.seed * 100_003 + epoch)
        loader = DataLoader(
            train_set, tcfg.batch_size, shuffle=True, generator=gen, num_workers=tcfg.num_workers
        )
        total, n = 0.0, 0
        for batch in loader:
            x, src, context = _inputs(batch, stage, dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                out = model(x, mask_source=src, estimate_rate=tcfg.rate_weight > 0)
            loss = stage_loss(x, out, tcfg, context)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
            n += len(x)
            bar.set_postfix(loss=f"{total / n:.4f}")
        row = {"epoch": epoch, "train_loss": total / n, "seconds": time.perf_counter() - t0}
        if epoch % tcfg.val_every == 0 or epoch == tcfg.epochs:
            metrics = evaluate(model, val_set, stage, tcfg, tcfg.batch_size)
            scheduler.step(metrics["loss"])
            row.update({f"val_{k}": v for k, v in metrics.items()})
            bar.set_postfix(loss=f"{total / n:.4f}", val_ssim=f"{metrics['ssim']:.3f}")
        row.update({f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups})
        history.append(row)
        if writer is not None:
            for k, v in row.items():
                writer.add_scalar(f"{stage}/{k}", v, epoch)
        _save(ckpt_file, stage, mcfg, tcfg, model, optimizer, scheduler, history, split)
        write_csv(history, Path(out_dir) / f"history_{stage}.csv")
    if writer is not None:
        writer.close()
    # The entropy coder's prior: index frequencies on the training split, in the model's buffers.
    fit_prior(model, train_set, stage)
    _save(ckpt_file, stage, mcfg, tcfg, model, optimizer, scheduler, history, split)
    return TrainResult(model.eval(), ckpt_file, history)


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
    """(map to compress, map the mask is computed from), each (B, 1, H, W) on ``dev``, and the
    :class:`~mmslim.nn.losses.LossContext` the radar objective needs."""
    amp = batch["amplitude"].to(dev)
    x = amp if stage == "amplitude" else batch["phase"].to(dev)
    amp_range = batch["amp_range"].to(dev)
    x_range = amp_range if stage == "amplitude" else batch["phase_range"].to(dev)
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
    if model_config is not None and not model_config.same_as(state["model_config"]):
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
