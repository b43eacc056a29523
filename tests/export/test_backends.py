"""The sender and receiver graphs under PyTorch and ONNX Runtime, on the shipped models.

- ``"torch"`` gives the eval-mode model's indices and maps bit for bit;
- ONNX Runtime (and PyTorch with BatchNorm folded / channels-last) agree with it on at least
  99.9 % of the indices, every disagreement is a near-tie of two codewords, and the decoded
  maps agree within 1e-5;
- a file written with one backend decodes with the other.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.data.dataset import denormalize, normalize
from mmslim.data.samples import sample_path
from mmslim.export import OnnxBackend, Receiver, Sender, TorchBackend, backend_for
from mmslim.export.graphs import fine_reach
from mmslim.nn.sending import GATE_CODE
from mmslim.training.checkpoint import load_model

KINDS = ("amplitude", "phase")


@pytest.fixture(scope="module")
def held_out(sample_frames):
    """kind -> (model, maps (N, H, W), amplitude (N, H, W)): the shipped model and 40 of its
    validation frames (every third: all walkers and sequences of the split)."""
    out = {}
    for kind in KINDS:
        model, state = load_model(sample_path("pretrained", f"{kind}.pt"), stage=kind)
        val = sample_frames.of_subjects(state["split"]["val"])
        out[kind] = (model, getattr(val, kind)[::3], val.amplitude[::3])
    return out


def _normalised(maps) -> np.ndarray:
    return normalize(torch.from_numpy(maps))[0][:, None].numpy()  # (N, 1, H, W)


@pytest.fixture(scope="module")
def reference(held_out):
    """kind -> (x01, src01, indices_hi, indices_lo, x_hat) of the eval-mode model."""
    out = {}
    for kind, (model, maps, amp) in held_out.items():
        x, src = _normalised(maps), _normalised(amp)
        with torch.no_grad():
            enc = model.encode(torch.from_numpy(x), torch.from_numpy(src))
            hi, lo = enc["indices_hi"], enc["indices_lo"]
            x_hat = model.decode_indices(hi, lo)["x_hat"].numpy()
        out[kind] = (x, src, hi.numpy(), lo.numpy(), x_hat)
    return out


@pytest.fixture(scope="module")
def onnx_backends(held_out):
    return {kind: OnnxBackend(model) for kind, (model, _, _) in held_out.items()}


def _squared_distances(model, branch: str, x01, src01) -> torch.Tensor:
    """(N*h*w, K) float64 squared distances of the reference's latents to every codeword."""
    with torch.no_grad():
        _, x_hi, x_lo = model.split(torch.from_numpy(x01), torch.from_numpy(src01))
        part = model.hi if branch == "hi" else model.lo
        z = part.latents(x_hi if branch == "hi" else x_lo)  # (N, D, h, w)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (N*h*w, D)
    return torch.cdist(flat.double(), part.quantizer.codes().detach().double()) ** 2


def _check_agreement(model, kind, ref, hi, lo, x_hat_of):
    x01, src01, ref_hi, ref_lo, ref_x_hat = ref
    for branch, got, want in (("hi", hi, ref_hi), ("lo", lo, ref_lo)):
        assert got.shape == want.shape and got.dtype == np.int64
        assert (got == want).mean() >= 0.999, f"{kind} {branch}: too many indices differ"
        wrong = (got != want).reshape(-1)
        if wrong.any():  # each disagreement must be a near-tie under the reference's own latents
            dist = _squared_distances(model, branch, x01, src01)  # (N*h*w, K)
            rows = torch.from_numpy(np.flatnonzero(wrong))
            chosen = dist[rows, torch.from_numpy(got.reshape(-1)[wrong])]
            best = dist[rows].min(dim=1).values
            # a near-tie: within 0.2 % of the best distance. Folded BatchNorm and ONNX Runtime's
            # kernels round differently through every layer (latents differ by ~1e-4 of their
            # size); on the shipped phase model such ties reach 1.1e-3 of the distance.
            assert ((chosen - best) <= 2e-3 * best.clamp(min=1e-3)).all()
    # decoded from the same indices, the maps agree within 1e-5
    np.testing.assert_allclose(x_hat_of(ref_hi, ref_lo), ref_x_hat, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_backend_is_the_eval_model_bit_for_bit(held_out, reference, kind):
    model = held_out[kind][0]
    x01, src01, ref_hi, ref_lo, ref_x_hat = reference[kind]
    backend = TorchBackend(model)
    grids = [backend.encode(x01[i : i + 16], src01[i : i + 16]) for i in range(0, len(x01), 16)]
    hi, lo = (np.concatenate(g) for g in zip(*grids))
    np.testing.assert_array_equal(hi, ref_hi)
    np.testing.assert_array_equal(lo, ref_lo)
    np.testing.assert_array_equal(backend.decode(ref_hi, ref_lo), ref_x_hat)


@pytest.mark.parametrize("kind", KINDS)
def test_folded_channels_last_torch_agrees(held_out, reference, kind):
    model = held_out[kind][0]
    x01, src01 = reference[kind][:2]
    backend = TorchBackend(model, fold=True, channels_last=True)
    hi, lo = backend.encode(x01, src01)
    _check_agreement(model, kind, reference[kind], hi, lo, backend.decode)


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_backend_agrees_with_pytorch(held_out, reference, onnx_backends, kind):
    model = held_out[kind][0]
    x01, src01 = reference[kind][:2]
    backend = onnx_backends[kind]
    hi, lo = backend.encode(x01, src01)
    _check_agreement(model, kind, reference[kind], hi, lo, backend.decode)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_from_one_backend_decodes_with_the_other(held_out, onnx_backends, kind):
    model, maps, amp = held_out[kind]
    maps, amp = maps[:20], amp[:20]
    onnx = onnx_backends[kind]
    files = {name: compress_maps(model, maps, kind, mask_source=amp, backend=backend)
             for name, backend in (("torch", "torch"), ("onnx", onnx))}  # fmt: skip
    span = (maps.max(axis=(1, 2)) - maps.min(axis=(1, 2)))[:, None, None]  # (N, 1, 1)
    for written in files.values():
        decoded = {name: decompress_maps(model, written, backend=backend)
                   for name, backend in (("torch", "torch"), ("onnx", onnx))}  # fmt: skip
        (m_torch, d_torch), (m_onnx, d_onnx) = decoded["torch"], decoded["onnx"]
        np.testing.assert_array_equal(d_torch.indices_hi, d_onnx.indices_hi)
        assert m_torch.shape == maps.shape and m_onnx.dtype == np.float32
        assert (np.abs(m_torch - m_onnx) <= 1e-5 * span + 1e-5).all()  # 1e-5 of each range
    # the torch backend's file decodes to exactly what the eval-mode model reconstructs from
    # the file's indices (which equal the model's own up to near-ties, checked above)
    maps_back, decoded = decompress_maps(model, files["torch"], floor="none")
    with torch.no_grad():
        x_hat = model.decode_indices(
            torch.from_numpy(decoded.indices_hi), torch.from_numpy(decoded.indices_lo)
        )["x_hat"][:, 0].clamp(0, 1)
    side = torch.from_numpy(decoded.side)
    expected = denormalize(x_hat, side[:, 0], side[:, 1]).numpy()
    np.testing.assert_array_equal(maps_back, expected)


def test_graphs_accept_any_batch_size(held_out, reference, onnx_backends):
    x01, src01, ref_hi, ref_lo, _ = reference["amplitude"]
    backend = onnx_backends["amplitude"]
    for b in (1, 5):
        hi, lo = backend.encode(x01[:b], src01[:b])
        assert hi.shape == (b, 56, 16) and lo.shape == (b, 14, 4)
        assert backend.decode(ref_hi[:b], ref_lo[:b]).shape == (b, 1, 224, 64)


def test_backends_are_built_once_and_rebuilt_when_weights_change(held_out):
    model = held_out["amplitude"][0]
    first = backend_for(model, "torch")
    assert backend_for(model, "torch") is first
    assert first.fingerprint == model.fingerprint()
    weight = model.hi.pre_vq.bias
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.add_(1.0)
        rebuilt = backend_for(model, "torch")
        assert rebuilt is not first and rebuilt.fingerprint == model.fingerprint()
        assert rebuilt.fingerprint != first.fingerprint
    finally:
        with torch.no_grad():
            weight.copy_(saved)


def test_backend_refusals(held_out):
    model = held_out["amplitude"][0]
    with pytest.raises(ValueError, match="unknown backend 'tflite'; choose one of"):
        backend_for(model, "tflite")
    with pytest.raises(ValueError, match="exported for 224 x 64 frames, got 32 x 32"):
        backend_for(model, "onnx").encode(*(2 * [np.zeros((1, 1, 32, 32), np.float32)]))


def test_graphs_do_not_change_the_model(held_out):
    model = held_out["amplitude"][0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Sender(model, fold=True, channels_last=True), Receiver(model, fold=True, channels_last=True)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert next(model.parameters()).is_contiguous()


def test_a_gated_sender_sends_what_the_model_sends_on_every_backend(held_out):
    model, maps, _ = held_out["amplitude"]
    gated = model.with_fine_gate(0.9).eval()
    x01 = _normalised(maps)
    with torch.no_grad():
        ref = gated.encode(torch.from_numpy(x01))["indices_hi"].numpy()
    assert 0.5 < (ref == GATE_CODE).mean() < 1  # the floor is gated, the walker is not
    hi, _ = TorchBackend(gated).encode(x01, x01)
    np.testing.assert_array_equal(hi, ref)
    hi, _ = OnnxBackend(gated).encode(x01, x01)
    assert (hi == ref).mean() >= 0.999


def _with_bands(hi: np.ndarray) -> np.ndarray:
    """``hi`` (N, 56, 16) followed by grids that stress the cutting of fine bands: all zeros,
    codes on the first row only, on the last row only, two bands far apart, every row used."""
    n, rows, cols = hi.shape
    extra = np.zeros((5, rows, cols), np.int64)
    extra[1, 0, 3] = 7
    extra[2, rows - 1, cols - 1] = 9
    extra[3, 2, 5], extra[3, rows - 3, 6] = 11, 13
    extra[4] = hi[np.argmax((hi != 0).sum(axis=(1, 2)))] + 1  # no zeros left
    return np.concatenate([hi, extra])


@pytest.mark.parametrize("kind", KINDS)
def test_banded_fine_decoding_equals_decoding_the_whole_grid(held_out, onnx_backends, kind):
    backend = onnx_backends[kind]
    model = held_out[kind][0]
    whole = OnnxBackend(model)
    whole.reach = None  # every fine grid decoded whole: what the cut bands must reproduce
    assert backend.reach == fine_reach(model, (224, 64)) == 4
    maps, amp = held_out[kind][1], held_out[kind][2]
    hi, lo = backend.encode(_normalised(maps), _normalised(amp))
    assert 0.5 < (hi == 0).mean() < 1  # the gate leaves most of the fine grid at code 0
    hi = _with_bands(hi)
    lo = np.concatenate([lo, lo[:5]])
    for batch in (np.arange(len(hi)), backend.order(hi)[:8], np.arange(len(hi) - 5, len(hi))):
        np.testing.assert_allclose(
            backend.decode(hi[batch], lo[batch]), whole.decode(hi[batch], lo[batch]),
            rtol=0, atol=1e-6,
        )  # fmt: skip
    first_rows = [np.flatnonzero((g != 0).any(1)) for g in hi[backend.order(hi)]]
    spans = [r[-1] - r[0] + 1 if len(r) else 0 for r in first_rows]
    assert spans == sorted(spans)  # decoded in order of their bands' heights


def test_fine_reach_bounds_what_one_code_changes(held_out):
    model = held_out["amplitude"][0]
    reach = fine_reach(model, (224, 64))
    receiver = Receiver(model)
    changed_rows = []
    with torch.no_grad():
        zero = torch.zeros(1, 56, 16, dtype=torch.int64)
        base = receiver.decoder_hi(receiver.codes_hi(zero))
        for row in (0, 3, 28, 55):
            grid = zero.clone()
            grid[0, row, 8] = 5
            diff = (receiver.decoder_hi(receiver.codes_hi(grid)) - base).abs()[0, 0]  # (H, W)
            latent_rows = torch.nonzero(diff.amax(1) > 0).flatten() // 4
            changed_rows.append((latent_rows - row).abs().max().item())
    assert max(changed_rows) == reach  # reached, and never exceeded
    # the reach follows the structure: two residual layers of 3x3 convs add one row each
    small = model.__class__(dataclasses.replace(model.config, n_res_layers=0))
    assert fine_reach(small, (224, 64)) == reach - 2


def test_the_fast_sender_searches_only_the_sent_latents(held_out):
    model = held_out["amplitude"][0]
    search = model.hi.quantizer.search()
    torch.manual_seed(0)
    z = torch.randn(3, model.config.code_dim, 56, 16)
    chosen = torch.rand(3, 56, 16) < 0.1
    chosen[2] = False  # a frame with nothing sent
    got = search.where(z, chosen, GATE_CODE)
    full = search(z)
    assert torch.equal(got[chosen], full[chosen]) and (got[~chosen] == GATE_CODE).all()
    # the exported sender does the same (TopK, NonZero, ScatterElements under ONNX Runtime)
    assert (
        Sender(model, fold=True).search_sent_only and not Sender(model, fold=False).search_sent_only
    )
    x01 = _normalised(held_out["amplitude"][1][:6])
    none = np.zeros((6, 56, 16), bool)
    onnx_hi, _ = OnnxBackend(model).encode(x01, x01, none)
    torch_hi, _ = TorchBackend(model).encode(x01, x01, none)
    assert (onnx_hi == torch_hi).mean() >= 0.999


def test_a_sender_with_a_few_coarse_codes_sends_only_them_on_every_backend(held_out):
    model, maps, _ = held_out["amplitude"]
    few = model.with_coarse_codes((3, 17, 200, 511)).eval()
    x01 = _normalised(maps)
    with torch.no_grad():
        ref = few.encode(torch.from_numpy(x01))["indices_lo"].numpy()
    assert set(np.unique(ref)) <= {3, 17, 200, 511} and len(np.unique(ref)) > 1
    _, lo = TorchBackend(few).encode(x01, x01)
    np.testing.assert_array_equal(lo, ref)
    _, lo = OnnxBackend(few).encode(x01, x01)
    assert (lo == ref).mean() >= 0.999
