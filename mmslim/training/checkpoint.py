"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, saved with
``torch.save`` and read back with ``torch.load(..., weights_only=True)``:

    format:        "mmslim-checkpoint" (tells ours from any other .pt file)
    version:       mmslim version that wrote it
    stage:         "amplitude" or "phase"
    model_config:  ModelConfig as a dict
    train_config:  TrainConfig as a dict
    model:         state_dict of MMSlim
    optimizer, scheduler: their state_dicts (to resume)
    epoch:         last finished epoch (1-based)
    history:       list of per-epoch dicts of floats
    (the entropy prior is in ``model``, as the buffers ``prior.counts_hi/lo`` and ``prior.fitted``)
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from mmslim.files import atomic_write

FORMAT = "mmslim-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged, foreign or of the wrong kind; says what to do."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then rename.

    A run killed while saving leaves the previous checkpoint intact.
    """
    from mmslim import __version__

    state = {"format": FORMAT, "version": __version__, **state}
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, stage: str | None = None) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``); optionally require its ``stage``."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder; pass the checkpoint file in it (e.g. {path}/amplitude.pt)."
        )
    if not path.is_file():
        hint = "train one with `mmslim train --stage amplitude --data DATA --out DIR`"
        if stage == "phase":
            hint = "train one with `mmslim train --stage phase ... --amplitude-checkpoint FILE`"
        raise CheckpointError(f"no checkpoint at {path}; {hint}.")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path} is empty (0 bytes): an interrupted copy or a failed download. Copy it again "
            "or train again."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # not a pickle of allowed types at all
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint, or a damaged one; re-copy it or train again."
            ) from None
        raise CheckpointError(
            f"{path} holds pickled Python objects besides tensors, which mmslim refuses to load "
            "(unpickling can run arbitrary code). Use a checkpoint written by `mmslim train`."
        ) from None
    except Exception as err:
        detail = " ".join(str(err).split())[:120] or "no details"
        raise CheckpointError(
            f"{path} could not be read as a checkpoint ({type(err).__name__}: {detail}). It may "
            "be truncated by an interrupted copy or not a PyTorch file; re-copy it or train again."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not an mmslim checkpoint (no format tag). "
            "Use a file written by `mmslim train`."
        )
    if stage is not None and state.get("stage") != stage:
        raise CheckpointError(
            f"{path} is a {state.get('stage')!r}-stage checkpoint; a {stage!r} one is needed."
        )
    return state


def slim_checkpoint(path: str | Path, out: str | Path) -> Path:
    """Write ``path`` to ``out`` without the optimiser and scheduler state: what a user of the
    model needs (weights, prior, configs, history, split), a third of the size; such a
    checkpoint can start a fine-tuning run (``mmslim train --init``) but not ``--resume``."""
    state = load_checkpoint(path)
    drop = ("optimizer", "scheduler", "format", "version")  # save_checkpoint writes the last two
    return save_checkpoint({k: v for k, v in state.items() if k not in drop}, out)


def load_model(path: str | Path, stage: str | None = None, device: str | torch.device = "cpu"):
    """The trained :class:`~mmslim.nn.MMSlim` of a checkpoint, in eval mode, and the state dict.

    Returns ``(model, state)``. The entropy prior is part of the model's ``state_dict``
    (``prior.*`` buffers); checkpoints written before that keep it under ``"prior"`` and are
    read too.
    """
    from mmslim.config import ModelConfig
    from mmslim.nn import MMSlim

    state = load_checkpoint(path, stage)
    try:
        model = MMSlim(ModelConfig.from_dict(dict(state["model_config"])))
        weights = dict(state["model"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path} is an mmslim checkpoint without a usable model ({type(err).__name__}: "
            f"{err}); use a checkpoint written by `mmslim train`."
        ) from None
    legacy = state.get("prior")
    if legacy is not None and "prior.counts_hi" not in weights:  # written before format 2
        weights["prior.counts_hi"] = legacy["counts_hi"]
        weights["prior.counts_lo"] = legacy["counts_lo"]
        weights["prior.fitted"] = torch.tensor(True)
    elif "prior.counts_hi" not in weights:
        weights.update({f"prior.{k}": v for k, v in model.prior.state_dict().items()})
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: weights do not fit the model its config describes ({err})."
        ) from None
    return model.to(device).eval(), state
