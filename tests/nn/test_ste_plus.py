"""VQ-STE++ (Huh et al. 2023): the synchronized update, alternated optimisation and the affine
codebook from running statistics, each against its rule (vqtorch's code), on toys."""

from __future__ import annotations

import pytest
import torch

from mmslim.config import ModelConfig, TrainConfig, VQConfig
from mmslim.nn import MMSlim
from mmslim.nn.quantizers.ste_plus import (
    INPLACE_MOMENTUM,
    STATISTICS_MOMENTUM,
    synchronized_straight_through,
    update_statistics,
)
from mmslim.nn.quantizers.vq import VectorQuantizer, straight_through
from mmslim.nn.quantizers.zoo import variant_config
from mmslim.training.fit import param_groups

K, D = 6, 3
BASE = ModelConfig(hidden=16, res_hidden=8, n_res_layers=1, num_codes=K, code_dim=D)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _grads(fn, z, z_q, g):
    z, z_q = z.clone().requires_grad_(True), z_q.clone().requires_grad_(True)
    out = fn(z, z_q)
    (out * g).sum().backward()
    return out.detach(), z.grad, z_q.grad


# --------------------------------------------------------------------------- synchronized update


def test_sync_nu_zero_is_straight_through():
    z, z_q, g = torch.randn(3, D, 4, 2), torch.randn(3, D, 4, 2), torch.randn(3, D, 4, 2)
    ours = _grads(lambda a, b: synchronized_straight_through(a, b, 0.0), z, z_q, g)
    plain = _grads(straight_through, z, z_q, g)
    assert torch.equal(ours[0], z_q) and torch.equal(ours[0], plain[0])  # the value, exactly
    assert torch.equal(ours[1], g) and torch.equal(plain[1], g)  # g reaches z unchanged
    assert ours[2] is None and plain[2] is None  # nothing reaches the codeword
    # in the quantizer: the same outputs and gradients as the plain VQ
    a, b = VectorQuantizer(K, D, sync_nu=0.0), VectorQuantizer(K, D)
    b.load_state_dict(a.state_dict())
    for q in (a, b):
        z_in = z.clone().requires_grad_(True)
        z_out, _, info = q.train()(z_in)
        ((z_out * g).sum() + info["loss"]).backward()
        q.result = (z_out.detach(), z_in.grad, q.codebook.weight.grad)
    assert all(torch.equal(x, y) for x, y in zip(a.result, b.result))


def test_sync_nu_adds_nu_times_the_decoder_gradient_to_the_codewords():
    nu = 0.3
    z, z_q, g = torch.randn(2, D, 3, 3), torch.randn(2, D, 3, 3), torch.randn(2, D, 3, 3)
    value, gz, gq = _grads(lambda a, b: synchronized_straight_through(a, b, nu), z, z_q, g)
    assert torch.equal(value, z_q)  # the value stays the codeword, exactly
    assert torch.equal(gz, g)  # the encoder's gradient is straight-through's
    assert torch.allclose(gq, nu * g)  # the extra term: nu g on the codeword


def test_sync_nu_in_the_quantizer_matches_a_numerical_derivative():
    """Toy: decoder loss L = sum(z_q * g), no VQ loss. The codebook's gradient must be nu times
    dL/de_k, which for fixed assignments is the sum of g over the vectors coded by k: measured by
    central differences of L in each codeword entry."""
    nu = 0.5
    q = VectorQuantizer(K, D, sync_nu=nu).train()
    q.codebook.weight.data = 2 * torch.randn(K, D)
    z = torch.randn(2, D, 4, 4).requires_grad_(True)
    g = torch.randn(2, D, 4, 4)
    z_q, indices, _ = q(z)
    (z_q * g).sum().backward()
    assert torch.equal(z.grad, g)

    def loss(weight):  # L with the codebook ``weight`` (K, D) and the assignments fixed
        return (weight[indices].permute(0, 3, 1, 2) * g.double()).sum().item()

    eps, w = 1e-2, q.codebook.weight.detach().double()
    numeric = torch.zeros(K, D, dtype=torch.float64)
    for k in range(K):
        for d in range(D):
            step = torch.zeros_like(w)
            step[k, d] = eps
            numeric[k, d] = (loss(w + step) - loss(w - step)) / (2 * eps)
    assert numeric.abs().sum() > 0
    assert torch.allclose(q.codebook.weight.grad.double(), nu * numeric, atol=1e-4)


def test_sync_nu_refuses_codebooks_it_cannot_reach():
    for options in ({"ema_decay": 0.99}, {"inplace_lr": 1.0}, {"gradient": "rotation"}):
        with pytest.raises(ValueError, match="sync_nu"):
            VectorQuantizer(K, D, sync_nu=0.2, **options)
    with pytest.raises(ValueError, match="sync_nu passes the decoder's gradient"):
        VQConfig(sync_nu=0.2, ema_decay=0.99)


# ----------------------------------------------------------------------- alternated optimisation


def test_inplace_step_moves_the_codebook_before_the_encoder_step():
    lr = 0.5
    encoder = torch.nn.Conv2d(2, D, 1)
    q = VectorQuantizer(K, D, inplace_lr=lr).train()
    assert not list(q.parameters())  # a buffer: the network's optimiser never sees it
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1)
    x = torch.randn(2, 2, 5, 4)
    before_codes, before_encoder = q.codebook.weight.clone(), encoder.weight.clone()
    z = encoder(x)
    z_q, indices, info = q(z)
    # the forward alone moved the codebook, by its own SGD step (momentum 0 on the first step):
    # w <- w - lr * d/dw mean_(N,D) (w[k_i] - z_i)^2
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, D)
    idx = indices.reshape(-1)
    grad = torch.zeros(K, D).index_add_(0, idx, 2 * (before_codes[idx] - flat)) / flat.numel()
    assert torch.allclose(q.codebook.weight, before_codes - lr * grad, atol=1e-6)
    assert torch.allclose(q.inplace_momentum, grad, atol=1e-6)
    assert not torch.equal(q.codebook.weight, before_codes)
    assert torch.equal(encoder.weight, before_encoder)  # the encoder has not stepped yet
    assert torch.equal(z_q, q.lookup(indices))  # the decoder sees the updated codewords
    assert not info["codebook_loss"].requires_grad  # the codebook term is only reported
    ((z_q - 1).square().mean() + info["loss"]).backward()
    updated = q.codebook.weight.clone()
    optimizer.step()
    assert not torch.equal(encoder.weight, before_encoder)
    assert torch.equal(q.codebook.weight, updated)  # the network's step leaves it alone
    # the next forward: heavy-ball momentum, m <- 0.9 m + grad, w <- w - lr m
    momentum = q.inplace_momentum.clone()
    z = encoder(x).detach()
    _, indices, _ = q(z)
    flat, idx = z.permute(0, 2, 3, 1).reshape(-1, D), indices.reshape(-1)
    grad = torch.zeros(K, D).index_add_(0, idx, 2 * (updated[idx] - flat)) / flat.numel()
    momentum = INPLACE_MOMENTUM * momentum + grad
    assert torch.allclose(q.codebook.weight, updated - lr * momentum, atol=1e-6)


def test_inplace_codebook_has_no_optimiser_group_in_training():
    model = MMSlim(variant_config(BASE, "vq-inplace", branches="hi"))
    names = [g["name"] for g in param_groups(model, TrainConfig.preset("tiny"), "amplitude")]
    assert "hi_codes" not in names and "lo_codes" in names
    with pytest.raises(ValueError, match="inplace_optimizer moves the codebook"):
        VQConfig(inplace_optimizer="sgd", affine="learned")


# --------------------------------------------------------------------------- affine from statistics


def test_running_statistics_rule():
    stats = torch.tensor([[0.0] * D, [1.0] * D, [0.0] * D, [1.0] * D])
    a, b, codebook = torch.randn(50, D), 3 + torch.randn(40, D), torch.randn(K, D)
    update_statistics(stats, a, codebook, first=True)
    rows = lambda x: torch.stack(  # noqa: E731
        [x.mean(0), x.var(0, unbiased=False), codebook.mean(0), codebook.var(0, unbiased=False)]
    )
    assert torch.allclose(stats, rows(a), atol=1e-5)
    update_statistics(stats, b, codebook, first=False)
    m = STATISTICS_MOMENTUM
    assert torch.allclose(stats, (1 - m) * rows(a) + m * rows(b), atol=1e-5)


def test_statistics_affine_tracks_the_mean_and_spread_of_the_inputs():
    mean, std = torch.tensor([3.0, -2.0, 0.5]), torch.tensor([0.5, 2.0, 1.0])
    q = VectorQuantizer(16, D, affine="statistics").train()
    assert [n for n, _ in q.named_parameters()] == ["codebook.weight"]  # no learned map
    identity = q.codes().clone()
    assert torch.equal(identity, q.codebook.weight)  # before any batch: the raw codebook
    for _ in range(80):
        q(mean.view(1, D, 1, 1) + std.view(1, D, 1, 1) * torch.randn(4, D, 8, 8))
    codes = q.codes()  # (16, D), the codebook as used
    assert torch.allclose(codes.mean(0), mean, atol=0.1)
    assert torch.allclose(codes.std(0, unbiased=False), std, rtol=0.1)
    # the raw codebook still spans +-1/K: the map did all the moving
    assert q.codebook.weight.abs().max() <= 1 / 16
    q.eval()
    z = mean.view(1, D, 1, 1) + std.view(1, D, 1, 1) * torch.randn(2, D, 3, 3)
    with torch.no_grad():
        z_q, indices, _ = q(z)
    assert torch.equal(q.lookup(indices), z_q)
