"""A sender that keeps a few coarse codes: which it keeps, that it sends only them, and what the
shipped amplitude model keeps of the map with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmslim.codec.coarse import choose_coarse_codes
from mmslim.codec.maps import compress_maps, decompress_maps, encode_maps, fit_prior
from mmslim.data.dataset import RadarFrames, normalize
from mmslim.data.samples import sample_path
from mmslim.metrics.radar import amplitude_error_db
from mmslim.training.checkpoint import load_model


@pytest.fixture(scope="module")
def shipped(sample_frames):
    """The shipped amplitude model with every coarse code, and the sample's frames split into
    two halves of walkers: one to choose codes on, one to measure on."""
    model, _ = load_model(sample_path("pretrained", "amplitude.pt"), "amplitude")
    subjects = sample_frames.subjects()
    half = len(subjects) // 2
    return (model.with_coarse_codes(()), RadarFrames(sample_frames, subjects[:half]),
            sample_frames.of_subjects(subjects[half:]))  # fmt: skip


def test_the_codes_chosen_are_distinct_repeatable_and_as_many_as_asked(shipped):
    model, choose_on, _ = shipped
    eight = choose_coarse_codes(model, choose_on, "amplitude", 8)
    assert len(eight) == 8 and list(eight) == sorted(set(eight))
    assert choose_coarse_codes(model, choose_on, "amplitude", 8) == eight
    assert len(choose_coarse_codes(model, choose_on, "amplitude", 1)) == 1
    with pytest.raises(ValueError, match="keep between 1 and 512"):
        choose_coarse_codes(model, choose_on, "amplitude", 0)


def test_eight_coarse_codes_keep_the_map_and_cut_the_coarse_bits(shipped):
    model, choose_on, measure = shipped
    few = model.with_coarse_codes(choose_coarse_codes(model, choose_on, "amplitude", 8))
    amp = measure.amplitude[::4]
    x01 = normalize(torch.from_numpy(amp))[0][:, None]  # (N, 1, H, W) in [0, 1]
    _, lo = encode_maps(few, x01, x01)
    assert set(np.unique(lo)) <= set(few.config.coarse_codes)
    errors, sizes = [], []
    for m in (model, few):
        fit_prior(m, choose_on, "amplitude")
        data = compress_maps(m, amp, "amplitude")
        errors.append(amplitude_error_db(amp, decompress_maps(m, data)[0])["amp_mae_db"])
        sizes.append(len(data))
    assert sizes[1] < 0.9 * sizes[0]  # the coarse grid was about a third of the file
    assert errors[1] < errors[0] + 0.5  # dB: the floor's level is drawn as well
