"""Rate-distortion benchmark: mmSlim against its ablations and classical codecs, same frames.

``mmslim bench rd --data PATH --checkpoint CKPT`` (or :func:`run_rd`) answers the question a radar
engineer asks: at the same number of bits, does mmSlim keep more of what matters?

- **Frames**: the validation subjects of the checkpoint's split (else the default split).
- **Methods** (:mod:`mmslim.bench.methods`): mmSlim through the real file path (ANS with
  :func:`~mmslim.codec.maps.compress_maps`, then :func:`~mmslim.codec.maps.decompress_maps`);
  each ablation found in ``ablations/NAME/`` (see :mod:`mmslim.bench.ablations`); every codec of
  :data:`mmslim.bench.baselines.CODECS` at every setting of its sweep.
- **Detail layers**: the main models also with a detail layer beside their file
  (:mod:`mmslim.codec.detail`): the phase of the strongest cells, or the error of their decoded
  amplitude, at :data:`DETAIL_BITS` bits per cell: more operating points of mmSlim's curves, the
  layer's bytes counted in their rate.
- **Floor layers and repair lists**: the main amplitude model with the layers of each of
  :data:`~mmslim.bench.methods.LAYERS`: a 3-bit detail layer and a floor layer
  (:mod:`mmslim.codec.floor_layer`: the floor's level alone, or its texture too, what PSNR and
  SSIM reward, at a price), and a repair list (:mod:`mmslim.codec.repairs`, plain or exact) on
  its own or last; and the phase detail layers again with their cells chosen on the amplitude
  with the layers of :data:`~mmslim.bench.methods.PHASE_ON_LAYERS` (what a receiver of both
  has).
- **Rate**: ``8 len(file)`` over the number of map values (bits per element), and the ratios to
  float32 and int16; every method pays the same container, side info and framing (see
  :mod:`mmslim.bench.baselines`).
- **Distortion**: SSIM (Gaussian 11 x 11, sigma 1.5, data range 1) and PSNR of the normalised maps
  (the reconstruction normalised with the original's min/max), then the physical metrics of
  :mod:`mmslim.metrics.radar` (amplitude dB error, CA-CFAR scores, peak error; phase error);
  the CA-CFAR scores and walker estimates (:mod:`mmslim.metrics.walker`) also with
  :data:`OTHER_DETECTOR`, one no sender rule is tuned to.
- **References** (:mod:`mmslim.bench.references`, not codecs): the texture-free map and the
  original with 1 dB of noise, measured on the same frames (``reference.csv``).
- **Speed**: encode and decode frames/s of the calls that made and read the files (physical
  maps to bytes and back; after a one-frame warm-up), on this machine, in this run. Torch uses
  ``threads`` threads (default 1, like the classical codecs): the figures compare codecs, not
  parallelism (and more threads than free cores slow torch down many-fold).

Writes ``rd.csv`` (a row per method and setting), ``rd_at_rate.csv`` (curves interpolated at
mmSlim's rate) and ``rd_{amplitude,phase}.png`` (each distortion against bits per element).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import torch

from mmslim.bench.methods import (
    DETAIL_BITS,
    LAYERS,
    PHASE_ON_LAYERS,
    Method,
    classical_methods,
    detail_method,
    layered_method,
    model_method,
)
from mmslim.config import KINDS
from mmslim.data.dataset import FrameSet, load_frames, normalize, split_subjects
from mmslim.data.radar import RadarConfig
from mmslim.data.samples import sample_path
from mmslim.files import write_csv
from mmslim.metrics import radar as radar_metrics
from mmslim.metrics.image import psnr, ssim
from mmslim.metrics.walker import walker_errors
from mmslim.training.checkpoint import load_checkpoint, load_model

# Distortions plotted per kind; higher is better for ssim, psnr and cfar_*, lower for the rest.
METRICS = {
    "amplitude": ("ssim", "psnr", "psnr_over_constant", "amp_mae_db", "amp_mae_db_target",
                  "cfar_f1", "cfar_precision", "cfar_recall", "cfar_f1_other",
                  "peak_err_doppler_moving",
                  "peak_err_range_moving", "walker_range_err_m", "walker_velocity_err_mps",
                  "walker_extent_err_mps", "walker_missed", "cadence_err_hz",
                  "walker_velocity_err_mps_other", "walker_extent_err_mps_other"),
    "phase": ("ssim", "psnr", "psnr_over_constant", "phase_err", "phase_err_weighted",
              "phase_err_target"),
}  # fmt: skip


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


# A CA-CFAR no sender rule uses (smaller windows, a higher false-alarm rate than ca_cfar's
# defaults): ``cfar_*_other`` and ``walker_*_other`` say whether a method's detections, and the
# walker estimates made from them, hold for a detector it was not tuned to (the detections rule
# and the repair list run the default one).
OTHER_DETECTOR = {"guard": (2, 1), "train": (6, 3), "pfa": 1e-4}


def _normalized(orig, recon) -> tuple[torch.Tensor, torch.Tensor]:
    """Both (N, H, W) maps as (N, 1, H, W) tensors scaled by the original's range to [0, 1]."""
    x01, vmin, vmax = normalize(orig)
    x = torch.from_numpy(x01)[:, None].float()
    return x, torch.from_numpy(normalize(recon, vmin, vmax)[0])[:, None].float()


def psnr_over_constant(orig: np.ndarray, recon: np.ndarray) -> float:
    """The PSNR of ``recon`` minus that of a constant map (each frame's mean), in dB, both of
    the original ``orig`` (N, H, W), on maps scaled by the original's range (as :func:`distortion`
    does): above 0, the reconstruction is closer to the original than its mean is."""
    return _psnr_gain(*_normalized(orig, recon))


def _psnr_gain(x: torch.Tensor, y: torch.Tensor) -> float:
    flat = x.mean(dim=(2, 3), keepdim=True).expand_as(x)  # each frame's mean: a constant map
    return float(psnr(x, y) - psnr(x, flat))


def distortion(
    kind: str,
    orig: np.ndarray,
    recon: np.ndarray,
    amp: np.ndarray,
    radar: RadarConfig | None = None,
    sequences: np.ndarray | None = None,
) -> dict:
    """Every distortion of one kind. orig, recon: (N, H, W) physical units; amp: the original
    amplitude (N, H, W) dB (target region and weights of the phase metrics); radar: the axes
    of the walker estimates; sequences: (N,) labels of consecutive frames (gait cadence)."""
    x, y = _normalized(orig, recon)
    row = {
        "ssim": float(ssim(x, y)),
        "psnr": float(psnr(x, y)),
        "psnr_over_constant": _psnr_gain(x, y),
    }
    if kind == "amplitude":
        other = radar_metrics.detection_scores(
            radar_metrics.ca_cfar(orig, **OTHER_DETECTOR),
            radar_metrics.ca_cfar(recon, **OTHER_DETECTOR),
        )
        walker_other = walker_errors(orig, recon, radar, **OTHER_DETECTOR)
        return {
            **row,
            **radar_metrics.amplitude_metrics(orig, recon),
            **{f"{k}_other": other[k] for k in ("cfar_f1", "cfar_precision", "cfar_recall")},
            **walker_errors(orig, recon, radar, sequences),
            **{f"{k}_other": walker_other[k]
               for k in ("walker_velocity_err_mps", "walker_extent_err_mps")},
        }  # fmt: skip
    return {**row, **radar_metrics.phase_error(orig, recon, amp)}


def run_method(
    method: Method, kind: str, frames: FrameSet, radar: RadarConfig | None = None
) -> dict:
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
        **distortion(kind, maps, recon, amp, radar, sequence_labels(frames)),
        "enc_fps": len(maps) / (t1 - t0),
        "dec_fps": len(maps) / (t2 - t1),
    }


def scenario_frames(name: str, frames: int = 20, walkers: int = 3, seed: int = 7) -> FrameSet:
    """Frames of a simulator scenario the models never trained on (``lab77`` by default: another
    radar, two people, more clutter and noise): ``walkers`` sequences of ``frames`` frames."""
    from mmslim.data.simulator import simulate_dataset

    return simulate_dataset(walkers, 1, frames, seed, progress=False, scenario=name)


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
    scenarios: tuple[str, ...] = ("held-out",),
    operating_points=None,
) -> list[dict]:
    """Run the benchmark; returns the rows (dicts) and writes CSVs and plots into ``out``.

    data: folder layout or ``.npz`` (default: the shipped sample). checkpoint: an mmSlim
    ``amplitude.pt`` or ``phase.pt`` (the other is looked up beside it; ``None``: classical codecs
    only). ablations: folder of ``NAME/{kind}.pt`` (default ``data_samples/ablations`` if it
    exists). operating_points: folder of ``NAME/{kind}.pt``, more mmSlim models trained at other
    rates (drawn as one curve with ``checkpoint``). frames: limit on validation frames (held-out
    scenario). codecs: subset of ``baselines.CODECS`` values. threads: torch threads while it
    runs. scenarios: ``"held-out"`` (walkers of ``data`` outside the checkpoint's training split)
    and/or a simulator scenario name (``"lab77"``: frames no model has seen from another set-up).
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = _run(
            data, checkpoint, frames, ablations, kinds, codecs, progress, scenarios,
            operating_points,
        )  # fmt: skip
    finally:
        torch.set_num_threads(previous_threads)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_csv(rows, Path(out) / "rd.csv")
        write_csv(at_rate(rows), Path(out) / "rd_at_rate.csv")
        if plot:
            from mmslim.viz.bench import plot_rd

            plot_rd(rows, out)
    return rows


def scenario_sets(
    data, split_from, frames: int | None, scenarios
) -> dict[str, tuple[FrameSet, RadarConfig]]:
    """``{scenario: (frames, radar)}``: ``"held-out"`` is the validation walkers of ``data``
    (default: the shipped sample) in the split of checkpoint ``split_from``, at most ``frames``
    of them; any other name is that simulator scenario's frames (:func:`scenario_frames`)."""
    sets = {}
    for scenario in scenarios:
        if scenario == "held-out":
            fs = load_frames(data or sample_path("sample.npz"), expected_shape=None)
            sets[scenario] = (validation_frames(fs, split_from, frames), RadarConfig())
        else:
            from mmslim.data.simulator import SCENARIOS

            sets[scenario] = (scenario_frames(scenario), SCENARIOS[scenario].radar)
    return sets


def sequence_labels(frames: FrameSet) -> np.ndarray:
    """(N,) labels of consecutive frames: subject and sequence (the gait cadence's runs)."""
    return np.char.add(frames.subject.astype(str), frames.sequence.astype(str))


def _learned(checkpoint, ablations, operating_points) -> list[tuple[str, str, dict]]:
    """(name, family, {kind: checkpoint}) of every learned model to measure."""
    learned = [("mmslim", "mmslim", find_checkpoints(checkpoint) if checkpoint else {})]
    for folder, family in ((operating_points, "mmslim"), (ablations, "ablation")):
        if folder is None or not Path(folder).is_dir():
            continue
        for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
            found = {k: sub / f"{k}.pt" for k in KINDS if (sub / f"{k}.pt").is_file()}
            learned.append(("mmslim" if family == "mmslim" else sub.name, family, found))
    return learned


def _run(data, checkpoint, frames, ablations, kinds, codecs, progress, scenarios, points):
    ablations = Path(ablations) if ablations else sample_path("ablations")
    learned = _learned(checkpoint, ablations, points)
    sets = scenario_sets(data, next(iter(learned[0][2].values()), None), frames, scenarios)
    rows = []
    for scenario, (val, radar) in sets.items():
        for kind in kinds:
            methods = []
            for i, (name, family, paths) in enumerate(learned):
                if kind not in paths:
                    continue
                model, state = load_model(paths[kind], kind)
                rate_weight = state.get("train_config", {}).get("rate_weight", 0.0)
                # The main model's receiver also with a smoothed floor and with noise filling.
                other = ("smooth", "noise") if i == 0 and kind == "amplitude" else ()
                for floor in ("none", *other):
                    label = name if floor == "none" else f"{name} floor={floor}"
                    method = model_method(
                        label, family if floor == "none" else "ablation", model, kind,
                        val.amplitude.shape[1:], floor,
                    )  # fmt: skip
                    method.setting += f" lambda={rate_weight:g}"
                    methods.append(method)
                if i == 0 and "amplitude" in paths:  # the detail layers
                    amplitude_model = load_model(paths["amplitude"], "amplitude")[0]
                    layer_sets = (None, PHASE_ON_LAYERS) if kind == "phase" else (None,)
                    for layers, bits in itertools.product(layer_sets, DETAIL_BITS[kind]):
                        methods.append(detail_method(
                            name, model, amplitude_model, bits,
                            frame_shape=val.amplitude.shape[1:], kind=kind, amplitude_layers=layers,
                        ))  # fmt: skip
                if i == 0 and kind == "amplitude":  # floor layers and repair lists
                    shape = val.amplitude.shape[1:]
                    methods += [
                        layered_method(name, model, *layers, frame_shape=shape) for layers in LAYERS
                    ]
            for method in methods + classical_methods(codecs):
                rows.append({"scenario": scenario, **run_method(method, kind, val, radar)})
                if progress:
                    r = rows[-1]
                    print(f"{scenario} {kind} {method.codec} {method.setting}: "
                          f"{r['bits_per_element']:.3f} bits/element", flush=True)  # fmt: skip
    return rows


def at_rate(rows: list[dict], reference: str = "mmslim") -> list[dict]:
    """For each scenario and kind, each classical curve interpolated linearly in bits per element
    at every rate of the reference (its operating points); ``reached`` False, and no metrics,
    where a curve does not span that rate. Learned models' rows as they are."""
    out = []
    for scenario, kind in dict.fromkeys((r["scenario"], r["kind"]) for r in rows):
        group = [r for r in rows if (r["scenario"], r["kind"]) == (scenario, kind)]
        for codec in dict.fromkeys(r["codec"] for r in group):
            pts = curve(group, kind, codec)
            if pts[0]["family"] != "classical":
                out.extend({**r, "reached": True} for r in pts)
        for ref in curve(group, kind, reference):
            rate = ref["bits_per_element"]
            for codec in dict.fromkeys(r["codec"] for r in group):
                pts = curve(group, kind, codec)
                if pts[0]["family"] != "classical":
                    continue
                x = np.array([r["bits_per_element"] for r in pts])
                row = {"scenario": scenario, "kind": kind, "codec": codec,
                       "family": "classical", "setting": f"at {ref['setting']}"}  # fmt: skip
                row.update(bits_per_element=rate, reached=bool(x[0] <= rate <= x[-1]))
                for m in METRICS[kind] + ("enc_fps", "dec_fps"):
                    if m in pts[0] and row["reached"]:
                        row[m] = float(np.interp(rate, x, [r[m] for r in pts]))
                out.append(row)
    return out


def curve(rows: list[dict], kind: str, codec: str, scenario: str | None = None) -> list[dict]:
    """The rows of one codec and kind (and scenario, if given), by increasing rate."""
    pts = [r for r in rows if r["kind"] == kind and r["codec"] == codec
           and (scenario is None or r["scenario"] == scenario)]  # fmt: skip
    return sorted(pts, key=lambda r: r["bits_per_element"])


__all__ = ["METRICS", "at_rate", "curve", "distortion", "find_checkpoints", "psnr_over_constant",
           "run_rd", "scenario_sets", "sequence_labels"]  # fmt: skip
