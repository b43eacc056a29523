"""Soft discretization options of the soft quantizer (semivq): the learned std and its penalty,
the learned offset gamma (shared, personalised); gradients in training, absent at inference."""

from __future__ import annotations

import pytest
import torch

from mmslim.config import SoftConfig
from mmslim.nn.quantizers.gumbel import SoftQuantizer
from mmslim.nn.quantizers.soft_discretization import GammaOffset, LearnedStd

K, D = 16, 4
OPTIONS = {
    "std": {"learnable_std": True, "alter_penalty": "unit"},
    "gamma-shared": {"learnable_gamma": True},
    "gamma-personalize": {"learnable_gamma": True, "gamma_policy": "personalize"},
    "all": {"learnable_std": True, "alter_penalty": "spread", "learnable_gamma": True},
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _pair(options: dict) -> tuple[SoftQuantizer, SoftQuantizer]:
    """A soft quantizer with ``options`` and a plain one with the same codebook and tau."""
    q, plain = SoftQuantizer(K, D, **options), SoftQuantizer(K, D)
    q.codebook.weight.data = 0.5 * torch.randn(K, D)
    plain.codebook.weight.data = q.codebook.weight.data.clone()
    return q, plain


@pytest.mark.parametrize("name", list(OPTIONS))
def test_learned_std_and_gamma_get_gradients_in_training(name):
    q, _ = _pair(OPTIONS[name])
    extra = [(n, p) for n, p in q.named_parameters() if n.startswith(("std.", "gamma."))]
    assert extra  # the option adds parameters (and they join the codebook's optimiser group)
    opt = torch.optim.SGD(q.parameters(), lr=0.1)
    z, g = 0.5 * torch.randn(2, D, 4, 4), torch.randn(2, D, 4, 4)
    for _ in range(2):  # the second step reaches the layers behind gamma's zero-started output
        opt.zero_grad()
        z_q, _, info = q.train()(z)
        ((z_q * g).sum() + info["loss"]).backward()
        opt.step()
    for n, p in extra:
        assert p.grad is not None and p.grad.abs().sum() > 0, n


@pytest.mark.parametrize("name", list(OPTIONS))
def test_they_vanish_from_the_inference_path(name):
    q, plain = _pair(OPTIONS[name])
    with torch.no_grad():  # move every extra parameter away from its start
        for n, p in q.named_parameters():
            if n.startswith(("std.", "gamma.")):
                p.add_(torch.randn_like(p))
    q.eval(), plain.eval()
    z = torch.randn(2, D, 5, 3)
    with torch.no_grad():
        z_q, indices, info = q(z)
        plain_q, plain_indices, plain_info = plain(z)
    assert torch.equal(z_q, plain_q) and torch.equal(indices, plain_indices)
    assert torch.equal(q.lookup(indices), z_q)  # a receiver rebuilds it from the indices
    assert torch.equal(info["loss"], plain_info["loss"])  # no penalty outside training
    # ... while in training they change what the decoder sees
    q.train(), plain.train()
    assert not torch.allclose(q(z)[0], plain(z)[0])


def test_learned_std_scales_the_kernel_per_dimension():
    std = LearnedStd(D, "unit", weight=0.5)
    with torch.no_grad():
        std.log_std.copy_(torch.tensor([0.0, 0.5, -0.5, 1.0]))
    sigma = std.log_std.exp()
    z, codes = torch.randn(7, D), torch.randn(K, D)
    zs, cs = std.scale(z, codes)
    expected = (((z[:, None] - codes[None]) / sigma).square()).sum(2)  # (7, K)
    assert torch.allclose(torch.cdist(zs, cs).square(), expected, atol=1e-5)
    assert std.penalty().item() == pytest.approx(0.5 * (1 - sigma).square().mean().item())
    assert LearnedStd(D, "spread", 0.5).penalty().item() == pytest.approx(-0.5)  # sigma = 1
    assert LearnedStd(D).penalty().item() == 0
    # at its start the learned std is the plain soft quantizer, in training too
    q, plain = _pair({"learnable_std": True})
    z = torch.randn(2, D, 3, 3)
    assert torch.allclose(q.train()(z)[0], plain.train()(z)[0])


def test_gamma_shapes_and_zero_start():
    codes, z_soft = torch.randn(K, D), torch.randn(9, D)
    shared, personal = GammaOffset(K, D, "shared"), GammaOffset(K, D, "personalize")
    assert shared(z_soft, codes).shape == (1, D) and personal(z_soft, codes).shape == (9, D)
    assert not shared(z_soft, codes).any() and not personal(z_soft, codes).any()
    with pytest.raises(ValueError, match="gamma_policy 'each'"):
        GammaOffset(K, D, "each")


def test_options_are_checked():
    with pytest.raises(ValueError, match="set learnable_std = True"):
        SoftConfig(alter_penalty="unit")
    with pytest.raises(ValueError, match="SoftConfig.gamma_policy = 'each'"):
        SoftConfig(learnable_gamma=True, gamma_policy="each")
    with pytest.raises(ValueError, match="learnable_std=True"):
        SoftQuantizer(K, D, alter_penalty="spread")
    with pytest.raises(ValueError, match="no sync_nu option"):
        SoftQuantizer(K, D, sync_nu=0.2)
