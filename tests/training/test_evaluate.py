"""Validation metrics with known answers: a model whose mask and branches are known functions.

The mask is the amplitude map itself (so the phase stage shows whether it came from the
amplitude), each branch returns what it is given (or nothing) and sends a fixed pattern of
codes, different in every batch; then every metric of :func:`evaluate` is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmslim.config import ModelConfig, TrainConfig
from mmslim.data.dataset import RadarFrames
from mmslim.metrics.image import ssim
from mmslim.nn import MMSlim
from mmslim.training.evaluate import evaluate, reconstruct

K = 64  # the tiny preset's codebook
BATCH = 3  # frames per batch: the 8 frames below come in batches of 3, 3 and 2
USED = {"hi": 7, "lo": 8}  # codes each branch sends per batch: hi 56 x 16 = 7 x 128, lo 14 x 4


class AmplitudeMask(nn.Module):
    """A "MaskNet" whose mask is its input: M = the normalised amplitude map."""

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        return source.clone()


class KnownBranch(nn.Module):
    """Returns its input (``keep=True``) or zeros, and sends codes ``USED * call + (0 .. USED-1)``
    in turn over the grid: each code equally often within a batch, new codes in each batch."""

    def __init__(self, branch: str, keep: bool = True, loss: float = 0.0):
        super().__init__()
        self.downsample, self.used, self.keep = {"hi": 4, "lo": 16}[branch], USED[branch], keep
        self.gain = nn.Parameter(torch.ones(()))  # the model's only parameter: sets the device
        self.loss, self.calls = loss, 0

    def forward(self, x: torch.Tensor, sent=None, lost=None, allowed=None) -> dict:  # Branch's
        b, _, h, w = x.shape
        f = self.downsample
        codes = self.used * self.calls + torch.arange(h // f * w // f) % self.used  # (h/f * w/f,)
        self.calls += 1
        indices = codes.view(1, h // f, w // f).expand(b, -1, -1)  # (B, h/f, w/f)
        x_hat = x * self.gain if self.keep else torch.zeros_like(x)
        return {
            "x_hat": x_hat,
            "indices": indices,
            "z": None,
            "stats": {"loss": x.new_tensor(self.loss)},
        }


def known_model(keep_lo: bool = True) -> MMSlim:
    model = MMSlim(ModelConfig.preset("tiny"))
    model.mask_net = AmplitudeMask()
    model.hi = KnownBranch("hi", loss=0.125)
    model.lo = KnownBranch("lo", keep=keep_lo, loss=0.25)
    return model


@pytest.fixture(scope="module")
def dataset(sample_frames):
    """8 frames: the first 2 frames of both sequences of 2 walkers."""
    fs = sample_frames
    return RadarFrames(fs.select(np.isin(fs.subject, fs.subjects()[:2]) & (fs.frame < 2)))


def expected_usage(n_frames: int, branch: str, grid: int) -> tuple[float, float]:
    """Perplexity and dead share of the codes the known branch sends over the whole set."""
    counts = np.zeros(K)
    for call, start in enumerate(range(0, n_frames, BATCH)):
        frames = min(BATCH, n_frames - start)
        counts[USED[branch] * call + np.arange(USED[branch])] += frames * grid / USED[branch]
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum())), float((counts == 0).mean())


@pytest.mark.parametrize("stage", ["amplitude", "phase"])
def test_branches_that_return_their_inputs(dataset, stage):
    x = dataset.tensors(stage)[0]  # (8, 1, 224, 64)
    amp = dataset.tensors("amplitude")[0]
    m = known_model()
    metrics = evaluate(m, dataset, stage, batch_size=BATCH)
    assert metrics["ssim_hi"] == pytest.approx(1.0, abs=1e-5)  # M x against M x
    assert metrics["ssim_lo"] == pytest.approx(1.0, abs=1e-5)  # (1 - M) x against (1 - M) x
    assert metrics["ssim"] == pytest.approx(1.0, abs=1e-5)  # M x + (1 - M) x = x
    assert metrics["psnr"] > 100  # equal up to float32 rounding
    assert metrics["mask_mean"] == pytest.approx(float(amp.double().mean()), rel=1e-6)
    assert metrics["loss"] == pytest.approx(0.125 + 0.25, abs=1e-5)  # 1 - SSIM ~ 0, VQ losses
    n = len(x)
    for branch, grid in (("hi", 56 * 16), ("lo", 14 * 4)):
        perplexity, dead = expected_usage(n, branch, grid)
        assert metrics[f"perplexity_{branch}"] == pytest.approx(perplexity, rel=1e-5)
        assert metrics[f"dead_{branch}"] == dead
    # the branches' targets differ from each other and from x, or the SSIMs above prove nothing
    assert float(ssim(amp * x, (1 - amp) * x)) < 0.9 and float(ssim(x, amp * x)) < 0.9


@pytest.mark.parametrize("stage", ["amplitude", "phase"])
def test_a_coarse_branch_that_returns_nothing(dataset, stage):
    x = dataset.tensors(stage)[0].double()  # (8, 1, 224, 64)
    amp = dataset.tensors("amplitude")[0].double()
    metrics = evaluate(known_model(keep_lo=False), dataset, stage, batch_size=BATCH)
    x_hat = amp * x  # the fine branch's part only
    assert metrics["ssim_hi"] == pytest.approx(1.0, abs=1e-5)
    assert metrics["ssim_lo"] == pytest.approx(float(ssim((1 - amp) * x, 0 * x)), abs=1e-5)
    assert metrics["ssim"] == pytest.approx(float(ssim(x, x_hat)), abs=1e-5)
    mse = ((x - x_hat) ** 2).mean(dim=(1, 2, 3)).numpy()  # per map
    assert metrics["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=1e-3)
    box = float(ssim(x, x_hat, window="box"))
    assert metrics["loss"] == pytest.approx(1 - box + 0.375, abs=1e-5)
    assert metrics["ssim_lo"] < 0.5 and metrics["psnr"] < 40  # far from the first test's


def test_reconstruct_keeps_frames_in_order_across_batches(dataset):
    x = dataset.tensors("phase")[0]
    amp = dataset.tensors("amplitude")[0]
    r = reconstruct(known_model(), dataset, "phase", batch_size=BATCH)
    assert torch.equal(r["x"], x)
    assert torch.equal(r["mask"], amp)
    assert torch.equal(r["x_hat_hi"], amp * x)
    assert torch.equal(r["x_hat_lo"], (1 - amp) * x)
    assert r["indices_hi"].shape == (8, 56, 16) and r["indices_hi"].dtype == torch.int64
    first = [int(r["indices_hi"][i].min()) for i in range(8)]
    assert first == [0, 0, 0, 7, 7, 7, 14, 14]  # the batch each frame came in
    assert torch.equal(r["vq_loss"], torch.full((8,), 0.375))


def test_evaluate_leaves_the_training_mode_as_it_was(dataset):
    model = known_model().train()
    evaluate(model, dataset, "amplitude", batch_size=BATCH)
    assert model.training
    model.eval()
    evaluate(model, dataset, "amplitude", batch_size=BATCH)
    assert not model.training


def target_errors(dataset, stage: str, x_hat: torch.Tensor) -> np.ndarray:
    """The error of the clamped ``x_hat`` in physical units on the cells within 40 dB of their
    frame's peak, not wrapped; float64."""
    x, x_range = (t.double().numpy() for t in dataset.tensors(stage))
    amp, amp_range = (t.double().numpy() for t in dataset.tensors("amplitude"))
    amp_span = (amp_range[:, 1] - amp_range[:, 0])[:, None, None, None]
    targets = amp >= amp.max(axis=(2, 3), keepdims=True) - 40.0 / amp_span
    span = (x_range[:, 1] - x_range[:, 0])[:, None, None, None]
    return ((np.clip(x_hat.double().numpy(), 0, 1) - x) * span)[targets]


def mean_abs_error(errors: np.ndarray, stage: str) -> float:
    """Mean |error|, phase errors taken on the circle."""
    if stage == "phase":
        errors = (errors + np.pi) % (2 * np.pi) - np.pi
    return float(np.abs(errors).mean())


@pytest.mark.parametrize("gains", [(3.0, -1.0), (-1.0, 1.0)])
@pytest.mark.parametrize("stage", ["amplitude", "phase"])
def test_metrics_take_the_reconstruction_clamped_to_0_1(dataset, stage, gains):
    """Branch gains 3 and -1 give x_hat = (4 M - 1) x, below 0 where M < 1/4 and above 1 on
    strong cells; gains -1 and 1 give (1 - 2 M) x, below 0 on the targets. SSIM, PSNR and the
    target error are those of the clamped map; some phase errors on targets pass pi and wrap."""
    x = dataset.tensors(stage)[0]
    amp = dataset.tensors("amplitude")[0]
    model = known_model()
    model.hi.gain.data.fill_(gains[0])
    model.lo.gain.data.fill_(gains[1])
    x_hat = gains[0] * amp * x + gains[1] * (1 - amp) * x  # (8, 1, 224, 64)
    assert (x_hat < 0).any() and ((x_hat > 1).any() or gains[0] < 0)
    clamped = x_hat.clamp(0, 1)
    metrics = evaluate(model, dataset, stage, batch_size=BATCH)
    assert metrics["ssim"] == pytest.approx(float(ssim(x, clamped)), abs=1e-5)
    mse = ((x.double() - clamped.double()) ** 2).mean(dim=(1, 2, 3)).numpy()  # per map
    assert metrics["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=1e-3)
    errors = target_errors(dataset, stage, x_hat)
    assert metrics["target_error"] == pytest.approx(mean_abs_error(errors, stage), rel=1e-5)
    assert stage == "amplitude" or (np.abs(errors) > np.pi).any()


@pytest.mark.parametrize(("stage", "unit"), [("amplitude", 10.0), ("phase", 0.1)])
def test_target_error_is_in_physical_units(dataset, stage, unit):
    """Without the coarse branch the error is -(1 - M) x times the map's span: over 10 dB on
    amplitude targets, over 0.1 rad on phase targets, where the maps themselves are in [0, 1]."""
    x_hat = dataset.tensors("amplitude")[0] * dataset.tensors(stage)[0]
    metrics = evaluate(known_model(keep_lo=False), dataset, stage, batch_size=BATCH)
    expected = mean_abs_error(target_errors(dataset, stage, x_hat), stage)
    assert metrics["target_error"] == pytest.approx(expected, rel=1e-5)
    assert expected > unit


def test_mask_means_on_and_off_the_targets(dataset):
    """The mask is the amplitude map: high on the cells within 40 dB of the peak, low elsewhere."""
    amp, amp_range = (t.double().numpy() for t in dataset.tensors("amplitude"))
    span = (amp_range[:, 1] - amp_range[:, 0])[:, None, None, None]
    targets = amp >= amp.max(axis=(2, 3), keepdims=True) - 40.0 / span
    metrics = evaluate(known_model(), dataset, "phase", batch_size=BATCH)
    assert metrics["mask_target"] == pytest.approx(amp[targets].mean(), rel=1e-5)
    assert metrics["mask_background"] == pytest.approx(amp[~targets].mean(), rel=1e-5)
    assert metrics["mask_target"] > 0.5 > metrics["mask_background"]


def test_one_process_gets_its_frame_means_exactly(sample_frames):
    """The reduction sums n x mean in float64, exact for a float32 mean and n = 3 frames (in
    float32, 3 x mean would round)."""
    dataset = RadarFrames(sample_frames.select(np.arange(3)))
    metrics = evaluate(known_model(), dataset, "amplitude", batch_size=BATCH)
    assert metrics["mask_mean"] == float(dataset.tensors("amplitude")[0].mean())


def test_the_ssim_window_names_the_objective(dataset):
    x = dataset.tensors("amplitude")[0].double()
    x_hat = dataset.tensors("amplitude")[0].double() * x  # the fine branch's part only
    metrics = evaluate(known_model(keep_lo=False), dataset, "amplitude", "gaussian", BATCH)
    gaussian = float(ssim(x, x_hat, window="gaussian"))
    assert metrics["loss"] == pytest.approx(1 - gaussian + 0.375, abs=1e-5)
    assert abs(gaussian - float(ssim(x, x_hat, window="box"))) > 1e-4  # the windows differ


@pytest.mark.parametrize(
    ("stage", "terms"),
    [
        ("amplitude", {"range", "vq", "target", "background", "spread", "floor"}),
        ("phase", {"range", "vq", "phase"}),
    ],
)
def test_the_radar_objective_gets_the_frames_amplitudes_and_ranges(dataset, stage, terms):
    """An exact reconstruction scores 0 on every radar term; only the VQ losses remain."""
    config = TrainConfig(objective="radar")
    metrics = evaluate(known_model(), dataset, stage, config, BATCH)
    assert {k.removeprefix("term_") for k in metrics if k.startswith("term_")} == terms
    for term in terms - {"vq"}:
        assert metrics[f"term_{term}"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["term_vq"] == pytest.approx(0.375) and metrics["loss"] == pytest.approx(0.375)
