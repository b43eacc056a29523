"""Blocks, quantizers, MaskNet and the full model: shapes, gradients, exact round trips."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmslim.config import ModelConfig, VQConfig
from mmslim.nn import (
    DecoderHi,
    DecoderLo,
    EncoderHi,
    EncoderLo,
    MaskNet,
    MMSlim,
    Quantizer,
    ResidualLayer,
    ResidualStack,
    VectorQuantizer,
    perplexity,
    straight_through,
    vq_losses,
)
from mmslim.nn.sending import GATE_CODE, sent_latents

PRESETS = ["paper", "cpu-small"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- blocks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("hw", [(224, 64), (32, 32)])
def test_block_shapes(preset, hw):
    c = ModelConfig.preset(preset)
    h, w = hw
    x = torch.rand(2, 1, h, w)
    args = (c.hidden, c.res_hidden, c.n_res_layers)
    assert EncoderHi(*args)(x).shape == (2, c.hidden, h // 4, w // 4)
    assert EncoderLo(*args)(x).shape == (2, c.hidden, h // 16, w // 16)
    z_hi = torch.randn(2, c.code_dim, h // 4, w // 4)
    z_lo = torch.randn(2, c.code_dim, h // 16, w // 16)
    assert DecoderHi(c.code_dim, *args)(z_hi).shape == (2, 1, h, w)
    assert DecoderLo(c.code_dim, *args)(z_lo).shape == (2, 1, h, w)


def test_residual_layers_have_distinct_weights():
    stack = ResidualStack(8, 4, n_layers=3)
    assert len({id(layer) for layer in stack.layers}) == 3
    w = [layer.conv3.weight for layer in stack.layers]
    assert w[0].data_ptr() != w[1].data_ptr()
    assert not torch.equal(w[0], w[1])
    assert sum(p.numel() for p in stack.parameters()) == 3 * (8 * 4 * 9 + 4 * 8)


def test_residual_layer_keeps_its_input_and_backpropagates():
    layer = ResidualLayer(8, 4)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    x_before = x.detach().clone()
    layer(x).sum().backward()  # an in-place ReLU would fail here or corrupt x
    assert torch.equal(x.detach(), x_before)
    assert x.grad is not None and layer.conv3.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("head", ["sigmoid", "reference"])
def test_masknet_is_the_documented_stack(head):
    """conv3x3 . BN . LeakyReLU(0.01) . conv3x3 [. BN . LeakyReLU for the reference] . sigmoid,
    written out with the module's own weights (eval mode: BatchNorm with its running stats)."""
    net = MaskNet(16, head)
    layers = list(net.net)
    conv1, bn1, conv2 = layers[0], layers[1], layers[3]
    bns = [bn1] + ([layers[4]] if head == "reference" else [])
    with torch.no_grad():
        for bn in bns:  # statistics away from their defaults, so they matter
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.rand(3, 1, 32, 16)

    def bn(t, m):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, eps=m.eps)

    h = F.leaky_relu(bn(F.conv2d(x, conv1.weight, conv1.bias, padding=1), bn1), 0.01)
    h = F.conv2d(h, conv2.weight, conv2.bias, padding=1)
    if head == "reference":
        h = F.leaky_relu(bn(h, bns[1]), 0.01)
    with torch.no_grad():
        mask = net(x)
    assert mask.shape == (3, 1, 32, 16) and conv1.out_channels == 16
    assert len(layers) == (7 if head == "reference" else 5)
    assert torch.allclose(mask, torch.sigmoid(h), atol=1e-6)


def test_straight_through_value_and_gradient():
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = straight_through(z, z_q)
    assert torch.equal(out, z_q)  # the exact codeword values, not up to rounding
    (out * torch.arange(out.numel()).view_as(out)).sum().backward()
    assert torch.equal(z.grad, torch.arange(z.numel()).view_as(z).float())  # identity to z
    assert z_q.grad is None  # nothing to z_q


def test_vq_losses_stop_gradients():
    z = torch.randn(4, 3, requires_grad=True)
    z_q = torch.randn(4, 3, requires_grad=True)
    codebook, commitment = vq_losses(z, z_q, beta=0.25)
    assert torch.allclose(codebook, ((z - z_q) ** 2).mean())
    assert torch.allclose(commitment, 0.25 * ((z - z_q) ** 2).mean())
    (g_zq,) = torch.autograd.grad(codebook, z_q, retain_graph=True)
    assert g_zq.abs().sum() > 0
    assert torch.autograd.grad(codebook, z, allow_unused=True)[0] is None
    assert torch.autograd.grad(commitment, z_q, allow_unused=True)[0] is None


def test_codebook_term_moves_codewords_toward_inputs():
    vq = VectorQuantizer(num_codes=8, code_dim=4)
    z = torch.randn(2, 4, 3, 3)
    _, indices, info = vq(z)
    before = ((vq.lookup(indices) - z) ** 2).sum()
    opt = torch.optim.SGD(vq.parameters(), lr=1.0)
    opt.zero_grad()
    info["codebook_loss"].backward()
    opt.step()
    after = ((vq.lookup(indices) - z) ** 2).sum()
    assert after < before


def test_perplexity():
    assert perplexity(torch.full((16,), 5)).item() == pytest.approx(16.0)
    one_code = torch.zeros(16, dtype=torch.int64)
    one_code[3] = 100
    assert perplexity(one_code).item() == pytest.approx(1.0)
    assert perplexity(torch.tensor([1, 1, 0, 0])).item() == pytest.approx(2.0)


# --- VectorQuantizer ---------------------------------------------------------------------------


def test_vector_quantizer_interface_and_nearest():
    vq = VectorQuantizer(num_codes=32, code_dim=6)
    assert isinstance(vq, Quantizer) and vq.num_codes == 32 and vq.code_dim == 6
    assert vq.codebook.weight.abs().max() <= 1 / 32  # reference init
    z = torch.randn(3, 6, 5, 4) / 32
    z_q, indices, info = vq(z)
    assert z_q.shape == z.shape and indices.shape == (3, 5, 4) and indices.dtype == torch.int64
    flat = z.permute(0, 2, 3, 1).reshape(-1, 6)  # (60, 6)
    brute = torch.cdist(flat, vq.codebook.weight).argmin(dim=1).reshape(3, 5, 4)
    assert torch.equal(indices, brute)
    assert torch.equal(z_q, vq.lookup(indices))
    for key in ("loss", "codebook_loss", "commitment_loss", "perplexity", "counts", "dead_share"):
        assert key in info
    assert info["counts"].shape == (32,) and info["counts"].sum() == 60
    assert info["dead_share"].item() == pytest.approx((info["counts"] == 0).float().mean().item())
    assert torch.allclose(info["loss"], info["codebook_loss"] + info["commitment_loss"])


def test_vector_quantizer_refuses_wrong_dim():
    with pytest.raises(ValueError, match="expected z of shape"):
        VectorQuantizer(8, 4)(torch.randn(1, 5, 2, 2))


# --- MMSlim ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models() -> dict[str, MMSlim]:
    torch.manual_seed(0)
    return {p: MMSlim(ModelConfig.preset(p)) for p in PRESETS}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("hw", [(224, 64), (32, 32)])
def test_model_shapes(models, preset, hw):
    model, (h, w) = models[preset].train(), hw
    out = model(torch.rand(2, 1, h, w))
    assert out["x_hat"].shape == out["x_hat_hi"].shape == out["x_hat_lo"].shape == (2, 1, h, w)
    assert out["mask"].shape == (2, 1, h, w)
    assert out["indices_hi"].shape == (2, h // 4, w // 4)
    assert out["indices_lo"].shape == (2, h // 16, w // 16)
    assert torch.equal(out["x_hat"], out["x_hat_hi"] + out["x_hat_lo"])  # not negated
    assert torch.equal(out["vq_loss"], out["stats_hi"]["loss"] + out["stats_lo"]["loss"])
    assert model.latent_shapes(h, w) == {"hi": (h // 4, w // 4), "lo": (h // 16, w // 16)}


def test_paper_latents_and_parameter_count(models):
    model = models["paper"]
    assert model.latent_shapes() == {"hi": (56, 16), "lo": (14, 4)}  # 952 indices per frame
    n = model.num_parameters()
    print(f"paper preset: {n:,} parameters")
    # The reference quotes ~1.6 M because its residual layers share weights (4 stacks x 1 layer
    # x 40,960 fewer); with distinct layers it is 1,827,302 with the reference's mask head
    # (whose last BatchNorm adds 2), 1,827,300 with ours.
    assert n == 1_827_300
    assert MMSlim(ModelConfig.preset("paper", mask_head="reference")).num_parameters() == 1_827_302


@settings(max_examples=8, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6))
def test_any_multiple_of_16_works(h, w):
    model = MMSlim(ModelConfig.preset("cpu-small", hidden=8, res_hidden=4, code_dim=4)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 16 * h, 16 * w))
    assert out["x_hat"].shape == (1, 1, 16 * h, 16 * w)
    assert out["indices_lo"].shape == (1, h, w)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(1, 224, 64), "shape"),
        (torch.rand(1, 2, 224, 64), "shape"),
        (torch.rand(1, 1, 225, 64), "divisible by 16"),
        (torch.rand(1, 1, 224, 60), "divisible by 16"),
        (torch.randint(0, 2, (1, 1, 32, 32)), "dtype"),
    ],
)
def test_refuses_bad_shapes(models, bad, match):
    with pytest.raises(ValueError, match=match):
        models["cpu-small"](bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_refuses_non_finite(models, value):
    x = torch.rand(1, 1, 32, 32)
    x[0, 0, 3, 4] = value
    with pytest.raises(ValueError, match="finite"):
        models["cpu-small"](x)
    with pytest.raises(ValueError, match="finite"):
        models["cpu-small"](torch.rand(1, 1, 32, 32), mask_source=x)


def test_refuses_mismatched_mask_source(models):
    with pytest.raises(ValueError, match="mask_source"):
        models["cpu-small"](torch.rand(1, 1, 32, 32), mask_source=torch.rand(1, 1, 32, 48))


def test_explicit_mask_replaces_masknet(models):
    model = models["cpu-small"].eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        ones = model(x, mask=torch.ones_like(x))
        own = model(x)
        same = model(x, mask=own["mask"])
    assert torch.equal(ones["mask"], torch.ones_like(x))
    assert torch.equal(same["x_hat"], own["x_hat"])
    assert not torch.equal(ones["x_hat"], own["x_hat"])
    with pytest.raises(ValueError, match="mask of shape"):
        model(x, mask=torch.ones(2, 1, 32, 16))


def test_gradient_reaches_encoders_and_masknet():
    model = MMSlim(ModelConfig.preset("cpu-small")).train()
    x = torch.rand(2, 1, 32, 32)
    ((model(x)["x_hat"] - x) ** 2).mean().backward()  # reconstruction only, no VQ loss
    for part in (model.hi.encoder, model.lo.encoder, model.mask_net):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def test_a_hard_mask_sends_each_cell_to_one_branch_and_still_trains_masknet():
    torch.manual_seed(0)
    model = MMSlim(ModelConfig.preset("tiny", mask="hard")).train()
    x = torch.rand(2, 1, 32, 32)
    out = model(x)
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    soft = model.mask_net(x)
    torch.testing.assert_close(out["mask"], (soft > 0.5).float())
    ((out["x_hat"] - x) ** 2).mean().backward()  # straight-through: MaskNet gets a gradient
    grads = [p.grad for p in model.mask_net.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    model.eval()
    with torch.no_grad():  # where the mask is 0 the fine branch sees exactly nothing
        m = model(x)["mask"]
        _, x_hi, x_lo = model.split(x)
    assert torch.equal(x_hi, m * x) and torch.equal(x_hi[m == 0], torch.zeros_like(x[m == 0]))
    assert torch.equal(x_lo[m == 1], torch.zeros_like(x[m == 1]))


@pytest.mark.parametrize("preset", PRESETS)
def test_receiver_decodes_exactly_what_forward_outputs(models, preset):
    model = models[preset].eval()
    amp, phase = torch.rand(2, 4, 1, 224, 64)
    with torch.no_grad():
        for x, source in ((amp, None), (phase, amp)):  # amplitude stage, phase stage
            out = model(x, mask_source=source)
            sent = model.encode(x, mask_source=source)
            assert torch.equal(sent["indices_hi"], out["indices_hi"])
            assert torch.equal(sent["indices_lo"], out["indices_lo"])
            received = model.decode_indices(sent["indices_hi"], sent["indices_lo"])
            assert torch.equal(received["x_hat"], out["x_hat"])


def test_decode_refuses_bad_indices(models):
    model = models["cpu-small"]
    hi = torch.zeros(1, 8, 8, dtype=torch.int64)
    lo = torch.zeros(1, 2, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"\[0, 512\)"):
        model.decode_indices(hi + 512, lo)
    with pytest.raises(ValueError, match="int64"):
        model.decode_indices(hi.float(), lo)
    with pytest.raises(ValueError, match="indices_lo of shape"):
        model.decode_indices(hi, torch.zeros(1, 4, 4, dtype=torch.int64))


def test_unknown_quantizer():
    with pytest.raises(ValueError, match="quantizer"):
        MMSlim(ModelConfig(quantizer="nope"))


def test_a_preview_decodes_from_the_coarse_grid_alone(tiny_config):
    torch.manual_seed(0)
    model = MMSlim(tiny_config).eval()
    x = torch.rand(2, 1, 32, 64)
    with torch.no_grad():
        enc = model.encode(x)
        model.prior.update(enc["indices_hi"], enc["indices_lo"])
        preview = model.decode_preview(enc["indices_lo"])["x_hat"]
        code = model.likely_fine_code()
        fine = torch.full_like(enc["indices_hi"], code)
        expected = model.decode_indices(fine, enc["indices_lo"])["x_hat"]
    assert preview.shape == x.shape and torch.equal(preview, expected)
    assert int(model.prior.counts_hi[code]) == int(model.prior.counts_hi.max())


def test_missing_fine_indices_decode_to_the_right_shape(tiny_config):
    torch.manual_seed(0)
    model = MMSlim(tiny_config).eval()
    x = torch.rand(2, 1, 32, 64)
    with torch.no_grad():
        enc = model.encode(x)
        none_lost = torch.zeros_like(enc["indices_hi"], dtype=torch.bool)
        full = model.decode_indices(enc["indices_hi"], enc["indices_lo"])["x_hat"]
        same = model.decode_with_missing(enc["indices_hi"], enc["indices_lo"], none_lost)
        lost = torch.rand(enc["indices_hi"].shape, generator=torch.Generator().manual_seed(1)) < 0.3
        damaged = model.decode_with_missing(enc["indices_hi"], enc["indices_lo"], lost)["x_hat"]
    assert torch.equal(same["x_hat"], full)
    assert damaged.shape == x.shape and not torch.equal(damaged, full)
    with pytest.raises(ValueError, match="missing as a bool tensor"):
        model.decode_with_missing(enc["indices_hi"], enc["indices_lo"], lost.long())


def test_training_for_lost_indices_decodes_them_as_the_receiver_does(tiny_config):
    torch.manual_seed(0)
    model = MMSlim(tiny_config).eval()
    x = torch.rand(2, 1, 64, 32)
    with torch.no_grad():
        plain = model(x)
        assert torch.equal(model(x, lost_share=0.0)["x_hat"], plain["x_hat"])
        all_lost = model(x, lost_share=1.0)  # every fine index lost
        likely = torch.full_like(plain["indices_hi"], model.likely_fine_code())
        torch.testing.assert_close(all_lost["x_hat_hi"], model.hi.decode_indices(likely))
        assert torch.equal(all_lost["indices_hi"], plain["indices_hi"])  # what is sent
        receiver = model.decode_with_missing(
            plain["indices_hi"], plain["indices_lo"], torch.ones_like(likely, dtype=torch.bool)
        )
        torch.testing.assert_close(all_lost["x_hat"], receiver["x_hat"])


def test_sent_latents_are_the_mask_peaks_and_their_neighbours():
    mask = torch.zeros(1, 1, 32, 32)
    mask[0, 0, 13, 6] = 0.8  # in fine latent (3, 1) of an 8 x 8 grid
    mask[0, 0, 30, 30] = 0.4  # below the level: no latent for it
    sent = sent_latents(mask, 4, 0.5)
    expected = torch.zeros(1, 8, 8, dtype=torch.bool)
    expected[0, 2:5, 0:3] = True
    assert sent.dtype == torch.bool and torch.equal(sent, expected)
    assert sent_latents(mask, 4, 0.4)[0, 7, 7]  # >= the level counts
    assert not sent_latents(torch.zeros(2, 1, 32, 32), 4, 0.1).any()


def _gated(tiny_config, level: float) -> MMSlim:
    torch.manual_seed(0)
    return MMSlim(dataclasses.replace(tiny_config, fine_gate=level))


def test_a_fine_gate_sends_code_0_where_the_mask_is_low_all_around(tiny_config):
    model = _gated(tiny_config, 0.5).eval()
    x = torch.rand(2, 1, 64, 32)
    mask = torch.zeros_like(x)
    mask[0, 0, 20:24, 8:12] = 1.0  # one target patch in frame 0, none in frame 1
    with torch.no_grad():
        gated = model(x, mask=mask)
        free = model.with_fine_gate(0.0)
        assert free.config.fine_gate == 0 and not free.training
        plain = free(x, mask=mask)
    sent = sent_latents(mask, 4, 0.5)
    assert sent[0].sum() == 9 and not sent[1].any()
    assert torch.equal(gated["indices_hi"][sent], plain["indices_hi"][sent])
    assert (gated["indices_hi"][~sent] == GATE_CODE).all()
    assert torch.equal(gated["indices_lo"], plain["indices_lo"])  # the coarse branch as before
    with torch.no_grad():  # the receiver sees what training's forward saw
        received = model.decode_indices(gated["indices_hi"], gated["indices_lo"])
        assert torch.equal(received["x_hat"], gated["x_hat"])
        assert not torch.equal(gated["x_hat"], plain["x_hat"])


def test_the_gated_sender_and_forward_agree_on_masknets_own_mask(tiny_config):
    model = _gated(tiny_config, 0.54).eval()  # an untrained MaskNet says 0.45 to 0.55
    x = torch.rand(3, 1, 32, 64)
    with torch.no_grad():
        out, sent = model(x), model.encode(x)
        received = model.decode_indices(sent["indices_hi"], sent["indices_lo"])
    assert torch.equal(sent["indices_hi"], out["indices_hi"])
    assert torch.equal(received["x_hat"], out["x_hat"])
    with torch.no_grad():
        chosen = model.with_fine_gate(0.0).encode(x)["indices_hi"]  # the encoder's own picks
    kept = sent_latents(out["mask"], 4, 0.54)
    assert 0 < kept.sum() < kept.numel()  # some latents of each kind
    assert torch.equal(sent["indices_hi"], chosen.masked_fill(~kept, GATE_CODE))


def test_the_gate_code_is_never_reseeded_as_dead(tiny_config):
    quantizer = VQConfig(codebook_init="uniform", dead_code_steps=1)  # a codebook moved by Adam
    model = _gated(dataclasses.replace(tiny_config, quantizer=quantizer), 0.5)
    assert model.hi.quantizer.reserved_code == GATE_CODE
    assert model.lo.quantizer.reserved_code is None  # the coarse grid has no gate
    before = model.hi.quantizer.codes().clone()  # (K, D)
    model.train()
    for _ in range(3):  # no target anywhere: every fine latent is gated
        out = model(torch.rand(2, 1, 32, 32), mask=torch.zeros(2, 1, 32, 32))
        assert int(out["stats_hi"]["counts"][GATE_CODE]) == 0  # the encoder never chose it
    after = model.hi.quantizer.codes()
    assert torch.equal(after[GATE_CODE], before[GATE_CODE])  # unused 3 steps, kept
    assert not torch.equal(after[1:], before[1:])  # the other unused codes were re-seeded


def test_a_fine_gate_needs_masknet():
    with pytest.raises(ValueError, match="fine_gate needs MaskNet"):
        ModelConfig.preset("tiny", mask="fixed", fine_gate=0.5)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        ModelConfig.preset("tiny", fine_gate=1.0)


def test_coarse_codes_restrict_the_senders_coarse_search(tiny_config):
    torch.manual_seed(0)
    model = MMSlim(tiny_config).eval()
    x = torch.rand(3, 1, 64, 32)
    codes = (1, 5, 9, 40)
    restricted = model.with_coarse_codes(codes[::-1])  # any order in, ascending kept
    assert restricted.config.coarse_codes == codes and not restricted.training
    with torch.no_grad():
        _, _, x_lo = model.split(x)
        z = model.lo.latents(x_lo)  # (B, D, h, w)
        dist = (z[:, None] - model.lo.codewords()[list(codes)][None, :, :, None, None]) ** 2
        expected = torch.tensor(codes)[dist.sum(dim=2).argmin(dim=1)]  # brute force
        sent, out = restricted.encode(x), restricted(x)
        received = restricted.decode_indices(sent["indices_hi"], sent["indices_lo"])
        free = model.encode(x)
    assert torch.equal(sent["indices_lo"], expected)
    assert torch.equal(out["indices_lo"], expected)  # forward agrees with the sender
    assert torch.equal(received["x_hat"], out["x_hat"])  # and with the receiver
    assert torch.equal(sent["indices_hi"], free["indices_hi"])  # the fine grid as before
    assert not torch.equal(sent["indices_lo"], free["indices_lo"])
    # the rate estimate counts the indices sent; training passes a gradient to the encoder
    restricted.train()
    out = restricted(x, estimate_rate=True)
    (out["x_hat"].mean() + out["rate_bits"]).backward()
    assert restricted.lo.encoder.net[0].weight.grad.abs().sum() > 0


def test_coarse_codes_are_checked():
    with pytest.raises(ValueError, match="distinct codes in"):
        ModelConfig.preset("tiny", coarse_codes=(3, 3))
    with pytest.raises(ValueError, match="distinct codes in"):
        ModelConfig.preset("tiny", coarse_codes=(0, 64))  # tiny has 64 codes
    with pytest.raises(ValueError, match="no coarse grid"):
        ModelConfig.preset("tiny", mask="none", coarse_codes=(1,))
    config = ModelConfig.from_dict({**ModelConfig.preset("tiny").to_dict(), "coarse_codes": [2, 7]})
    assert config.coarse_codes == (2, 7)  # a checkpoint's list comes back as a tuple
