"""SSIM and PSNR against an independent float64 numpy/scipy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from mmslim.metrics.image import psnr, ssim, ssim_loss, ssim_map

SIZE, HALF = 11, 5  # window side and half-width


def reference_ssim_map(x: np.ndarray, y: np.ndarray, window: str, data_range: float = 1.0):
    """SSIM map of two 2-D float64 arrays, written from the formula with scipy's filters.

    Filtering the whole image and keeping the positions at least HALF pixels from the border
    gives the means over windows that lie entirely inside the image (the "valid" region).
    """
    if window == "box":
        local = lambda a: ndimage.uniform_filter(a, size=SIZE)  # noqa: E731
    else:
        local = lambda a: ndimage.gaussian_filter(a, sigma=1.5, radius=HALF)  # noqa: E731
    crop = (slice(HALF, -HALF), slice(HALF, -HALF))
    mx, my = local(x)[crop], local(y)[crop]
    vx = local(x * x)[crop] - mx**2
    vy = local(y * y)[crop] - my**2
    cxy = local(x * y)[crop] - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 40, 32, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("window", ["box", "gaussian"])
def test_identical_maps_give_one(window):
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(ssim(x, x, window=window), torch.tensor(1.0), atol=1e-6)
    assert ssim_loss(x, x, window=window).abs() < 1e-6


@pytest.mark.parametrize("window", ["box", "gaussian"])
def test_ssim_matches_scipy(pair, window):
    x, y = pair
    ours = ssim_map(x, y, window=window)  # (3, 1, 30, 22)
    assert ours.shape == (3, 1, 40 - SIZE + 1, 32 - SIZE + 1)
    for b in range(3):
        ref = reference_ssim_map(x[b, 0].numpy(), y[b, 0].numpy(), window)
        np.testing.assert_allclose(ours[b, 0].numpy(), ref, rtol=0, atol=1e-10)
    per_map = ssim(x, y, window=window, reduction="none")
    assert per_map.shape == (3,)
    assert torch.allclose(ssim(x, y, window=window), per_map.mean())


@pytest.mark.parametrize("window", ["box", "gaussian"])
def test_ssim_loss_passes_its_options_on(pair, window):
    x, y = pair
    expected = 1 - ssim(x, y, window=window, reduction="none")
    assert torch.equal(ssim_loss(x, y, window=window, reduction="none"), expected)
    assert not torch.allclose(ssim(x, y, window="box"), ssim(x, y, window="gaussian"))


@pytest.mark.parametrize("window", ["box", "gaussian"])
def test_defaults_and_data_range_against_scipy(window):
    """The defaults (11 x 11, sigma 1.5, Gaussian) and the constants' data range: on dark maps
    (mean near 0) the luminance term is set by C1 = (0.01 L)^2."""
    g = torch.Generator().manual_seed(3)
    x = 0.02 * torch.rand(2, 1, 24, 20, generator=g, dtype=torch.float64)
    y = (x + 0.01 * torch.randn(x.shape, generator=g, dtype=torch.float64)).abs()
    for scale in (1.0, 255.0):
        ref = [reference_ssim_map(scale * x[b, 0].numpy(), scale * y[b, 0].numpy(), window,
                                  data_range=scale).mean() for b in range(2)]  # fmt: skip
        ours = ssim(scale * x, scale * y, window=window, data_range=scale, reduction="none")
        np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-10)
    gauss = [
        reference_ssim_map(x[b, 0].numpy(), y[b, 0].numpy(), "gaussian").mean() for b in (0, 1)
    ]
    assert ssim(x, y).item() == pytest.approx(np.mean(gauss), abs=1e-10)
    assert torch.equal(ssim_map(x, y), ssim_map(x, y, window="gaussian"))


def test_channels_are_independent(pair):
    x, y = pair
    both = ssim_map(torch.cat([x, y], 1), torch.cat([y, 1 - x], 1))  # (3, 2, H', W')
    assert torch.equal(both[:, :1], ssim_map(x, y)) and torch.equal(both[:, 1:], ssim_map(y, 1 - x))


def test_float32_close_to_float64(pair):
    x, y = pair
    s64 = ssim(x, y, window="box")
    s32 = ssim(x.float(), y.float(), window="box")
    assert abs(s64.item() - s32.item()) < 1e-5


def test_known_noise_on_flat_map():
    # Flat map plus noise of variance C2: structure term ~ C2 / (sigma^2 + C2) = 1/2 and the
    # luminance term ~ 1, so SSIM ~ 0.5 (slightly above, from the finite window).
    g = torch.Generator().manual_seed(1)
    x = torch.full((4, 1, 96, 96), 0.5, dtype=torch.float64)
    y = x + 0.03 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    assert ssim(x, y, window="box").item() == pytest.approx(0.5, abs=0.02)
    expected_psnr = 10 * np.log10(1 / 0.03**2)  # 30.46 dB
    assert psnr(x, y).item() == pytest.approx(expected_psnr, abs=0.1)


def test_data_range_scales(pair):
    x, y = pair
    assert torch.allclose(ssim(255 * x, 255 * y, data_range=255.0), ssim(x, y))
    assert torch.allclose(psnr(255 * x, 255 * y, data_range=255.0), psnr(x, y))


def test_psnr_per_map_and_identical():
    x = torch.rand(2, 1, 16, 16)
    y = x.clone()
    y[1] += 0.1  # MSE 0.01 on the second map only
    per_map = psnr(x, y, reduction="none")
    assert per_map.shape == (2,)
    assert torch.isinf(per_map[0])
    assert per_map[1].item() == pytest.approx(20.0, abs=1e-3)


def test_ssim_is_differentiable():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 1, 13, 13, generator=g, dtype=torch.float64)
    y = torch.rand(1, 1, 13, 13, generator=g, dtype=torch.float64, requires_grad=True)
    for window in ("box", "gaussian"):
        assert torch.autograd.gradcheck(lambda t, w=window: ssim(x, t, window=w), (y,))


def test_bad_arguments():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, torch.rand(1, 1, 16, 17))
    with pytest.raises(ValueError, match="same shape"):
        psnr(x[0], x[0])
    with pytest.raises(ValueError, match="window"):
        ssim(x, x, window="triangle")
    with pytest.raises(ValueError, match="reduction"):
        ssim(x, x, reduction="sum")
    with pytest.raises(ValueError, match="window size"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    for h, w in ((10, 16), (16, 10)):  # either side too small
        with pytest.raises(ValueError, match=rf"window size 11, got torch.Size\(\[{h}, {w}\]\)"):
            ssim(torch.rand(1, 1, h, w), torch.rand(1, 1, h, w))
    assert ssim_map(x[..., :11, :11], x[..., :11, :11]).shape == (1, 1, 1, 1)  # just fits
