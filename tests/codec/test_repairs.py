"""The repair list: the cells it lists (misses, lost and invented detections), what the receiver
puts there, what it gains on the shipped model, and that a damaged list or one for other frames
is refused."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import BitstreamError
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.codec.repairs import apply_repairs, choose_repairs, decode_repairs, encode_repairs
from mmslim.data.samples import sample_path
from mmslim.metrics.radar import amplitude_metrics, ca_cfar, cfar_threshold_db
from mmslim.training.checkpoint import load_model


@pytest.fixture(scope="module")
def frames():
    """(original, decoded) amplitude in dB: a Rayleigh floor with two strong targets; the decoded
    map misses the second target and invents a peak where the original has none."""
    rng = np.random.default_rng(0)
    n, h, w = 4, 64, 32
    orig = (10 * np.log10(rng.exponential(1.0, size=(n, h, w))) - 80).astype(np.float32)
    orig[:, 20, 8] += 60
    orig[:, 44, 24] += 45
    decoded = orig + rng.normal(0, 0.3, size=orig.shape).astype(np.float32)
    decoded[:, 44, 24] = -80  # missed: drawn as floor
    decoded[:, 10, 28] = -30  # invented: a peak the original does not have
    return orig, decoded


def test_the_list_holds_the_misses_and_the_detections_decided_otherwise(frames):
    orig, decoded = frames
    listed, _ = choose_repairs(orig, decoded)
    assert listed[:, 44, 24].all()  # the missed target (and a lost detection)
    assert listed[:, 10, 28].all()  # the invented peak
    assert listed.sum() <= 4 * len(orig)  # little else
    repaired = apply_repairs(decoded, encode_repairs(orig, decoded))
    np.testing.assert_array_equal(ca_cfar(repaired), ca_cfar(orig))
    assert np.abs(repaired[:, 44, 24] - orig[:, 44, 24]).max() <= 0.5  # whole dB steps
    # the invented peak is put 1 dB or more below the detector's threshold
    threshold = cfar_threshold_db(repaired)[:, 10, 28]
    assert (repaired[:, 10, 28] <= threshold - 1 + 0.5).all()
    unlisted = ~decode_repairs(encode_repairs(orig, decoded), decoded)[0]
    np.testing.assert_array_equal(repaired[unlisted], decoded[unlisted])


def test_misses_are_listed_from_error_db_low_and_only_inside_the_target_region(frames):
    orig, _ = frames
    decoded = orig.copy()
    decoded[:, 20, 8] -= 4.0  # a target cell 4 dB low: listed by default (3 dB), not at 6 dB
    decoded[:, 44, 24] -= 2.0  # the other target, 2 dB low: not listed
    decoded[:, 5, 5] -= 20.0  # a floor cell far below the peak: not a miss
    listed, _ = choose_repairs(orig, decoded, detectors=())
    assert listed[:, 20, 8].all() and not listed[:, 44, 24].any() and not listed[:, 5, 5].any()
    assert listed.sum() == len(orig)  # nothing else
    assert not choose_repairs(orig, decoded, error_db=6.0, detectors=())[0].any()


def test_a_detection_the_brighter_neighbourhood_hides_is_raised_above_the_threshold(frames):
    orig, _ = frames
    decoded = orig.copy()
    decoded[:, 30:59, 14:32] += 40.0  # the decoder draws the second target's surroundings bright
    decoded[:, 44, 24] = orig[:, 44, 24]  # but the target itself right
    assert not ca_cfar(decoded)[:, 44, 24].any()  # so CA-CFAR no longer finds it
    repaired = apply_repairs(decoded, encode_repairs(orig, decoded))
    assert ca_cfar(repaired)[:, 44, 24].all()
    assert (repaired[:, 44, 24] >= cfar_threshold_db(repaired)[:, 44, 24] + 0.5).all()
    assert (repaired[:, 44, 24] > orig[:, 44, 24]).all()  # above the original's value


def test_exact_repairs_keep_exactly_the_original_detections(frames):
    orig, _ = frames
    decoded = orig.copy()
    decoded[:, 19:22, 7:10] = orig[:, 20:21, 8:9]  # the target drawn three cells wide
    detected = ca_cfar(decoded)
    assert (detected & ~ca_cfar(orig)).any()  # detections next to the original's one
    near = apply_repairs(decoded, encode_repairs(orig, decoded))
    exact = apply_repairs(decoded, encode_repairs(orig, decoded, exact=True))
    assert not np.array_equal(ca_cfar(near), ca_cfar(orig))  # forgiven within a cell
    np.testing.assert_array_equal(ca_cfar(exact), ca_cfar(orig))


def test_a_list_of_every_cell_decodes_too():
    rng = np.random.default_rng(2)
    orig = rng.uniform(-30, 0, size=(1, 8, 8)).astype(np.float32)
    decoded = orig - 30  # every cell is within 40 dB of the peak and 30 dB low
    listed, _ = decode_repairs(encode_repairs(orig, decoded, detectors=()), decoded)
    assert listed.all()


def test_nothing_is_listed_when_the_decoded_map_is_the_original(frames):
    orig, _ = frames
    listed, symbols = choose_repairs(orig, orig)
    assert not listed.any() and not symbols.any()
    data = encode_repairs(orig, orig)
    np.testing.assert_array_equal(apply_repairs(orig, data), orig)
    assert len(data) < 64  # head, two small tables, an almost empty payload, CRC


def test_the_list_is_the_same_bytes_every_time_and_values_follow_the_step(frames):
    orig, decoded = frames
    data = encode_repairs(orig, decoded)
    assert encode_repairs(orig.copy(), decoded.copy()) == data
    for step in (0.5, 2.0, 4.0):
        listed, values = decode_repairs(encode_repairs(orig, decoded, step=step), decoded)
        missed = listed & (orig - decoded > 3)
        error = np.abs(apply_repairs(decoded, encode_repairs(orig, decoded, step=step)) - orig)
        assert missed.any() and error[missed].max() <= step / 2 + 1e-4


def test_a_damaged_list_or_one_for_other_frames_is_refused(frames):
    orig, decoded = frames
    data = encode_repairs(orig, decoded)
    with pytest.raises(BitstreamError, match="frames of"):
        decode_repairs(data, decoded[:2])
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01
    with pytest.raises(BitstreamError, match="CRC"):
        decode_repairs(bytes(damaged), decoded)
    with pytest.raises(BitstreamError):
        decode_repairs(data[:30], decoded)
    with pytest.raises(ValueError, match="same"):
        encode_repairs(orig, decoded[:, :10])
    with pytest.raises(ValueError, match="step"):
        encode_repairs(orig, decoded, step=0)


def test_on_the_shipped_model_the_list_sets_the_detections_right_for_a_few_bytes(sample_frames):
    model, state = load_model(sample_path("pretrained", "amplitude.pt"), "amplitude")
    amp = sample_frames.of_subjects(state["split"]["val"]).amplitude[::8]  # held-out walkers
    file = compress_maps(model, amp, "amplitude")
    decoded, _ = decompress_maps(model, file)
    data = encode_repairs(amp, decoded)
    before = amplitude_metrics(amp, decoded)
    after = amplitude_metrics(amp, apply_repairs(decoded, data))
    assert after["cfar_precision"] > before["cfar_precision"]
    assert after["cfar_recall"] > before["cfar_recall"]
    assert after["cfar_f1"] > before["cfar_f1"] + 0.01
    assert 8 * len(data) / amp.size < 0.03  # bits per element the list adds (20 frames)
