"""Ablations of mmSlim, trained with mmSlim's own recipe and budget.

- ``single-vqvae``: one VQ-VAE, the whole map through the fine branch (M = 1);
- ``single-vqvae-matched``: the same with a codebook big enough to spend mmSlim's fixed-length
  bits (:func:`matched_num_codes`);
- ``fixed-mask``: both branches, MaskNet replaced by M = 0.5.

:mod:`mmslim.bench.rd` measures them beside mmSlim and the classical codecs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mmslim.config import ModelConfig, TrainConfig
from mmslim.data.dataset import FrameSet, load_frames
from mmslim.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def matched_num_codes(num_codes: int = 512) -> int:
    """Codebook size K' of a single VQ-VAE (fine grid only) whose indices cost as many bits at
    fixed length as mmSlim's two grids: ``n_hi log2 K' = (n_hi + n_lo) log2 K``. The coarse
    grid has 1/16 of the fine grid's cells at any frame size, so ``K' = K^(17/16)`` (756 for
    512). A coarser grid cannot match: each halving of the grid quarters the rate."""
    return round(num_codes ** (17 / 16))


def ablation_configs(base: ModelConfig) -> dict[str, ModelConfig]:
    """The ablations of ``base`` (mmSlim's model config), by name."""
    k = matched_num_codes(base.num_codes)
    return {
        "single-vqvae": replace(base, mask="none"),
        "single-vqvae-matched": replace(base, mask="none", num_codes=k),
        "fixed-mask": replace(base, mask="fixed"),
    }


ABLATIONS = tuple(ablation_configs(ModelConfig()))


def train_ablations(
    data,
    out_dir,
    reference=None,
    epochs: int | None = None,
    stages: tuple[str, ...] = ("amplitude",),
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Path]:
    """Train every ablation with mmSlim's recipe and budget into ``out_dir/NAME/{stage}.pt``.

    reference: mmSlim's checkpoint; the ablations copy its model and training configs (same
    sizes, learning rates, epochs and seed, so the same split), changing only the mask (and K).
    Without one: the ``cpu-small`` presets. A finished checkpoint of the same configs is
    skipped, an interrupted one resumed. Finished checkpoints drop the optimizer and scheduler
    state (only needed to resume), which cuts them to about a third. Returns ``{name: folder}``.
    """
    from mmslim.training.fit import train  # training imports the model zoo; keep bench light

    if reference is not None:
        state = load_checkpoint(reference)
        base = ModelConfig.from_dict(state["model_config"])
        tcfg = TrainConfig.from_dict(state["train_config"])
    else:
        base, tcfg = ModelConfig.preset("cpu-small"), TrainConfig.preset("cpu-small")
    if epochs:
        tcfg.epochs = epochs
    frames = data if isinstance(data, FrameSet) else load_frames(data, expected_shape=None)
    folders = {}
    for name, mcfg in ablation_configs(base).items():
        folder = folders[name] = Path(out_dir) / name
        for stage in stages:
            ckpt = folder / f"{stage}.pt"
            if ckpt.exists() and "optimizer" not in (done := load_checkpoint(ckpt)):
                if not (mcfg.same_as(done["model_config"]) and tcfg.same_as(done["train_config"])):
                    raise CheckpointError(f"{ckpt} was trained with other configs; remove it")
                continue  # finished and slimmed
            train(
                stage,
                frames,
                folder,
                model_config=mcfg,
                train_config=tcfg,
                amplitude_checkpoint=folder / "amplitude.pt" if stage == "phase" else None,
                resume=True,
                device=device,
                progress=progress,
            )
            state = load_checkpoint(ckpt)
            slim = {k: v for k, v in state.items() if k not in ("optimizer", "scheduler")}
            save_checkpoint(slim, ckpt)
    return folders


__all__ = ["ABLATIONS", "ablation_configs", "matched_num_codes", "train_ablations"]
