"""The radar objective's terms (mmslim.nn.losses): each is zero for a perfect reconstruction and
grows with the error it is there for; the rate estimate is the code length an entropy coder pays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmslim.config import TrainConfig
from mmslim.metrics.radar import ca_cfar
from mmslim.nn.losses import (
    LossContext,
    background_level_error,
    background_spread_error,
    cfar_error,
    cfar_margin_db,
    dilate,
    floor_error,
    loss_terms,
    phase_error,
    soft_bits,
    split_loss,
    target_error,
    target_mask,
)

H, W = 32, 16


def _scene(seed: int = 0) -> torch.Tensor:
    """(2, 1, H, W) dB: a noise floor about 20 dB and a 4 x 2 target 50 dB above it."""
    gen = torch.Generator().manual_seed(seed)
    power = -torch.log(torch.rand(2, 1, H, W, generator=gen))  # exponential: thermal noise
    db = 20.0 + 10.0 * torch.log10(power)
    db[:, :, 10:14, 6:8] = 70.0
    return db


def _targets(db: torch.Tensor) -> torch.Tensor:
    lo, hi = db.amin(dim=(1, 2, 3)), db.amax(dim=(1, 2, 3))
    amp01 = (db - lo.view(-1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1)
    return target_mask(amp01, torch.stack([lo, hi], 1), 40.0)


def test_target_mask_is_the_metrics_target_region():
    db = _scene()
    targets = _targets(db)
    assert targets[:, :, 10:14, 6:8].all() and targets.sum() == 2 * 4 * 2


@pytest.mark.parametrize("error_db", [1.0, 5.0])
def test_target_error_counts_target_cells_only(error_db):
    db = _scene()
    targets = _targets(db)
    assert target_error(torch.zeros_like(db), targets) == 0
    on_target = targets * error_db
    assert target_error(on_target, targets) == pytest.approx(error_db / 10)  # units of 10 dB
    assert target_error((1 - targets) * 30.0, targets) == 0  # floor errors are not its business


def test_floor_error_counts_the_floor_only_and_prefers_its_median():
    db = _scene()
    targets = _targets(db)
    assert floor_error(torch.zeros_like(db), targets) == 0
    assert floor_error(targets * 30.0, targets) == 0  # target errors are not its business
    floor = 1 - dilate(targets, 2)
    cells = db[floor.bool()]
    at_median = floor_error((cells.median() - db) * floor, targets)
    at_mean = floor_error((cells.mean() - db) * floor, targets)
    smooth_plus_5 = floor_error((cells.median() + 5 - db) * floor, targets)
    assert at_median < at_mean < smooth_plus_5  # |error| is smallest at the median


def test_background_level_sees_the_local_power_not_the_texture():
    db = _scene()
    assert background_level_error(db, db) == 0
    other_texture = _scene(seed=1)  # same statistics, other noise
    shifted = db + 3.0
    assert background_level_error(db, shifted) == pytest.approx(0.3, abs=1e-4)  # 3 dB / 10
    assert background_level_error(db, other_texture) < 0.2 * background_level_error(db, shifted)


def test_background_spread_grows_with_invented_texture():
    db = _scene()
    assert background_spread_error(db, db) == pytest.approx(0, abs=1e-3)
    smooth = torch.full_like(db, 18.0)
    spiky = db + 6.0 * torch.randn(db.shape, generator=torch.Generator().manual_seed(2))
    assert background_spread_error(db, spiky) > 0.1
    assert background_spread_error(db, smooth) > 0.3  # no texture at all is a spread error too


def test_split_loss_rewards_a_mask_that_says_zero_and_one():
    targets = _targets(_scene())
    right = split_loss(targets * 0.98 + 0.01, targets)
    unsure = split_loss(torch.full_like(targets, 0.5), targets)
    wrong = split_loss(1 - targets * 0.98 - 0.01, targets)
    assert float(unsure) == pytest.approx(math.log(2))
    assert right < 0.02 < unsure < wrong


def test_phase_error_ignores_noise_cells():
    weight = torch.zeros(1, 1, H, W)
    weight[:, :, 10:14, 6:8] = 1.0
    err = torch.zeros(1, 1, H, W)
    assert phase_error(err, weight) == 0
    err_noise = (1 - weight) * 3.0  # wrong phase everywhere but on the target
    assert phase_error(err_noise, weight) == 0
    assert phase_error(weight * math.pi, weight) == pytest.approx(2.0)  # opposite phase
    assert phase_error(weight * 0.5, weight) == pytest.approx(1 - math.cos(0.5))


def test_soft_bits_is_the_empirical_code_length_and_has_a_gradient():
    gen = torch.Generator().manual_seed(0)
    codewords = torch.randn(8, 4, generator=gen)
    p = torch.tensor([0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.03, 0.02])
    indices = torch.multinomial(p, 3 * 5 * 7, replacement=True, generator=gen).view(3, 5, 7)
    z = codewords[indices].permute(0, 3, 1, 2) + 0.3 * torch.randn(3, 4, 5, 7, generator=gen)
    z.requires_grad_(True)
    bits = soft_bits(z, codewords, indices, smoothing=0.0)
    counts = torch.bincount(indices.reshape(-1), minlength=8).double()
    freq = counts[counts > 0] / counts.sum()
    empirical = -(counts[counts > 0] * torch.log2(freq)).sum()  # N x empirical entropy
    assert bits.item() == pytest.approx(float(empirical), rel=1e-5)
    bits.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_rate_weight_zero_leaves_the_loss_unchanged():
    x = torch.rand(2, 1, H, W, generator=torch.Generator().manual_seed(3))
    out = {"x_hat": x * 0.9, "vq_loss": torch.tensor(0.1)}
    context = LossContext(x, torch.tensor([[0.0, 60.0]] * 2), torch.tensor([[0.0, 60.0]] * 2))
    config = TrainConfig(objective="radar", rate_weight=0.0)
    plain = loss_terms(x, out, config, context)["loss"]
    with_rate = loss_terms(x, {**out, "rate_bits": torch.tensor(1e4)}, config, context)
    assert with_rate["loss"] == plain  # exactly: 0 x rate
    assert with_rate["rate"] == pytest.approx(1e4 / x.numel())
    weighted = loss_terms(x, {**out, "rate_bits": torch.tensor(1e4)}, TrainConfig(
        objective="radar", rate_weight=2.0), context)["loss"]  # fmt: skip
    assert float(weighted - plain) == pytest.approx(2.0 * 1e4 / x.numel(), rel=1e-5)


def test_every_radar_term_is_zero_for_a_perfect_reconstruction():
    db = _scene()
    lo, hi = db.amin(dim=(1, 2, 3)), db.amax(dim=(1, 2, 3))
    x = (db - lo.view(-1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1)
    rng = torch.stack([lo, hi], 1)
    out = {"x_hat": x.clone(), "vq_loss": torch.tensor(0.0)}
    terms = loss_terms(x, out, TrainConfig(objective="radar"), LossContext(x, rng, rng))
    for name in ("target", "background", "floor", "range"):
        assert float(terms[name]) == pytest.approx(0, abs=1e-5), name
    assert float(terms["spread"]) == pytest.approx(0, abs=1e-3)


def test_soft_bits_gives_latents_not_sent_no_gradient():
    gen = torch.Generator().manual_seed(1)
    codewords = torch.randn(8, 4, generator=gen)
    indices = torch.randint(8, (2, 3, 5), generator=gen)
    z = torch.randn(2, 4, 3, 5, generator=gen, requires_grad=True)
    sent = torch.rand(2, 3, 5, generator=gen) < 0.5
    bits = soft_bits(z, codewords, indices, sent=sent)
    assert bits.item() == pytest.approx(soft_bits(z, codewords, indices).item())  # same count
    bits.backward()
    moved = z.grad.abs().sum(dim=1) > 0  # (2, 3, 5)
    assert torch.equal(moved, sent)


def test_cfar_margin_decides_as_the_metric_does_inside_the_range_edges(sample_frames):
    db = sample_frames.amplitude[:6]  # (6, 224, 64) dB
    margin = cfar_margin_db(torch.from_numpy(db)[:, None].double())[:, 0].numpy()
    detected = ca_cfar(db)
    inside = slice(6, -6)  # the loss mirrors range at its edges, the metric drops those cells
    assert detected[:, :, inside].sum() > 50
    assert np.array_equal(margin[:, :, inside] > 0, detected[:, :, inside])


def test_cfar_error_is_zero_when_every_cell_keeps_its_side_and_grows_otherwise():
    db = _scene()
    assert cfar_error(db, db) == 0
    assert cfar_error(db, db - 0.5 * (db < 60)) == 0  # the floor 0.5 dB lower: no side changes
    weaker = db.clone()
    weaker[:, :, 10:14, 6:8] -= 40.0  # the target sinks into the floor: detections lost
    spike = db.clone()
    spike[:, :, 24, 3] = 70.0  # a false alarm where the original has noise
    lost, alarm = cfar_error(db, weaker), cfar_error(db, spike)
    assert lost > 0 and alarm > 0
    assert cfar_error(db, db - 20.0 * (db >= 60)) < lost  # half as deep, less lost
    smeared = db.clone()  # the target's power spread into CFAR's training ring
    smeared[:, :, 2:6, 6:8] = 68.0
    assert cfar_error(db, smeared) > 0
    lo, hi = db.amin(dim=(1, 2, 3)), db.amax(dim=(1, 2, 3))
    x = (db - lo.view(-1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1)
    rng = torch.stack([lo, hi], 1)
    context = LossContext(x, rng, rng)
    out = {"x_hat": x.clone(), "vq_loss": torch.tensor(0.0)}
    assert "cfar" not in loss_terms(x, out, TrainConfig(objective="radar"), context)
    terms = loss_terms(x, out, TrainConfig(objective="radar", cfar_weight=1.0), context)
    assert float(terms["cfar"]) == pytest.approx(0, abs=1e-5)
    out["x_hat"] = (spike - lo.view(-1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1)
    terms = loss_terms(x, out, TrainConfig(objective="radar", cfar_weight=1.0), context)
    assert float(terms["cfar"]) == pytest.approx(float(alarm), rel=1e-4)
