"""The model-level codec: compress/decompress round trips are exact, and files know their model."""

import copy
import re

import numpy as np
import pytest
import torch

from mmslim.codec import BitstreamError, rate_report, read_header
from mmslim.codec.floor import restore_floor, seed_of
from mmslim.codec.header import Expected
from mmslim.codec.maps import compress_maps, decompress_maps, encode_maps, expected_of, fit_prior
from mmslim.codec.prior import IndexPrior
from mmslim.config import ModelConfig
from mmslim.data.arrays import DataError
from mmslim.data.dataset import RadarFrames, denormalize, load_frames
from mmslim.data.samples import sample_path
from mmslim.export.backends import backend_for
from mmslim.nn import MMSlim

SAMPLE = sample_path("sample.npz")
TINY = ModelConfig.preset("tiny")


@pytest.fixture(scope="module")
def frames():
    fs = load_frames(SAMPLE)
    return fs.select(np.isin(fs.subject, fs.subjects()[:2]) & (fs.frame < 3))  # 12 frames


@pytest.fixture(scope="module")
def model(frames):
    torch.manual_seed(0)
    m = MMSlim(TINY).eval()
    fit_prior(m, RadarFrames(frames), "amplitude")
    return m


@pytest.mark.parametrize("mode", ["ans", "huffman", "fixed"])
@pytest.mark.parametrize("batch", [1, 5])
def test_decompress_of_compress_equals_eval_forward(model, frames, mode, batch):
    x = RadarFrames(frames).tensors("amplitude")[0][:batch]  # (B, 1, 224, 64)
    with torch.no_grad():
        expected = model(x)["x_hat"]
        packed = model.compress(x, mode=mode)
        assert len(packed["strings"]) == batch and packed["shape"] == (224, 64)
        x_hat = model.decompress(packed["strings"], packed["shape"], mode=mode)["x_hat"]
    assert torch.equal(x_hat, expected)


def test_phase_round_trip_uses_the_amplitude_mask(model, frames):
    ds = RadarFrames(frames)
    phase, amp = ds.tensors("phase")[0][:3], ds.tensors("amplitude")[0][:3]
    with torch.no_grad():
        expected = model(phase, mask_source=amp)["x_hat"]
        packed = model.compress(phase, mask_source=amp)
        assert torch.equal(model.decompress(**packed)["x_hat"], expected)


def test_file_round_trip_in_physical_units_and_honest_rate(model, frames):
    data = compress_maps(model, frames.amplitude, "amplitude")
    maps, decoded = decompress_maps(model, data)
    assert maps.shape == frames.amplitude.shape and maps.dtype == np.float32
    ds = RadarFrames(frames)
    x, ranges = ds.tensors("amplitude")
    with torch.no_grad():
        x_hat = model(x)["x_hat"][:, 0].clamp(0, 1)
    expected = denormalize(x_hat, ranges[:, 0], ranges[:, 1]).numpy()
    np.testing.assert_array_equal(maps, expected)
    np.testing.assert_array_equal(decoded.side, ranges.numpy())  # side info is exact
    report = rate_report(data, frames.amplitude.size, model.prior, model.fingerprint())
    assert report.file_bits == len(data) * 8
    assert report.bits_per_element == pytest.approx(len(data) * 8 / frames.amplitude.size)
    assert read_header(data).kind == "amplitude"


def test_file_from_another_model_is_refused(model, frames):
    data = compress_maps(model, frames.amplitude[:2], "amplitude")
    torch.manual_seed(1)
    other = MMSlim(TINY).eval()
    other.prior = model.prior
    with pytest.raises(BitstreamError, match="load the matching checkpoint"):
        decompress_maps(other, data)


def test_fingerprint_follows_weights_and_prior(model):
    fp = model.fingerprint()
    assert len(fp) == 8 and fp == model.fingerprint()
    saved = model.prior.counts_lo.clone()
    model.prior.counts_lo[0] += 1
    try:
        assert model.fingerprint() != fp
    finally:
        model.prior.counts_lo.copy_(saved)
    assert model.fingerprint() == fp


def test_refusals(frames):
    bare = MMSlim(TINY).eval()
    x = RadarFrames(frames).tensors("amplitude")[0][:1]
    with pytest.raises(ValueError, match="prior is not fitted"):
        bare.compress(x)
    assert len(bare.compress(x, mode="fixed")["strings"]) == 1  # fixed needs no prior
    with pytest.raises(ValueError, match="needs the amplitude maps"):
        compress_maps(bare, frames.phase[:1], "phase", mode="fixed")


@pytest.mark.parametrize(("shift", "side"), [(100.0, 1), (-100.0, 0)])
def test_decompressed_maps_stay_within_each_frames_min_and_max(model, frames, shift, side):
    """A decoder whose output leaves [0, 1] (here pushed 100 above or below it) is clamped
    before de-normalising: every cell lands on its frame's max (or min), never beyond it."""
    shifted = copy.deepcopy(model)
    last = [m for m in shifted.hi.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
    with torch.no_grad():
        last.bias += shift  # the decoder's last layer: every output cell moves by ``shift``
    data = compress_maps(shifted, frames.amplitude[:3], "amplitude", "fixed")
    maps, decoded = decompress_maps(shifted, data)
    bound = np.broadcast_to(decoded.side[:, side, None, None], maps.shape)  # (3, 224, 64)
    np.testing.assert_allclose(maps, bound, rtol=0, atol=1e-4)
    assert (maps >= decoded.side[:, 0, None, None]).all()
    assert (maps <= decoded.side[:, 1, None, None]).all()


class _Recorder(torch.nn.Module):
    """A stand-in model that records what encode_maps hands to ``encode``: its indices are the
    input's first value (hi) and the mask source's (lo)."""

    def __init__(self, device: str = "cpu", num_codes: int = 4):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1, device=device))
        self.prior = IndexPrior(num_codes)
        self.calls = []

    def encode(self, x, src, also_sent=None):
        self.calls.append((x, src))
        if x.device.type == "meta":
            zeros = torch.zeros(len(x), 1, dtype=torch.int64)
            return {"indices_hi": zeros, "indices_lo": zeros}
        lo = torch.zeros(len(x), 1) if src is None else src.flatten(1)[:, :1]
        return {"indices_hi": x.flatten(1)[:, :1].long(), "indices_lo": lo.long()}


def test_encode_maps_batches_in_order_with_the_mask_source():
    x = torch.arange(12.0).reshape(12, 1, 1, 1)
    recorder = _Recorder().train()
    hi, lo = encode_maps(recorder, x, x + 100, batch_size=5)
    assert not recorder.training
    assert [len(a) for a, _ in recorder.calls] == [5, 5, 2]
    assert torch.equal(torch.cat([a for a, _ in recorder.calls]), x)
    assert torch.equal(torch.cat([b for _, b in recorder.calls]), x + 100)
    assert hi.dtype == np.int64 and hi.tolist() == [[i] for i in range(12)]
    assert lo.tolist() == [[i + 100] for i in range(12)]
    recorder = _Recorder()
    encode_maps(recorder, torch.zeros(65, 1, 1, 1), None)  # 64 frames a batch by default
    assert [(len(a), b) for a, b in recorder.calls] == [(64, None), (1, None)]


def test_encode_maps_moves_the_maps_to_the_model():
    recorder = _Recorder("meta")
    x = torch.zeros(3, 1, 1, 1)
    encode_maps(recorder, x, x)
    ((a, b),) = recorder.calls
    assert a.device.type == "meta" and b.device.type == "meta"


def test_fit_prior_counts_the_stage_with_the_amplitude_as_mask_source():
    class Frames:
        def tensors(self, stage):
            values = {"phase": [0, 1, 1, 1], "amplitude": [2, 2, 3, 0]}[stage]
            return torch.tensor(values, dtype=torch.float32).reshape(4, 1, 1, 1), None

    recorder = _Recorder()
    prior = fit_prior(recorder, Frames(), "phase")
    assert prior is recorder.prior
    np.testing.assert_array_equal(prior.counts_hi, [2, 4, 1, 1])  # add-one smoothing
    np.testing.assert_array_equal(prior.counts_lo, [2, 1, 3, 2])


def test_a_frame_shape_the_model_cannot_decode_is_named(model):
    with pytest.raises(ValueError, match=r"^frame_shape \(50, 64\) cannot be decoded: "):
        expected_of(model, (50, 64))


def test_expected_of_field_by_field():
    model = MMSlim(TINY)
    assert expected_of(model, (64, 32), "phase", b"12345678") == Expected(
        fingerprint=b"12345678",
        num_codes=64,
        kind="phase",
        frame_shape=(64, 32),
        shape_hi=(16, 8),
        shape_lo=(4, 2),
    )
    assert expected_of(model) == Expected(
        fingerprint=model.fingerprint(),
        num_codes=64,
        frame_shape=(224, 64),
        shape_hi=(56, 16),
        shape_lo=(14, 4),
    )


def test_decompress_maps_checks_what_the_receiver_knows(model, frames, capsys):
    data = compress_maps(model, frames.amplitude[:5], "amplitude", "fixed", first_sequence=7)
    maps, _ = decompress_maps(model, data, kind="amplitude", first_sequence=7)
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    compress_maps(model, frames.amplitude[:5], "amplitude", "fixed", progress=True)
    err = capsys.readouterr().err
    assert "compress amplitude: 100%" in err and ("batch/s" in err or "s/batch" in err)
    decompress_maps(model, data, progress=True)
    err = capsys.readouterr().err
    assert "decompress: 100%" in err and ("batch/s" in err or "s/batch" in err)
    with pytest.raises(BitstreamError, match="phase"):
        decompress_maps(model, data, kind="phase")
    with pytest.raises(BitstreamError) as error:
        decompress_maps(model, data, first_sequence=0)
    assert error.value.field == "first_sequence"
    backend = backend_for(model, "torch")
    small = copy.copy(backend)
    small.batch_size = 2  # 5 frames in batches of 2, 2 and 1 (equal up to float rounding)
    batches = []
    small.decode = lambda hi, lo: batches.append(len(hi)) or backend.decode(hi, lo)
    np.testing.assert_allclose(decompress_maps(model, data, backend=small)[0], maps, atol=1e-4)
    assert batches == [2, 2, 1]
    del small.decode
    np.testing.assert_allclose(
        decompress_maps(
            model, compress_maps(model, frames.amplitude[:5], "amplitude", "fixed", backend=small)
        )[0],
        decompress_maps(model, compress_maps(model, frames.amplitude[:5], "amplitude", "fixed"))[0],
        atol=1e-4,
    )


def test_a_decoder_of_the_wrong_frame_shape_is_refused(model, frames):
    data = compress_maps(model, frames.amplitude[:2], "amplitude", "fixed")
    backend = backend_for(model, "torch")
    cropped = copy.copy(backend)
    cropped.decode = lambda hi, lo: backend.decode(hi, lo)[..., :-1]  # (b, 1, 224, 63)
    with pytest.raises(BitstreamError, match=r"model decodes to \(224, 63\)") as error:
        decompress_maps(model, data, backend=cropped)
    assert error.value.field == "frame_shape"


def test_phase_maps_are_returned_as_decoded_whatever_the_floor(model, frames):
    data = compress_maps(
        model, frames.phase[:2], "phase", "fixed", mask_source=frames.amplitude[:2]
    )
    decoded = decompress_maps(model, data)[0]
    for floor in ("smooth", "noise"):
        np.testing.assert_array_equal(decompress_maps(model, data, floor=floor)[0], decoded)


def test_compress_maps_header_and_refusals_word_for_word(model, frames):
    maps = frames.amplitude[:2]
    header = read_header(compress_maps(model, maps, "amplitude"))
    assert (header.mode, header.kind, header.first_sequence, header.tagged) == (
        "ans",
        "amplitude",
        0,
        False,
    )
    assert (header.num_codes, header.frame_shape, header.fingerprint) == (
        model.prior.num_codes,
        (224, 64),
        model.fingerprint(),
    )
    assert (header.shape_hi, header.shape_lo, header.num_frames) == ((56, 16), (14, 4), 2)
    tagged = compress_maps(model, maps, "amplitude", "fixed", key=b"k" * 16, first_sequence=9)
    header = read_header(tagged)
    assert (header.mode, header.first_sequence, header.tagged) == ("fixed", 9, True)
    message = "compressing phase needs the amplitude maps (mask_source) for the mask"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        compress_maps(model, frames.phase[:2], "phase")
    message = (
        "frames of 40 x 64: expected H and W positive and divisible by 16, got 40 x 64; "
        "crop or pad them"
    )
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        compress_maps(model, maps[:, :40], "amplitude")
    message = "amplitude maps (1, 224, 64) do not match the phase maps (2, 224, 64)"
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        compress_maps(model, frames.phase[:2], "phase", mask_source=maps[:1])
    with pytest.raises(DataError, match=r"^mask_source \(amplitude\): frame 0 is constant"):
        compress_maps(model, frames.phase[:2], "phase", mask_source=np.ones((2, 224, 64)))


def test_phase_is_coded_with_the_amplitude_mask(model, frames):
    """The sender graph gets each batch's phase and, as its mask source, the same frames'
    amplitude, both normalised to [0, 1]."""
    phase, amp = frames.phase[:5], frames.amplitude[:5]
    backend = backend_for(model, "torch")
    seen = []

    def encode(x01, src, also_sent=None):
        seen.append((x01, src))
        return backend.encode(x01, src, also_sent)

    recorder = copy.copy(backend)
    recorder.encode, recorder.batch_size = encode, 2
    compress_maps(model, phase, "phase", "fixed", mask_source=amp, backend=recorder)
    ds = RadarFrames(frames.select(np.arange(len(frames)) < 5))
    want_x, want_src = ds.tensors("phase")[0].numpy(), ds.tensors("amplitude")[0].numpy()
    # batches run side by side on a pool, so they may arrive in any order: place each by its
    # first frame
    starts = [next(i for i in range(5) if np.array_equal(x[0], want_x[i])) for x, _ in seen]
    seen = [seen[k] for k in np.argsort(starts)]
    assert sorted(starts) == [0, 2, 4] and [len(x) for x, _ in seen] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in seen]), want_x)
    np.testing.assert_array_equal(np.concatenate([s for _, s in seen]), want_src)


def test_the_floor_is_redrawn_from_the_file_and_clipped_to_each_frame(model, frames):
    maps = frames.amplitude[:3] * 10  # a range wide enough for this untrained model's output
    data = compress_maps(model, maps, "amplitude", "fixed")  # to have a floor below -40 dB
    raw, decoded = decompress_maps(model, data, floor="none")
    vmin, vmax = decoded.side[:, 0, None, None], decoded.side[:, 1, None, None]
    for floor in ("smooth", "noise"):
        out = decompress_maps(model, data, floor=floor)[0]
        expected = np.clip(restore_floor(raw, floor, seed_of(data)), vmin, vmax)
        np.testing.assert_array_equal(out, expected)
        assert not np.array_equal(out, raw)
    noisy = restore_floor(raw, "noise", seed_of(data))
    assert (noisy < vmin).any()  # so the clip has work to do
    assert not np.array_equal(noisy, restore_floor(raw, "noise", 0))
