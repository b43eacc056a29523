"""Readable names, with units, for every metric and training-history key: the one table that
axis labels and legends read, so that no plot shows a raw key such as ``peak_err_doppler_moving``.

:func:`label` looks a key up; history keys are the metric keys of
:func:`mmslim.training.evaluate.evaluate` prefixed ``val_``, plus the training loop's own
(``train_loss``, ``seconds``, ``lr_*``). Units of the objective's terms follow
:mod:`mmslim.nn.losses` (dB terms are in units of 10 dB there).
"""

from __future__ import annotations

METRIC_LABELS: dict[str, str] = {  # rate-distortion metrics (mmslim.bench.rd.METRICS)
    "ssim": "SSIM",
    "psnr": "PSNR (dB)",
    "psnr_over_constant": "PSNR over a constant map (dB)",
    "amp_mae_db": "mean |error|, all cells (dB)",
    "amp_mae_db_target": "mean |error|, targets (dB)",
    "cfar_f1": "CFAR F1",
    "cfar_precision": "CFAR precision",
    "cfar_recall": "CFAR recall",
    "cfar_f1_other": "CFAR F1, another detector",
    "peak_err_doppler_moving": "moving peak error (Doppler rows)",
    "peak_err_range_moving": "moving peak error (range bins)",
    "walker_range_err_m": "walker range error (m)",
    "walker_velocity_err_mps": "walker velocity error (m/s)",
    "walker_extent_err_mps": "micro-Doppler extent error (m/s)",
    "walker_missed": "frames with the walker missed (share)",
    "cadence_err_hz": "cadence error (Hz)",
    "phase_err": "phase error, all cells (rad)",
    "phase_err_weighted": "phase error, weighted (rad)",
    "phase_err_target": "phase error, targets (rad)",
    "bits_per_element": "bits per element",
}

HISTORY_LABELS: dict[str, str] = {  # training histories (mmslim.training.fit)
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "seconds": "time per epoch (s)",
    "samples_per_s": "frames per second",
    "val_ssim": "validation SSIM",
    "val_psnr": "validation PSNR (dB)",
    "val_ssim_hi": "SSIM of the fine branch",
    "val_ssim_lo": "SSIM of the coarse branch",
    "val_mask_mean": "mean mask",
    "val_mask_target": "mask on target cells",
    "val_mask_background": "mask elsewhere",
    "val_target_error": "mean |error| on targets ({unit})",
    "val_perplexity_hi": "perplexity, fine (codes)",
    "val_perplexity_lo": "perplexity, coarse (codes)",
    "val_dead_hi": "dead codes, fine (share)",
    "val_dead_lo": "dead codes, coarse (share)",
    "val_term_range": "range penalty",
    "val_term_vq": "VQ losses",
    "val_term_ssim": "1 − SSIM",
    "val_term_target": "target term (10 dB)",
    "val_term_background": "background level term (10 dB)",
    "val_term_spread": "background spread term (10 dB)",
    "val_term_split": "split term (cross-entropy)",
    "val_term_phase": "phase term (1 − cos)",
    "val_term_rate": "rate term (bits per element)",
    "lr_hi": "learning rate, fine",
    "lr_lo": "learning rate, coarse",
    "lr_mask": "learning rate, MaskNet",
}

STAGE_UNITS = {"amplitude": "dB", "phase": "rad"}  # of errors that follow the map kind


def label(key: str, stage: str = "amplitude") -> str:
    """The readable label of a metric or history key; an unknown key is shown with spaces for
    underscores (add it to the tables above). ``stage`` sets the unit of stage-dependent errors.
    """
    if stage not in STAGE_UNITS:
        raise ValueError(f"stage must be one of {sorted(STAGE_UNITS)}, not {stage!r}")
    text = METRIC_LABELS.get(key) or HISTORY_LABELS.get(key) or key.replace("_", " ")
    return text.format(unit=STAGE_UNITS[stage])


__all__ = ["HISTORY_LABELS", "METRIC_LABELS", "STAGE_UNITS", "label"]
