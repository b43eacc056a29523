"""The rows bench rd measures beside the codecs: the texture-free map and the noise reference."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.bench import rd, references
from mmslim.data.dataset import load_frames
from mmslim.data.samples import sample_path


@pytest.fixture(scope="module")
def frames():
    fs = load_frames(sample_path("sample.npz"))
    return fs.select(np.isin(fs.subject, fs.subjects()[:3]) & (fs.frame < 2))  # 12 frames


def test_the_texture_free_reference_keeps_targets_and_smooths_the_floor(frames):
    from mmslim.metrics.radar import target_region

    amp = frames.amplitude[:4]
    ref = references.texture_free(amp)
    targets = target_region(amp)
    np.testing.assert_array_equal(ref[targets], amp[targets])
    floor = ~targets
    step = lambda m: np.abs(np.diff(m, axis=1))[floor[:, 1:] & floor[:, :-1]].mean()  # noqa: E731
    assert step(ref) < 0.25 * step(amp)  # cell to cell (Doppler), the texture is gone
    assert abs(ref[floor].mean() - amp[floor].mean()) < 0.5  # its level is kept (dB)
    row = rd.distortion("amplitude", amp, ref, amp)
    assert row["amp_mae_db_target"] == 0 and 0 < row["psnr_over_constant"] < 2


def test_the_noise_reference_is_seeded_white_noise_of_the_asked_size(frames):
    amp = frames.amplitude[:4]
    noisy = references.with_noise(amp, std_db=1.0, seed=3)
    np.testing.assert_array_equal(noisy, references.with_noise(amp, std_db=1.0, seed=3))
    assert not np.array_equal(noisy, references.with_noise(amp, std_db=1.0, seed=4))
    error = noisy - amp
    assert abs(error.std() - 1.0) < 0.02 and abs(error.mean()) < 0.02  # dB
    assert abs(np.corrcoef(error[:, 1:].ravel(), error[:, :-1].ravel())[0, 1]) < 0.02  # white
