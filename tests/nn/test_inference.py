"""Inference-only rewrites of the model: BatchNorm folding and the precomputed codeword search.

Folding must give the eval-mode function up to float rounding and leave training untouched; the
precomputed search must give the training search's indices bit for bit.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mmslim.config import ModelConfig
from mmslim.nn import DecoderHi, DecoderLo, EncoderHi, EncoderLo, MaskNet, VectorQuantizer
from mmslim.nn.blocks import TapSum, fold_batchnorm, one_output_as_taps, transposed_as_conv
from mmslim.nn.quantizers.search import CodewordSearch, nearest_codeword, search_tables

C = ModelConfig.preset("tiny")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomise_batchnorm(module: nn.Module) -> nn.Module:
    """Give every BN non-trivial running statistics and affine parameters (fresh BNs are the
    identity in eval mode, which would make folding trivially right)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return module


def _count(module: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def _mask_head_without_leaky():
    """A MaskNet-like head that ends BN . sigmoid: folding must not depend on the activation."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.01),
        nn.Conv2d(8, 1, 3, padding=1), nn.BatchNorm2d(1), nn.Sigmoid(),
    )  # fmt: skip


MODULES = {
    "masknet": (lambda: MaskNet(8), (1, 32, 16)),
    "masknet_reference_head": (lambda: MaskNet(8, head="reference"), (1, 32, 16)),
    "mask_head_without_leaky": (_mask_head_without_leaky, (1, 32, 16)),
    "encoder_hi": (lambda: EncoderHi(C.hidden, C.res_hidden, C.n_res_layers), (1, 32, 16)),
    "encoder_lo": (lambda: EncoderLo(C.hidden, C.res_hidden, C.n_res_layers), (1, 32, 16)),
    "decoder_hi": (lambda: DecoderHi(C.code_dim, C.hidden, C.res_hidden, 1), (C.code_dim, 8, 4)),
    "decoder_lo": (lambda: DecoderLo(C.code_dim, C.hidden, C.res_hidden, 1), (C.code_dim, 2, 1)),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_folding_keeps_the_eval_function_and_removes_every_batchnorm(name):
    build, shape = MODULES[name]
    module = _randomise_batchnorm(build())
    module.train()
    before = copy.deepcopy(module.state_dict())
    folded = fold_batchnorm(module)
    has_bn = _count(module, nn.BatchNorm2d) > 0  # DecoderHi has none: folding is a copy
    assert _count(folded, nn.BatchNorm2d) == 0
    assert not folded.training
    # the original is untouched: same weights, same BN modules, still in training mode
    assert module.training and all(
        torch.equal(v, module.state_dict()[k]) for k, v in before.items()
    )
    x = torch.randn(3, *shape)
    with torch.no_grad():
        expected = module.eval()(x)
        got = folded(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    if has_bn:
        assert not torch.equal(expected, module.train()(x).detach())  # BN really mattered
    else:
        assert torch.equal(got, expected)


def test_folding_keeps_a_batchnorm_that_follows_no_conv():
    seq = _randomise_batchnorm(nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 2, 3), nn.ReLU()))
    folded = fold_batchnorm(seq)
    assert _count(folded, nn.BatchNorm2d) == 1
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), seq.eval()(x))


def test_training_is_unchanged_by_folding():
    """Folding works on a copy: gradients and BN statistics of the model still move."""
    net = _randomise_batchnorm(MaskNet(4))
    fold_batchnorm(net)
    net.train()
    bn = net.net[1]
    mean_before = bn.running_mean.clone()
    net(torch.rand(2, 1, 16, 16)).sum().backward()
    assert not torch.equal(bn.running_mean, mean_before)
    assert net.net[0].weight.grad is not None


@pytest.mark.parametrize("kernel, padding", [(3, 1), (3, 0), (4, 2), (1, 0)])
def test_stride1_transposed_conv_becomes_the_same_conv(kernel, padding):
    seq = nn.Sequential(nn.ConvTranspose2d(5, 7, kernel, padding=padding), nn.ReLU(),
                        nn.ConvTranspose2d(7, 3, 4, stride=2, padding=1))  # fmt: skip
    converted = transposed_as_conv(seq)
    assert type(converted[0]) is nn.Conv2d
    assert isinstance(converted[2], nn.ConvTranspose2d)  # strided ones are kept
    assert isinstance(seq[0], nn.ConvTranspose2d)  # the original is untouched
    x = torch.randn(2, 5, 9, 6)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), seq(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, padding", [(3, 1), (3, 0), (5, 2), (1, 0), ((3, 5), (1, 2))])
def test_one_output_conv_becomes_a_tap_sum(kernel, padding):
    seq = nn.Sequential(nn.Conv2d(6, 1, kernel, padding=padding), nn.Sigmoid(),
                        nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 1, 3, stride=2))  # fmt: skip
    converted = one_output_as_taps(seq)
    assert isinstance(converted[0], TapSum) and type(converted[2]) is nn.Conv2d
    assert type(converted[3]) is nn.Conv2d  # strided: kept
    assert type(seq[0]) is nn.Conv2d  # the original is untouched
    x = torch.randn(2, 6, 11, 7)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), seq(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("decoder", ["hi", "lo"])
def test_decoders_rewritten_for_inference(decoder):
    cls, size = (DecoderHi, (8, 4)) if decoder == "hi" else (DecoderLo, (2, 1))
    dec = _randomise_batchnorm(cls(C.code_dim, C.hidden, C.res_hidden, 1)).eval()
    fast = transposed_as_conv(fold_batchnorm(dec))
    assert _count(fast, nn.BatchNorm2d) == 0
    assert _count(fast, nn.ConvTranspose2d) == _count(dec, nn.ConvTranspose2d) - (decoder == "hi")
    z = torch.randn(2, C.code_dim, *size)
    with torch.no_grad():
        torch.testing.assert_close(fast(z), dec(z), rtol=1e-5, atol=1e-5)


# --- nearest-codeword search -------------------------------------------------------------------


@pytest.mark.parametrize("affine", ["none", "learned"])
def test_precomputed_search_gives_the_training_indices_bit_for_bit(affine):
    vq = VectorQuantizer(64, 8, affine=affine)
    with torch.no_grad():
        vq.codebook.weight.normal_()
        if affine == "learned":
            vq.affine_scale.uniform_(0.5, 2.0)
            vq.affine_shift.normal_()
    z = torch.randn(4, 8, 6, 5)
    codes = vq.codes().detach()
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)  # (N, D)
    # the search as it was written before the tables: addmm with alpha = -2
    old = torch.addmm((codes * codes).sum(1), flat, codes.t(), alpha=-2.0)  # (N, K)
    neg2_codes_t, norms = search_tables(codes)
    assert torch.equal(torch.addmm(norms, flat, neg2_codes_t), old)  # -2 scaling is exact
    expected = old.argmin(1).reshape(4, 6, 5)
    assert torch.equal(vq.nearest(z), expected)
    search = vq.search()
    assert isinstance(search, CodewordSearch)
    assert torch.equal(search(z), expected)
    assert torch.equal(search(z.contiguous(memory_format=torch.channels_last)), expected)
    # and it is the nearest codeword by true distance
    brute = torch.cdist(flat, codes).argmin(1).reshape(4, 6, 5)
    assert torch.equal(expected, brute)


def test_search_ties_go_to_the_lowest_index():
    codes = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])  # codes 0 and 1 coincide
    z = torch.tensor([[0.9, 0.1]]).reshape(1, 2, 1, 1)
    assert nearest_codeword(z, *search_tables(codes)).item() == 0


def test_search_is_a_snapshot_of_the_codebook():
    vq = VectorQuantizer(16, 4)
    search = vq.search()
    with torch.no_grad():
        vq.codebook.weight.mul_(10)
    assert not torch.equal(search.norms, search_tables(vq.codes())[1])
