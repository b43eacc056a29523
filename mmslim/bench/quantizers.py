"""Quantizer zoo benchmark: every quantizer variant trained with the same budget, then compared.

``mmslim bench quantizers`` (or :func:`run_quantizer_bench`) trains the amplitude stage of the
``cpu-small`` model once per variant of :data:`mmslim.nn.quantizers.zoo.VARIANTS` (in both
branches, or in one with ``branches``), on the same frames, split, seed and number of epochs,
and reports per variant:

- validation SSIM and PSNR (eval mode, as :func:`mmslim.training.evaluate.evaluate` after the
  last epoch);
- perplexity and dead-code share of each branch over the validation set;
- the real rate: the validation maps compressed to a file with ANS against the prior fitted on
  the training split (:func:`mmslim.codec.maps.compress_maps`), ``8 len(file)`` over the number of
  map values (bits per element), and its ratio to float32;
- time: seconds spent in training steps and the wall time of the whole run (both depend on
  what else the machine runs), and ``quantizer_ms``, one training step (forward and backward) of
  the two quantizers alone on a batch of 16 frames' latents, timed back to back: the variant's
  own cost, little affected by the machine's load.

The training recipe is named by ``recipe`` (:data:`RECIPES`): by default today's ``cpu-small``
presets; ``"ssim-v1"`` is ``cpu-small`` as it was when the results shipped in
``data_samples/bench/quantizers/`` were made (the paper's SSIM objective, no rate term, MaskNet's
reference head and learning rate, a validation every epoch). Rows trained with another recipe do
not compare with those. Rows trained with ``"ssim-v1"`` do, as another draw: today's training
shuffles its batches and sums the loss's gradient in another order than the code that made
them, so a seed does not repeat its shipped row (``data_samples/README.md`` gives the figures),
and a new variant is compared with the plain VQ retrained beside it.

The Gumbel temperature is annealed over the run's steps (``GumbelConfig.anneal_steps`` set to
the budget), so that it reaches its final value whatever the budget. Writes ``quantizers.csv`` and
``quantizers.png`` into the output folder (one subfolder per variant holds its checkpoint).

Several runs (seeds, branch settings) are read back with :func:`read_csv` and combined by
:func:`summarise` (mean and spread over seeds) and :func:`plot_quality_vs_rate`, as notebook 09
does with the results shipped in ``data_samples/bench/quantizers/``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from mmslim.codec.maps import compress_maps
from mmslim.codec.rate import rate_report
from mmslim.config import QUANTIZER_BENCH_RECIPES, GumbelConfig, ModelConfig, TrainConfig
from mmslim.data.dataset import FrameSet, load_frames
from mmslim.data.samples import sample_path
from mmslim.files import read_csv, write_csv
from mmslim.nn.quantizers.zoo import SOURCES, VARIANTS, variant_config
from mmslim.training.checkpoint import load_checkpoint
from mmslim.training.fit import train

COLUMNS = ("variant", "ssim", "psnr", "perplexity_hi", "perplexity_lo", "dead_hi", "dead_lo",
           "bits_per_element", "ratio_f32", "quantizer_ms", "train_s", "wall_s")  # fmt: skip

# Recipe name -> (ModelConfig, TrainConfig) fields that differ from today's cpu-small presets.
# "ssim-v1": the presets of the shipped results; the radar objective's weights are left as they
# are, since the SSIM objective does not read them, and each variant replaces the quantizer.
RECIPES: dict[str, tuple[dict, dict]] = {
    "cpu-small": ({}, {}),
    "ssim-v1": (
        {"mask_head": "reference"},
        {"objective": "ssim", "rate_weight": 0.0, "lr_mask": 5e-4, "val_every": 1},
    ),
}
assert tuple(RECIPES) == QUANTIZER_BENCH_RECIPES, "name each recipe in mmslim.config too"


def recipe_configs(
    recipe: str = "cpu-small", epochs: int = 5, seed: int = 0
) -> tuple[ModelConfig, TrainConfig]:
    """The base model config and the training recipe of ``recipe`` (:data:`RECIPES`)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    model, training = RECIPES[recipe]
    return (
        ModelConfig.preset("cpu-small", **model),
        TrainConfig.preset("cpu-small", **training, epochs=epochs, seed=seed),
    )


def run_quantizer_bench(
    data: str | Path | FrameSet | None = None,
    out_dir: str | Path = "runs/quantizers",
    variants: list[str] | None = None,
    epochs: int = 5,
    frames_per_sequence: int | None = None,
    branches: str = "both",
    seed: int = 0,
    base_config: ModelConfig | None = None,
    progress: bool = True,
    resume: bool = False,
    recipe: str = "cpu-small",
) -> list[dict]:
    """Train and measure each variant; returns one row (dict) per variant (see module doc).

    data: frames (default: the shipped sample); frames_per_sequence: keep only the first
    frames of each sequence (a smaller, faster run); epochs: the budget, equal for all;
    branches: ``"both"``, ``"hi"`` or ``"lo"`` (the other branch keeps the plain VQ); recipe: the
    training recipe (:data:`RECIPES`); base_config: sizes in place of the recipe's model config.

    The CSV is rewritten after every variant, so an interrupted run keeps what it finished;
    ``resume`` reuses the rows of ``out_dir/quantizers.csv`` whose variant, number of frames,
    epochs, branches, seed and recipe match, and trains only the others.
    """
    names = list(VARIANTS) if variants is None else list(variants)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    frames = data if isinstance(data, FrameSet) else load_frames(data or sample_path("sample.npz"))
    if frames_per_sequence:
        frames = frames.select(frames.frame < frames_per_sequence)
    recipe_model, tcfg = recipe_configs(recipe, epochs, seed)
    base = base_config or recipe_model
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "quantizers.csv"
    done = {}
    if resume and csv_path.exists():
        same = {"frames": len(frames), "epochs": epochs, "branches": branches, "seed": seed,
                "recipe": recipe}  # fmt: skip
        done = {r["variant"]: r for r in read_csv(csv_path)
                if all(r.get(k) == v for k, v in same.items())}  # fmt: skip
    seconds = time_quantizers(
        {n: variant_config(base, n, branches) for n in names if n not in done}
    )
    rows = []
    for i, name in enumerate(names):
        if name in done:
            rows.append(done[name])
            if progress:
                print(f"[{i + 1}/{len(names)}] {name}: done before, kept", flush=True)
            continue
        if progress:
            print(f"[{i + 1}/{len(names)}] {name}: training {epochs} epochs", flush=True)
        rows.append(_run_variant(name, frames, base, tcfg, branches, out_dir))
        rows[-1]["quantizer_ms"] = 1000 * seconds[name]
        rows[-1]["recipe"] = recipe
        write_csv(rows, csv_path)  # what is finished survives an interruption
        if progress:
            r = rows[-1]
            print(f"    SSIM {r['ssim']:.4f}, {r['bits_per_element']:.4f} bits/element, "
                  f"{r['wall_s']:.0f} s", flush=True)  # fmt: skip
    write_csv(rows, csv_path)
    from mmslim.viz.bench import plot_quantizer_bench

    fig = plot_quantizer_bench(rows)
    fig.savefig(out_dir / "quantizers.png", dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return rows


def _run_variant(name, frames, base, tcfg, branches, out_dir) -> dict:
    overrides = {}
    if isinstance(VARIANTS[name], GumbelConfig):
        n_train = _n_train_frames(frames, tcfg)
        overrides["anneal_steps"] = tcfg.epochs * math.ceil(n_train / tcfg.batch_size)
    config = variant_config(base, name, branches, **overrides)
    t0 = time.perf_counter()
    result = train("amplitude", frames, out_dir / name, config, tcfg, overwrite=True,
                   progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    last = result.history[-1]
    split = load_checkpoint(result.checkpoint)["split"]
    val = frames.of_subjects(split["val"])
    blob = compress_maps(result.model, val.amplitude, "amplitude", "ans")
    rate = rate_report(blob, val.amplitude.size)
    return {
        "variant": name,
        "ssim": last["val_ssim"],
        "psnr": last["val_psnr"],
        "perplexity_hi": last["val_perplexity_hi"],
        "perplexity_lo": last["val_perplexity_lo"],
        "dead_hi": last["val_dead_hi"],
        "dead_lo": last["val_dead_lo"],
        "bits_per_element": rate.bits_per_element,
        "ratio_f32": rate.ratio_vs_float32,
        "train_s": sum(r["seconds"] for r in result.history),
        "wall_s": wall,
        "branches": branches,
        "frames": len(frames),
        "epochs": tcfg.epochs,
        "seed": tcfg.seed,
        "source": SOURCES[name],
    }


def time_quantizers(
    configs: dict[str, ModelConfig], batch: int = 16, repeat: int = 7
) -> dict[str, float]:
    """Seconds of one training step (forward, backward) of both branches' quantizers alone, on
    random latents of ``batch`` 224 x 64 frames (56 x 16 and 14 x 4 positions), per config.

    The configs take turns (round robin) so that a change in the machine's load hits all of
    them alike; each gets a warm-up step (which also runs a data-dependent initialisation), then
    the fastest of ``repeat`` steps is kept (other load only ever adds time).
    """
    import torch

    from mmslim.nn.quantizers.zoo import build_quantizer

    def make_step(config: ModelConfig):
        gen = torch.Generator().manual_seed(0)
        parts = []
        for branch, (h, w) in (("hi", (56, 16)), ("lo", (14, 4))):
            q = build_quantizer(config, branch).train()
            parts.append((q, torch.randn(batch, config.code_dim, h, w, generator=gen)))

        def step():
            for q, z in parts:
                z = z.clone().requires_grad_(True)
                z_q, _, info = q(z)
                (z_q.square().mean() + info["loss"]).backward()

        step()  # warm-up
        return step

    steps = {name: make_step(c) for name, c in configs.items()}
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(repeat):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: min(t) for name, t in times.items()}  # the least disturbed run


def _n_train_frames(frames: FrameSet, tcfg: TrainConfig) -> int:
    from mmslim.data.dataset import split_subjects

    train_subjects, _ = split_subjects(frames.subjects(), tcfg.val_fraction, tcfg.seed)
    return len(frames.of_subjects(train_subjects).subject)


SUMMARY = ("ssim", "psnr", "bits_per_element", "perplexity_hi", "perplexity_lo", "dead_hi",
           "dead_lo", "quantizer_ms")  # fmt: skip


def summarise(rows: list[dict]) -> list[dict]:
    """Rows of one or more runs (several seeds, several ``branches``) -> one row per (branches,
    variant), in first-seen order: ``n_seeds``, the mean of each :data:`SUMMARY` column, and
    ``ssim_std`` (sample standard deviation over seeds; 0 with one seed)."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["branches"], r["variant"]), []).append(r)
    out = []
    for (branches, variant), group in groups.items():
        ssim = np.array([r["ssim"] for r in group])
        out.append({
            "branches": branches,
            "variant": variant,
            "n_seeds": len(group),
            "epochs": group[0].get("epochs"),
            **{k: float(np.mean([r[k] for r in group])) for k in SUMMARY},
            "ssim_std": float(ssim.std(ddof=1)) if len(group) > 1 else 0.0,
        })  # fmt: skip
    return out


__all__ = [
    "COLUMNS",
    "RECIPES",
    "SUMMARY",
    "recipe_configs",
    "run_quantizer_bench",
    "summarise",
    "time_quantizers",
]
