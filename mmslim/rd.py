"""Rate-distortion benchmark: mmSlim against its ablations and classical codecs, same frames.

``mmslim bench rd --data PATH --checkpoint CKPT`` (or :func:`run_rd`) answers the question a radar
engineer asks: at the same number of bits, does mmSlim keep more of what matters?

- **Frames**: the validation subjects of the checkpoint's split (else the default split).
- **Methods**: mmSlim through the real file path (:func:`~mmslim.pipeline.compress_maps` with
  ANS, then :func:`~mmslim.pipeline.decompress_maps`); each ablation found in ``ablations/NAME/``
  (see :data:`ABLATIONS` and :func:`train_ablations`); every codec of
  :data:`mmslim.baselines.CODECS` at every setting of its sweep.
- **Rate**: ``8 len(file)`` over the number of map values (bits per element), and the ratios to
  float32 and int16; every method pays the same container, side info and framing (see
  :mod:`mmslim.baselines`).
- **Distortion**: SSIM (Gaussian 11 x 11, sigma 1.5, data range 1) and PSNR of the normalised maps
  (the reconstruction normalised with the original's min/max), then the physical metrics of
  :mod:`mmslim.radar_metrics` (amplitude dB error, CA-CFAR scores, peak error; phase error).
- **Speed**: encode and decode frames/s of the calls that made and read the files (physical
  maps to bytes and back; after a one-frame warm-up), on this machine, in this run. Torch uses
  ``threads`` threads (default 1, like the classical codecs): the figures compare codecs, not
  parallelism (and more threads than free cores slow torch down many-fold).

Writes ``rd.csv`` (a row per method and setting), ``rd_at_rate.csv`` (curves interpolated at
mmSlim's rate) and ``rd_{amplitude,phase}.png`` (each distortion against bits per element).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from mmslim import baselines, radar_metrics
from mmslim.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from mmslim.config import ModelConfig, TrainConfig
from mmslim.data.dataset import FrameSet, load_frames, split_subjects
from mmslim.metrics import psnr, ssim
from mmslim.pipeline import compress_maps, decompress_maps

KINDS = ("amplitude", "phase")
SAMPLES = Path(__file__).parents[1] / "data_samples"
# Distortions plotted per kind; higher is better for ssim, psnr and cfar_*, lower for the rest.
METRICS = {
    "amplitude": ("ssim", "psnr", "amp_mae_db", "amp_mae_db_target", "cfar_f1", "cfar_precision",
                  "cfar_recall", "peak_err_doppler_moving", "peak_err_range_moving"),
    "phase": ("ssim", "psnr", "phase_err", "phase_err_weighted", "phase_err_target"),
}  # fmt: skip


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
    from mmslim.train import train

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


@dataclass
class Method:
    """One codec at one setting; maps (N, H, W) in physical units, files as bytes."""

    codec: str
    family: str  # "mmslim", "ablation" or "classical"
    setting: str
    compress: Callable[[np.ndarray, np.ndarray], bytes]
    decompress: Callable[[bytes], np.ndarray]


def model_method(name: str, family: str, model, kind: str) -> Method:
    def enc(maps, amp):
        return compress_maps(model, maps, kind, "ans", amp if kind == "phase" else None)

    setting = f"K={model.config.num_codes} mask={model.config.mask}"
    return Method(name, family, setting, enc, lambda data: decompress_maps(model, data)[0])


def classical_methods(codecs=None) -> list[Method]:
    out = []
    for codec in codecs or baselines.CODECS.values():
        for s in codec.settings:
            enc = lambda maps, amp, c=codec, s=s: baselines.compress(c, s, maps)  # noqa: E731
            out.append(
                Method(codec.name, "classical", f"{codec.knob}={s:g}", enc, baselines.decompress)
            )
    return out


def find_checkpoints(checkpoint) -> dict[str, Path]:
    """``{kind: path}`` of a checkpoint and its sibling of the other stage, where present."""
    checkpoint = Path(checkpoint)
    found = {k: checkpoint.parent / f"{k}.pt" for k in KINDS}
    found = {k: p for k, p in found.items() if p.is_file()}
    return {**found, load_checkpoint(checkpoint)["stage"]: checkpoint}


def validation_frames(frames: FrameSet, checkpoint=None, limit: int | None = None) -> FrameSet:
    """The validation subjects' frames (the checkpoint's split, else the default split); with
    ``limit``, that many frames spread evenly over them."""
    val = None
    if checkpoint is not None:
        val = load_checkpoint(checkpoint).get("split", {}).get("val")
    if not val or not set(val) <= set(frames.subjects()):
        val = split_subjects(frames.subjects())[1]
    frames = frames.of_subjects(val)
    if limit and limit < len(frames):
        keep = np.linspace(0, len(frames) - 1, limit).round().astype(int)  # (limit,) spread
        frames = frames.select(np.unique(keep))
    return frames


def distortion(kind: str, orig: np.ndarray, recon: np.ndarray, amp: np.ndarray) -> dict:
    """Every distortion of one kind. orig, recon: (N, H, W) physical units; amp: the original
    amplitude (N, H, W) dB (target region and weights of the phase metrics)."""
    lo, hi = orig.min(axis=(1, 2), keepdims=True), orig.max(axis=(1, 2), keepdims=True)
    x = torch.from_numpy((orig - lo) / (hi - lo))[:, None].float()  # (N, 1, H, W)
    y = torch.from_numpy((recon - lo) / (hi - lo))[:, None].float()
    row = {"ssim": float(ssim(x, y)), "psnr": float(psnr(x, y))}
    if kind == "amplitude":
        return {**row, **radar_metrics.amplitude_metrics(orig, recon)}
    return {**row, **radar_metrics.phase_error(orig, recon, amp)}


def run_method(method: Method, kind: str, frames: FrameSet) -> dict:
    """Compress, decompress, measure: one row."""
    maps, amp = getattr(frames, kind), frames.amplitude
    method.decompress(method.compress(maps[:1], amp[:1]))  # warm-up: first-call costs untimed
    t0 = time.perf_counter()
    data = method.compress(maps, amp)
    t1 = time.perf_counter()
    recon = method.decompress(data)
    t2 = time.perf_counter()
    bpe = 8 * len(data) / maps.size
    return {
        "kind": kind,
        "codec": method.codec,
        "family": method.family,
        "setting": method.setting,
        "frames": len(maps),
        "bytes": len(data),
        "bits_per_element": bpe,
        "ratio_f32": 32 / bpe,
        "ratio_i16": 16 / bpe,
        **distortion(kind, maps, recon, amp),
        "enc_fps": len(maps) / (t1 - t0),
        "dec_fps": len(maps) / (t2 - t1),
    }


def run_rd(
    data=None,
    checkpoint=None,
    out=None,
    frames: int | None = None,
    ablations=None,
    kinds: tuple[str, ...] = KINDS,
    codecs=None,
    plot: bool = True,
    progress: bool = False,
    threads: int = 1,
) -> list[dict]:
    """Run the benchmark; returns the rows (dicts) and writes CSVs and plots into ``out``.

    data: folder layout or ``.npz`` (default: the shipped sample). checkpoint: an mmSlim
    ``amplitude.pt`` or ``phase.pt`` (the other is looked up beside it; ``None``: classical codecs
    only). ablations: folder of ``NAME/{kind}.pt`` (default ``data_samples/ablations`` if it
    exists). frames: limit on validation frames. codecs: subset of ``baselines.CODECS`` values.
    threads: torch threads while it runs.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = _run(data, checkpoint, frames, ablations, kinds, codecs, progress)
    finally:
        torch.set_num_threads(previous_threads)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_csv(rows, Path(out) / "rd.csv")
        write_csv(at_rate(rows), Path(out) / "rd_at_rate.csv")
        if plot:
            plot_rd(rows, out)
    return rows


def _run(data, checkpoint, frames, ablations, kinds, codecs, progress) -> list[dict]:
    fs = load_frames(data or SAMPLES / "sample.npz", expected_shape=None)
    ckpts = find_checkpoints(checkpoint) if checkpoint else {}
    val = validation_frames(fs, next(iter(ckpts.values()), None), frames)
    ablations = Path(ablations) if ablations else SAMPLES / "ablations"
    learned = [("mmslim", "mmslim", ckpts)]
    if ablations.is_dir():
        for folder in sorted(p for p in ablations.iterdir() if p.is_dir()):
            found = {k: folder / f"{k}.pt" for k in KINDS if (folder / f"{k}.pt").is_file()}
            learned.append((folder.name, "ablation", found))
    rows = []
    for kind in kinds:
        methods = [
            model_method(name, family, load_model(paths[kind], kind)[0], kind)
            for name, family, paths in learned
            if kind in paths
        ]
        for method in methods + classical_methods(codecs):
            rows.append(run_method(method, kind, val))
            if progress:
                print(kind, method.codec, method.setting, f"{rows[-1]['bits_per_element']:.3f} bpe")
    return rows


def write_csv(rows: list[dict], path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)


def at_rate(rows: list[dict], reference: str = "mmslim") -> list[dict]:
    """Each classical curve interpolated linearly in bits per element at the reference's rate
    (``reached`` False, no metrics, if it does not span it); learned models' rows as they are."""
    out = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        if not (ref := _curve(rows, kind, reference)):
            continue
        rate = ref[0]["bits_per_element"]
        for codec in dict.fromkeys(r["codec"] for r in rows if r["kind"] == kind):
            pts = _curve(rows, kind, codec)
            if pts[0]["family"] != "classical":
                out.extend({**r, "reached": True} for r in pts)
                continue
            x = np.array([r["bits_per_element"] for r in pts])
            row = {"kind": kind, "codec": codec, "family": "classical", "setting": "interpolated"}
            row.update(bits_per_element=rate, reached=bool(x[0] <= rate <= x[-1]))
            for m in METRICS[kind] + ("enc_fps", "dec_fps"):
                if m in pts[0] and row["reached"]:
                    row[m] = float(np.interp(rate, x, [r[m] for r in pts]))
            out.append(row)
    return out


def _curve(rows: list[dict], kind: str, codec: str) -> list[dict]:
    """The rows of one codec and kind, by increasing rate."""
    pts = [r for r in rows if r["kind"] == kind and r["codec"] == codec]
    return sorted(pts, key=lambda r: r["bits_per_element"])


def plot_rd(rows: list[dict], out_dir) -> list[Path]:
    """One figure per kind, ``rd_{kind}.png``: each distortion against bits per element (log),
    a line per classical codec, a marker per learned model. Needs matplotlib and seaborn."""
    import seaborn as sns
    from matplotlib.figure import Figure

    paths = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        kind_rows = [r for r in rows if r["kind"] == kind]
        metrics, n_rows = METRICS[kind], -(-len(METRICS[kind]) // 5)  # five panels a row
        codecs = list(dict.fromkeys(r["codec"] for r in kind_rows))
        colours = dict(zip(codecs, sns.color_palette("tab10", len(codecs))))
        with sns.axes_style("whitegrid"):
            fig = Figure(figsize=(17, 3.4 * n_rows), layout="constrained")
            axes = fig.subplots(n_rows, 5, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics):
            for codec in codecs:
                pts = [r for r in _curve(kind_rows, kind, codec) if np.isfinite(r[metric])]
                x, y = [r["bits_per_element"] for r in pts], [r[metric] for r in pts]
                family = pts[0]["family"] if pts else "classical"
                style = {"classical": dict(marker="o", ms=3), "ablation": dict(marker="D", ms=7)}
                style = style.get(family, dict(marker="*", ms=15, zorder=3))  # mmSlim on top
                ls = "-" if family == "classical" else "none"
                ax.plot(x, y, color=colours[codec], label=codec, ls=ls, **style)
            ax.set(xscale="log", xlabel="bits per element", ylabel=metric)
        for ax in axes[len(metrics) :]:
            ax.set_axis_off()
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
        fig.suptitle(f"{kind}: distortion against rate ({kind_rows[0]['frames']} frames)")
        paths.append(Path(out_dir) / f"rd_{kind}.png")
        fig.savefig(paths[-1], dpi=110)
    return paths


__all__ = ["ABLATIONS", "METRICS", "at_rate", "matched_num_codes", "run_rd", "train_ablations"]
