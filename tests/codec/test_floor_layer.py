"""The floor layer: the floor's level per block, its texture at a step, the cells it covers (the
detail layer's complement), what it gains on the shipped model, and that a receiver with another
amplitude or a damaged layer refuses it."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import BitstreamError
from mmslim.codec.detail import choose_thresholds, detail_cells
from mmslim.codec.floor_layer import block_index, decode_floor, encode_floor, refine_floor
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.data.samples import sample_path
from mmslim.training.checkpoint import load_model


@pytest.fixture(scope="module")
def frames():
    """(original, decoded) amplitude in dB: a Rayleigh floor whose level falls along range, a
    few strong cells, and a 'decoded' map with a smooth floor 3 dB too high."""
    rng = np.random.default_rng(0)
    n, h, w = 6, 48, 16
    level = -80.0 - np.linspace(0, 10, w)[None, None, :]  # (1, 1, W) dB
    power = rng.exponential(1.0, size=(n, h, w))
    orig = (level + 10 * np.log10(power)).astype(np.float32)
    orig[:, 20:23, 4:9] += rng.uniform(40, 60, size=(n, 3, 5)).astype(np.float32)
    hat = (level - 2.5 + 3.0 + rng.normal(0, 0.5, size=(n, h, w))).astype(np.float32)
    hat[:, 20:23, 4:9] = orig[:, 20:23, 4:9] + 1.0
    return orig, hat


def _block_means(maps, cells, blocks):
    return np.array([[maps[k][cells[k] & (blocks == b)].mean() for b in range(blocks.max() + 1)]
                     for k in range(len(maps))])  # fmt: skip


def test_the_blocks_tile_any_frame():
    blocks = block_index((50, 17), (8, 2))
    assert blocks.min() == 0 and blocks.max() == 15
    sizes = np.bincount(blocks.ravel())
    assert sizes.sum() == 50 * 17 and sizes.min() >= 6 * 8  # near-even blocks


def test_the_level_layer_puts_each_block_at_the_originals_mean_within_half_a_step(frames):
    orig, hat = frames
    for step in (0.5, 1.0, 2.0):
        data = encode_floor(orig, hat, level_step=step)
        cells, values = decode_floor(data, hat)
        blocks = block_index(orig.shape[1:], (8, 2))
        gap = _block_means(values, cells, blocks) - _block_means(orig, cells, blocks)
        assert np.abs(gap).max() <= step / 2 + 1e-4
        # level only: the decoded floor keeps its shape, shifted per block
        shift = values - hat
        for k in range(len(hat)):
            for b in range(16):
                s = shift[k][cells[k] & (blocks == b)]
                assert np.ptp(s) < 1e-4
    assert abs(_block_means(hat, cells, blocks) - _block_means(orig, cells, blocks)).mean() > 2


def test_the_floor_is_every_cell_the_detail_layer_leaves(frames):
    orig, hat = frames
    cells, _ = decode_floor(encode_floor(orig, hat, within_db=30), hat)
    np.testing.assert_array_equal(cells, ~detail_cells(hat, choose_thresholds(hat, 30)))
    refined = refine_floor(np.full_like(hat, 7.0), encode_floor(orig, hat, within_db=30), hat)
    np.testing.assert_array_equal(refined[~cells], 7.0)  # the strong cells are left alone


def test_a_finer_texture_step_costs_more_and_leaves_less_error(frames):
    orig, hat = frames
    sizes, errors = [], []
    for step in (0, 12, 6, 3, 1):
        data = encode_floor(orig, hat, texture_step=step)
        cells, values = decode_floor(data, hat)
        sizes.append(len(data))
        errors.append(float(np.mean((values - orig)[cells] ** 2)))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.2 * errors[0]
    # with texture the floor's error is at most one step per cell (the dead zone is one step)
    data = encode_floor(orig, hat, texture_step=3)
    cells, values = decode_floor(data, hat)
    assert np.abs(values - orig)[cells].max() < 3 + 1.0  # + the level's rounding, half a dB


def test_the_layer_is_the_same_bytes_every_time_and_survives_float_rounding(frames):
    orig, hat = frames
    data = encode_floor(orig, hat, texture_step=6)
    assert encode_floor(orig.copy(), hat.copy(), texture_step=6) == data
    rng = np.random.default_rng(1)
    wobbled = hat + rng.uniform(-1e-3, 1e-3, size=hat.shape).astype(np.float32)
    a, b = decode_floor(data, hat), decode_floor(data, wobbled)
    np.testing.assert_array_equal(a[0], b[0])
    assert np.abs(a[1] - b[1])[a[0]].max() < 1e-2


def test_a_receiver_with_another_amplitude_or_a_damaged_layer_refuses_it(frames):
    orig, hat = frames
    data = encode_floor(orig, hat, texture_step=6)
    other = hat.copy()
    other[3] -= 100  # frame 3 decoded otherwise: another threshold, so another count of cells
    other[3, 0, 0] = hat[3].max() + 1
    with pytest.raises(BitstreamError, match="frame 3"):
        decode_floor(data, other)
    with pytest.raises(BitstreamError, match="frames of"):
        decode_floor(data, hat[:2])
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x10
    with pytest.raises(BitstreamError, match="CRC"):
        decode_floor(bytes(damaged), hat)
    with pytest.raises(BitstreamError):
        decode_floor(data[:20], hat)


def test_bad_arguments_name_the_problem(frames):
    orig, hat = frames
    with pytest.raises(ValueError, match="texture_step"):
        encode_floor(orig, hat, texture_step=0.1)
    with pytest.raises(ValueError, match="level_step"):
        encode_floor(orig, hat, level_step=0)
    with pytest.raises(ValueError, match="does not fit"):
        encode_floor(orig, hat, grid=(100, 2))
    with pytest.raises(ValueError, match="same"):
        encode_floor(orig, hat[:, :10])


def test_on_the_shipped_model_the_level_layer_puts_the_floor_at_its_level(sample_frames):
    model, state = load_model(sample_path("pretrained", "amplitude.pt"), "amplitude")
    amp = sample_frames.of_subjects(state["split"]["val"]).amplitude[::8]  # held-out walkers
    file = compress_maps(model, amp, "amplitude")
    amp_hat, _ = decompress_maps(model, file)
    data = encode_floor(amp, amp_hat)
    cells, _ = decode_floor(data, amp_hat)
    refined = refine_floor(amp_hat, data, amp_hat)

    def frame_bias(maps):  # per frame, the mean error on the floor cells, dB
        return np.array([(m - a)[c].mean() for m, a, c in zip(maps, amp, cells)])

    before, after = frame_bias(amp_hat), frame_bias(refined)
    assert np.abs(before).mean() > 1.0 and np.abs(after).mean() < 0.3
    assert 8 * len(data) / amp.size < 0.02  # bits per element the layer adds
    # with texture, each frame's squared error falls below that of a constant map
    textured = refine_floor(amp_hat, encode_floor(amp, amp_hat, texture_step=12), amp_hat)
    constant = amp.mean(axis=(1, 2), keepdims=True)
    assert ((textured - amp) ** 2).mean() < 0.8 * ((constant - amp) ** 2).mean()
