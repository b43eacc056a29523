"""The mask explorer of notebook 08: what MaskNet sends where, and what each branch rebuilds.

The explorer is plain functions, testable without a browser:

- :func:`explorer_state` computes everything shown for one frame and one setting of the
  controls (input, learned mask, the mask actually used, M·x and (1−M)·x, each branch's
  output, the sum, its error, both index grids, a few numbers);
- :func:`draw_explorer` draws such a state on a figure;
- :func:`mask_explorer` wires ipywidgets controls (walker, map kind, frame, threshold, blend)
  to the two.

Threshold and blend change the mask given to the branches: the *hard* mask is 1 where the
learned mask ``M > threshold`` (threshold 0 sends every cell to the fine branch, threshold 1
every cell to the coarse one), and the mask used is ``(1 − blend)·M + blend·hard``, so blend 0
is the trained model as it is and blend 1 the hard split.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from mmslim.config import KINDS
from mmslim.data.dataset import FrameSet, RadarFrames
from mmslim.data.radar import RadarConfig
from mmslim.metrics.image import psnr, ssim
from mmslim.metrics.radar import wrap_phase
from mmslim.viz.codebooks import plot_index_grid
from mmslim.viz.maps import plot_range_doppler, to_physical


def hard_mask(mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """1.0 where ``mask > threshold``, else 0.0; threshold <= 0 gives all ones and >= 1 all
    zeros, whatever the mask's rounding (a sigmoid can round to exactly 0 or 1)."""
    if threshold <= 0:
        return torch.ones_like(mask)
    if threshold >= 1:
        return torch.zeros_like(mask)
    return (mask > threshold).to(mask.dtype)


def blended_mask(mask: torch.Tensor, threshold: float, blend: float) -> torch.Tensor:
    """``(1 - blend) * mask + blend * hard_mask(mask, threshold)``; blend in [0, 1]."""
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend must lie in [0, 1], got {blend}")
    return (1.0 - blend) * mask + blend * hard_mask(mask, threshold)


@torch.no_grad()
def forward_with_mask(model, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's two branches run with a given mask instead of MaskNet's.

    x, mask: (B, 1, H, W). Returns ``x_hat``, ``x_hat_hi``, ``x_hat_lo`` (B, 1, H, W) and
    ``indices_hi`` (B, H/4, W/4), ``indices_lo`` (B, H/16, W/16) int64. Runs in eval mode.
    """
    was_training = model.training
    model.eval()
    out = model(x, mask=mask)
    model.train(was_training)
    keys = ("x_hat", "x_hat_hi", "x_hat_lo", "indices_hi", "indices_lo")
    return {k: out[k] for k in keys}


def subject_frames(dataset: RadarFrames, subject: str) -> np.ndarray:
    """Positions in ``dataset`` of one walker's frames, by sequence then frame number: (n,)."""
    fs = dataset.frames
    pos = np.flatnonzero(fs.subject == subject)
    if len(pos) == 0:
        raise ValueError(f"no frames of subject {subject!r}; subjects: {fs.subjects()}")
    return pos[np.lexsort((fs.frame[pos], fs.sequence[pos]))]


@torch.no_grad()
def explorer_state(
    model,
    dataset: RadarFrames,
    subject: str,
    frame: int,
    kind: str = "amplitude",
    threshold: float = 0.5,
    blend: float = 0.0,
) -> dict:
    """Everything the explorer shows for one frame of one walker.

    model: the trained model of ``kind`` (its MaskNet always looks at the amplitude map).
    frame: position among the walker's frames (see :func:`subject_frames`).

    Returns a dict of (H, W) float arrays -- ``x`` (normalised input), ``x_phys`` (dB or rad),
    ``mask_learned`` (MaskNet's M), ``mask`` (the mask used), ``x_hi_in`` (mask·x),
    ``x_lo_in`` ((1-mask)·x), ``x_hat_hi``, ``x_hat_lo``, ``x_hat`` (normalised), ``x_hat_phys``,
    ``error`` (x_hat_phys - x_phys, wrapped to [-pi, pi) for phase) -- of ``indices_hi``
    (H/4, W/4) and ``indices_lo`` (H/16, W/16) int64, and of scalars ``ssim``, ``psnr`` (of the
    clamped reconstruction, normalised), ``mask_mean``, ``error_rms`` (dB or rad), and the
    arguments and ``num_codes``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    positions = subject_frames(dataset, subject)
    if not 0 <= frame < len(positions):
        raise ValueError(f"frame must lie in [0, {len(positions)}) for {subject}, got {frame}")
    item = dataset[int(positions[frame])]
    dev = next(model.parameters()).device
    x = item[kind][None].to(dev)  # (1, 1, H, W)
    amp = item["amplitude"][None].to(dev)  # (1, 1, H, W), what MaskNet looks at
    was_training = model.training
    model.eval()
    learned = model.mask_net(amp)  # (1, 1, H, W)
    model.train(was_training)
    mask = blended_mask(learned, threshold, blend)
    out = forward_with_mask(model, x, mask)
    x_hat = out["x_hat"].clamp(0, 1)
    value_range = item["amp_range" if kind == "amplitude" else "phase_range"]  # (2,)
    x_phys = to_physical(x[0, 0].cpu(), value_range)
    x_hat_phys = to_physical(x_hat[0, 0].cpu(), value_range)
    error = x_hat_phys - x_phys
    if kind == "phase":
        error = wrap_phase(error)

    def arr(t: torch.Tensor) -> np.ndarray:
        return t[0, 0].float().cpu().numpy()  # (1, 1, H, W) -> (H, W)

    return {
        "kind": kind,
        "subject": subject,
        "frame": frame,
        "index": int(positions[frame]),
        "threshold": float(threshold),
        "blend": float(blend),
        "x": arr(x),
        "x_phys": x_phys,
        "mask_learned": arr(learned),
        "mask": arr(mask),
        "x_hi_in": arr(mask * x),
        "x_lo_in": arr((1 - mask) * x),
        "x_hat_hi": arr(out["x_hat_hi"]),
        "x_hat_lo": arr(out["x_hat_lo"]),
        "x_hat": arr(x_hat),
        "x_hat_phys": x_hat_phys,
        "error": error,
        "indices_hi": out["indices_hi"][0].cpu().numpy(),
        "indices_lo": out["indices_lo"][0].cpu().numpy(),
        "ssim": float(ssim(x, x_hat)),
        "psnr": float(psnr(x, x_hat)),
        "mask_mean": float(mask.mean()),
        "num_codes": int(model.config.num_codes),
        "error_rms": float(np.sqrt(np.mean(error**2))),
    }


def draw_explorer(fig: Figure | None, state: dict, radar: RadarConfig | None = None) -> Figure:
    """Draw an :func:`explorer_state` on ``fig`` (a new 19 x 8 in figure if None): the split on
    the top row, what was rebuilt on the bottom row, index grids on the right."""
    fig = fig if fig is not None else Figure(figsize=(19, 8))
    fig.clear()
    ax = fig.subplots(2, 6)
    phys = "amplitude" if state["kind"] == "amplitude" else "phase"
    err = "error" if state["kind"] == "amplitude" else "phase_error"
    lo, hi = (float(state["x_phys"].min()), float(state["x_phys"].max()))
    lim = (lo, hi) if phys == "amplitude" else (None, None)
    num_codes = state["num_codes"]
    plot_range_doppler(ax[0, 0], state["x_phys"], radar, phys, f"input ({state['kind']})", *lim)
    plot_range_doppler(ax[0, 1], state["mask_learned"], radar, "mask", "learned mask M")
    used = f"mask used (threshold {state['threshold']:.2f}, blend {state['blend']:.2f})"
    plot_range_doppler(ax[0, 2], state["mask"], radar, "mask", used)
    plot_range_doppler(ax[0, 3], state["x_hi_in"], radar, "normalized", "mask·x → fine branch")
    plot_range_doppler(
        ax[0, 4], state["x_lo_in"], radar, "normalized", "(1−mask)·x → coarse branch"
    )
    plot_index_grid(state["indices_hi"], num_codes, radar, ax[0, 5], "fine indices")
    plot_range_doppler(ax[1, 0], state["x_hat_hi"], radar, "normalized", "x̂_hi (fine branch)")
    plot_range_doppler(ax[1, 1], state["x_hat_lo"], radar, "normalized", "x̂_lo (coarse branch)")
    title = f"x̂ (SSIM {state['ssim']:.3f}, PSNR {state['psnr']:.1f} dB)"
    plot_range_doppler(ax[1, 2], state["x_hat_phys"], radar, phys, title, *lim)
    unit = "dB" if phys == "amplitude" else "rad"
    plot_range_doppler(
        ax[1, 3], state["error"], radar, err, f"x̂ − x (rms {state['error_rms']:.2f} {unit})"
    )
    h = ax[1, 4]
    h.hist(state["mask_learned"].ravel(), bins=50, range=(0, 1), color="tab:purple")
    h.axvline(state["threshold"], color="k", ls="--", label="threshold")
    h.set_xlabel("learned mask value M")
    h.set_ylabel("cells")
    h.set_yscale("log")
    h.legend(fontsize=8)
    h.set_title(f"mask used: mean {state['mask_mean']:.2f}", fontsize=10)
    plot_index_grid(state["indices_lo"], num_codes, radar, ax[1, 5], "coarse indices")
    fig.suptitle(f"{state['subject']}, frame {state['frame']} ({state['kind']})")
    fig.tight_layout()
    return fig


def mask_explorer(model_amp, model_phase, frames: FrameSet | RadarFrames, radar=None):
    """An ipywidgets explorer: walker and map-kind drop-downs, frame, threshold and blend
    sliders, and the :func:`draw_explorer` figure, redrawn on every change.

    model_amp, model_phase: trained models of each stage (``model_phase`` may be None: then only
    amplitude is offered). frames: the frames to browse. Returns an ``ipywidgets.VBox``; its
    ``controls`` attribute holds the control widgets by name and ``refresh()`` redraws.
    """
    import ipywidgets as w
    from IPython.display import display

    dataset = frames if isinstance(frames, RadarFrames) else RadarFrames(frames)
    models = {"amplitude": model_amp, "phase": model_phase}
    subjects = dataset.frames.subjects()
    slider = {"continuous_update": False, "style": {"description_width": "initial"}}
    controls = {
        "subject": w.Dropdown(options=subjects, value=subjects[0], description="walker"),
        "kind": w.Dropdown(options=[k for k in KINDS if models[k] is not None], description="map"),
        "frame": w.IntSlider(
            0, 0, len(subject_frames(dataset, subjects[0])) - 1, description="frame", **slider
        ),  # fmt: skip
        "threshold": w.FloatSlider(0.5, min=0, max=1, step=0.05, description="threshold", **slider),
        "blend": w.FloatSlider(0.0, min=0, max=1, step=0.05, description="blend", **slider),
    }
    summary, out = w.HTML(), w.Output()

    def refresh(change=None) -> dict:
        values = {name: c.value for name, c in controls.items()}
        state = explorer_state(models[values["kind"]], dataset, **values)
        summary.value = (
            f"SSIM <b>{state['ssim']:.3f}</b> · PSNR {state['psnr']:.1f} dB · "
            f"mask mean {state['mask_mean']:.2f} · rms error {state['error_rms']:.2f}"
        )
        with out:
            out.clear_output(wait=True)
            display(draw_explorer(None, state, radar))
        return state

    def new_subject(change) -> None:
        n = len(subject_frames(dataset, change["new"]))
        controls["frame"].value = min(controls["frame"].value, n - 1)
        controls["frame"].max = n - 1

    controls["subject"].observe(new_subject, names="value")
    for c in controls.values():
        c.observe(refresh, names="value")
    box = w.VBox(
        [
            w.HBox([controls["subject"], controls["kind"], controls["frame"]]),
            w.HBox([controls["threshold"], controls["blend"]]),
            summary,
            out,
        ]
    )
    box.controls, box.refresh = controls, refresh
    refresh()
    return box


__all__ = [
    "blended_mask",
    "draw_explorer",
    "explorer_state",
    "forward_with_mask",
    "hard_mask",
    "mask_explorer",
    "subject_frames",
]
