"""The quantizer zoo: every variant on one interface, and each variant's own promise.

Per variant: shapes, usage statistics and the VQ loss with known values, the decoder's gradient
reaching the encoder by the variant's own estimator (straight-through, rotation, FSQ's rounding,
the relaxed softmax) with no VQ loss, indices decoding exactly to the eval-mode output, eval
mode leaving the state alone, state_dict carrying the state. Then one
test per mechanism: EMA, dead-code replacement, k-means and RD-Gaussian initialisation, the
rotation trick, FSQ's grid (against vector-quantize-pytorch's FSQ too), Gumbel annealing, the
soft temperature, the wrapped library VQ's refusals; and the model-level codec round trip, an
exact resume with the stateful variants, and the benchmark's table and plot.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from mmslim.config import (
    FSQConfig,
    GumbelConfig,
    LibraryVQConfig,
    ModelConfig,
    SoftConfig,
    TrainConfig,
    VQConfig,
)
from mmslim.data.dataset import load_frames
from mmslim.data.samples import sample_path
from mmslim.nn import MMSlim, Quantizer
from mmslim.nn.quantizers.codebook_init import kmeans, rd_gaussian_codebook, rd_gaussian_variance
from mmslim.nn.quantizers.codebook_updates import ema_update
from mmslim.nn.quantizers.fsq import FSQ, default_levels
from mmslim.nn.quantizers.gumbel import GumbelQuantizer, SoftQuantizer
from mmslim.nn.quantizers.library import LibraryVQ
from mmslim.nn.quantizers.vq import VectorQuantizer, rotation_trick
from mmslim.nn.quantizers.zoo import VARIANTS, build_quantizer, variant_config

K, D = 64, 8
BASE = ModelConfig(hidden=16, res_hidden=8, n_res_layers=1, num_codes=K, code_dim=D)
SAMPLE = sample_path("sample.npz")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _quantizer(name: str, **overrides) -> Quantizer:
    return build_quantizer(variant_config(BASE, name, **overrides), "hi")


def _train_steps(q: Quantizer, steps: int = 3, shape=(4, D, 7, 5)) -> torch.Tensor:
    """A few training-mode forwards (no optimiser); returns the last input."""
    q.train()
    for _ in range(steps):
        z = torch.randn(*shape)
        q(z)
    return z


# --------------------------------------------------------------------------- every variant


def _loss_factor(name: str) -> float:
    """The eval-mode loss of a variant over the mean squared error between z and its code."""
    v, beta = VARIANTS[name], BASE.beta
    if isinstance(v, (FSQConfig, LibraryVQConfig)):  # FSQ has none; the library's only in training
        return 0.0
    own_update = getattr(v, "ema_decay", 0) or getattr(v, "inplace_optimizer", "none") != "none"
    return beta if own_update else 1.0 + beta  # EMA, in-place step: the commitment term only


@pytest.mark.parametrize("name", list(VARIANTS))
def test_shapes_statistics_and_codec_range(name):
    q = _quantizer(name)
    assert isinstance(q, Quantizer) and q.num_codes == K and q.code_dim == D
    for mode in ("train", "eval"):
        q.train(mode == "train")
        z = torch.randn(3, D, 6, 4)
        z_q, indices, info = q(z)
        assert z_q.shape == z.shape and z_q.dtype == torch.float32
        assert indices.shape == (3, 6, 4) and indices.dtype == torch.int64
        assert 0 <= indices.min() and indices.max() < K  # what the codec accepts
        counts = info["counts"]
        assert torch.equal(counts, torch.bincount(indices.reshape(-1), minlength=K))
        p = counts[counts > 0].double() / 72
        assert info["perplexity"].item() == pytest.approx(torch.exp(-(p * p.log()).sum()).item())
        assert info["dead_share"].item() == pytest.approx((counts == 0).double().mean().item())
        if mode == "eval":
            mse = (z - z_q).square().mean().item()
            assert info["loss"].item() == pytest.approx(_loss_factor(name) * mse, rel=1e-5)


def _gradient_kind(name: str) -> str:
    """How a variant passes the decoder's gradient to the encoder."""
    v = VARIANTS[name]
    if isinstance(v, (GumbelConfig, SoftConfig)):
        return "relaxed"  # through the softmax mixture the decoder sees
    if isinstance(v, FSQConfig):
        return "fsq"  # straight through the rounding, through the tanh bound
    if v.gradient == "rotation":
        return "rotation"
    return "straight-through"  # every other VQ, ours and the library's


def _rotated(z: torch.Tensor, z_q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The rotation trick's gradient, lambda R^T g per vector (Fifty et al. 2025, eq. 4):
    R = I - 2 w w^T + 2 q u^T with u = z/|z|, q = z_q/|z_q|, w = (u + q)/|u + q|,
    lambda = |z_q|/|z|. Vectors along dim 1."""
    u, q = z / z.norm(dim=1, keepdim=True), z_q / z_q.norm(dim=1, keepdim=True)
    w = (u + q) / (u + q).norm(dim=1, keepdim=True)
    lam = z_q.norm(dim=1, keepdim=True) / z.norm(dim=1, keepdim=True)
    dot = lambda a, b: (a * b).sum(dim=1, keepdim=True)  # noqa: E731
    return lam * (g - 2 * w * dot(w, g) + 2 * u * dot(q, g))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_decoder_gradient_reaches_the_encoder_without_the_vq_loss(name):
    """Backpropagate a linear decoder's loss, (z_q * g).sum(), and nothing else: what reaches z
    is the variant's own estimator, exactly (the VQ loss is left out, since its commitment term
    alone would carry a gradient to z)."""
    q = _quantizer(name)
    _train_steps(q)  # initialisation, EMA and annealing have happened
    kind = _gradient_kind(name)
    if kind == "relaxed":  # codewords and inputs on one scale, so the softmax is not one-hot
        q._set_codes(torch.arange(K), 0.5 * torch.randn(K, D))
    z = (0.5 * torch.randn(4, D, 6, 4)).requires_grad_(True)
    g = torch.randn(4, D, 6, 4)
    before = copy.deepcopy(q)
    z_q, _, _ = q(z)
    (z_q * g).sum().backward()
    assert z.grad is not None, "no gradient reaches the encoder"
    if kind == "straight-through":
        assert torch.equal(z.grad, g)
    elif kind == "rotation":
        expected = _rotated(z.detach(), z_q.detach(), g)
        assert torch.allclose(z.grad, expected, atol=1e-5)
        assert not torch.allclose(z.grad, g)
    elif kind == "fsq":
        from vector_quantize_pytorch import FSQ as LibraryFSQ

        d = len(q.levels)
        theirs = LibraryFSQ(list(q.levels), dim=d)
        z_d = z.detach()[:, :d].clone().requires_grad_(True)
        (theirs(z_d)[0] * g[:, :d]).sum().backward()
        assert torch.equal(z.grad[:, :d], z_d.grad) and z.grad[:, :d].abs().sum() > 0
        assert not z.grad[:, d:].any()  # the channels FSQ ignores
    else:  # the derivative of what the decoder sees, by central differences (same noise)
        f = lambda t: (copy.deepcopy(before)(t)[0] * g).sum().item()  # noqa: E731
        for _ in range(3):
            v = torch.randn_like(z)
            v /= v.norm()
            slope = (f(z.detach() + 1e-2 * v) - f(z.detach() - 1e-2 * v)) / 2e-2
            assert (z.grad * v).sum().item() == pytest.approx(slope, abs=2e-3)
        assert z.grad.norm() > 1


@pytest.mark.parametrize("name", list(VARIANTS))
def test_indices_decode_exactly_to_the_eval_output(name):
    q = _quantizer(name)
    _train_steps(q)  # initialisation, EMA, re-seeding and annealing have happened
    q.eval()
    with torch.no_grad():
        z = 3 * torch.randn(2, D, 5, 3)
        z_q, indices, _ = q(z)
        assert torch.equal(q.lookup(indices), z_q)  # bit for bit
        assert torch.equal(q(z)[1], indices)  # eval mode is deterministic


@pytest.mark.parametrize("name", list(VARIANTS))
def test_eval_mode_changes_no_state_and_state_dict_restores_it(name):
    q = _quantizer(name)
    _train_steps(q)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    q.eval()
    with torch.no_grad():
        q(torch.randn(2, D, 5, 3))
    after = q.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # A fresh quantizer loaded from the state_dict continues training identically (resume).
    clone = _quantizer(name)
    clone.load_state_dict(q.state_dict())
    q.train(), clone.train()
    z = torch.randn(4, D, 7, 5)
    a, b = q(z), clone(z)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_plain_vq_keeps_its_reference_state():
    q = _quantizer("vq")
    assert type(q) is VectorQuantizer and list(q.state_dict()) == ["codebook.weight"]
    assert q.codebook.weight.abs().max() <= 1 / K


def test_variant_in_one_branch_only_and_refusals():
    c = variant_config(BASE, "fsq", branches="lo")
    assert type(build_quantizer(c, "hi")) is VectorQuantizer
    assert isinstance(build_quantizer(c, "lo"), FSQ)
    model = MMSlim(variant_config(BASE, "vq-ema", branches="hi"))
    assert not list(model.hi.quantizer.parameters())  # EMA codebook: a buffer, not a parameter
    assert list(model.lo.quantizer.parameters())
    with pytest.raises(ValueError, match="give a family config, e.g. VQConfig()"):
        ModelConfig(quantizer="fsq")
    with pytest.raises(ValueError, match="num_codes"):
        build_quantizer(variant_config(BASE, "fsq", levels=(8, 8, 8)))
    with pytest.raises(ValueError, match="'fsq' .FSQConfig. has no option ema_decay; its options"):
        variant_config(BASE, "fsq", ema_decay=0.99)
    with pytest.raises(ValueError, match="quantizer_branches"):
        variant_config(BASE, "vq", branches="middle")
    with pytest.raises(ValueError, match="affine"):
        VectorQuantizer(K, D, ema_decay=0.99, affine="learned")
    with pytest.raises(ValueError, match="set ema_decay = 0 or affine = 'none'"):
        VQConfig(ema_decay=0.99, affine="learned")


# --------------------------------------------------------------------------- mechanisms


def test_ema_moves_codewords_toward_their_assigned_inputs():
    q = VectorQuantizer(8, 2, ema_decay=0.9).train()
    q._set_codes(torch.arange(8), 2 * torch.randn(8, 2))  # codebook and EMA state alike
    z = torch.randn(1, 2, 16, 16) + 1.0
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)  # (256, 2)
    for _ in range(5):
        before = q.codebook.weight.clone()
        _, indices, info = q(z)
        assert info["loss"] is info["commitment_loss"]  # no codebook loss with EMA
        idx = indices.reshape(-1)
        for k in range(8):
            if (idx == k).any():  # a used codeword moves toward the mean of its inputs
                mean = flat[idx == k].mean(0)
                assert (q.codebook.weight[k] - mean).norm() < (before[k] - mean).norm()
            else:  # an unused one stays (its EMA state decays in proportion)
                assert torch.allclose(q.codebook.weight[k], before[k], atol=1e-5)


def test_ema_update_formula():
    codebook, size, total = torch.zeros(2, 1), torch.ones(2), torch.zeros(2, 1)
    flat, idx = torch.tensor([[2.0], [4.0], [10.0]]), torch.tensor([0, 0, 1])
    ema_update(codebook, size, total, flat, idx, decay=0.5, eps=0.0)
    assert size.tolist() == [1.5, 1.0] and total.squeeze(1).tolist() == [3.0, 5.0]
    assert codebook.squeeze(1).tolist() == pytest.approx([2.0, 5.0])


def test_dead_code_replacement_revives_unused_codes():
    q = VectorQuantizer(16, 2, dead_code_threshold=2).train()
    q.codebook.weight.data = torch.randn(16, 2)
    q.codebook.weight.data[:4] += 100.0  # four codes far from every input: dead
    z = torch.randn(2, 2, 8, 8)
    q(z)
    q(z)  # 2 steps unused: they are re-seeded on the next batch, from that batch
    assert (q.unused_steps[:4] >= 2).all()
    q(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in range(4):  # each re-seeded codeword is one of the batch's vectors
        assert (flat - q.codebook.weight[k]).norm(dim=1).min() < 1e-6
    _, _, info = q(z)
    assert (info["counts"][:4] > 0).all() and (q.unused_steps[:4] == 0).all()


def _mixture(n_per: int = 200):
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 20.0]])
    points = torch.cat([c + 0.3 * torch.randn(n_per, 2) for c in centres])  # (1000, 2)
    return centres, points


def _matched(found: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Distance from each centre to its nearest found codeword."""
    return torch.cdist(centres, found).min(dim=1).values


def test_kmeans_init_places_codewords_on_cluster_centres():
    centres, points = _mixture()
    found = kmeans(points, 5, generator=torch.Generator().manual_seed(0))
    assert (_matched(found, centres) < 0.1).all()
    # In the quantizer: k-means on the first batches (>= 4K vectors), then quantization.
    q = VectorQuantizer(5, 2, init="kmeans").train()
    q(points.T.reshape(1, 2, 40, 25))
    assert bool(q.initialized) and (_matched(q.codebook.weight, centres) < 0.1).all()


def test_rd_gaussian_init_matches_its_formula():
    for k, d in ((512, 32), (512, 64), (16, 2)):
        rate = math.log2(k) / d
        assert rd_gaussian_variance(4.0, k, d) == pytest.approx(4.0 * (1 - 2 ** (-2 * rate)))
    assert rd_gaussian_variance(1.0, 2**20, 1) == pytest.approx(1.0, abs=1e-9)  # R -> inf
    samples = torch.tensor([2.0, -1.0]) + torch.tensor([3.0, 0.5]) * torch.randn(20000, 2)
    codebook = rd_gaussian_codebook(samples, 8192, torch.Generator().manual_seed(0))
    assert codebook.shape == (8192, 2)
    expected = rd_gaussian_variance(samples.var(0, unbiased=False), 8192, 2)
    assert torch.allclose(codebook.var(0), expected, rtol=0.05)
    assert torch.allclose(codebook.mean(0), samples.mean(0), atol=0.1)


def test_rotation_trick_value_and_gradient():
    z = torch.randn(3, 5, 2, 2, requires_grad=True)
    z_q = torch.randn(3, 5, 2, 2)
    out = rotation_trick(z, z_q)
    assert torch.equal(out, z_q)  # exact value
    g = torch.randn_like(z)
    (out * g).sum().backward()
    # The gradient is lambda R^T g: R is orthogonal, so |grad| = lambda |g| per vector.
    lam = z_q.norm(dim=1) / z.detach().norm(dim=1)
    assert torch.allclose(z.grad.norm(dim=1), lam * g.norm(dim=1), rtol=1e-4)
    # and R maps z's direction onto z_q's: <grad, z/|z|> = lambda <g, z_q/|z_q|>
    u, q = z.detach() / z.detach().norm(dim=1, keepdim=True), z_q / z_q.norm(dim=1, keepdim=True)
    assert torch.allclose((z.grad * u).sum(1), lam * (g * q).sum(1), atol=1e-4)


def test_fsq_grid_and_levels():
    assert default_levels(512) == (8, 8, 8) and math.prod(default_levels(1024)) == 1024
    with pytest.raises(ValueError):
        default_levels(756)
    with pytest.raises(ValueError, match="32768"):
        FSQ((16, 16, 16, 16), 8)
    fsq = FSQ((8, 5, 3), 4)
    assert fsq.num_codes == 120
    codes = fsq.lookup(torch.arange(120).view(1, 120, 1))  # (1, 4, 120, 1)
    assert codes[:, 3].abs().max() == 0  # padded channel
    assert len({tuple(c) for c in codes[0, :3, :, 0].T.tolist()}) == 120  # all distinct
    assert codes.abs().max() <= 1
    z = 10 * torch.randn(4, 4, 9, 9)  # saturating inputs still give valid indices
    _, indices, info = fsq(z)
    assert indices.min() >= 0 and indices.max() < 120 and info["loss"] == 0


def test_fsq_matches_the_library_fsq():
    from vector_quantize_pytorch import FSQ as LibraryFSQ

    levels = (8, 5, 3)
    ours, theirs = FSQ(levels, 3), LibraryFSQ(list(levels), dim=3)
    z = 3 * torch.randn(2, 3, 6, 7)
    z_q, indices, _ = ours(z)
    their_q, their_indices = theirs(z)  # channels first in, channels first out
    assert torch.equal(indices, their_indices.long())
    assert torch.allclose(z_q, their_q, atol=1e-6)


def test_library_vq_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="EMA"):
        variant_config(BASE, "vqp-ema-kmeans-dead", ema_decay=0.0)
    with pytest.raises(ValueError, match="has no option affine"):
        variant_config(BASE, "vqp-ema-kmeans-dead", affine="learned")
    with pytest.raises(ValueError, match="rd_gaussian"):
        variant_config(BASE, "vqp-ema-kmeans-dead", codebook_init="rd_gaussian")
    with pytest.raises(ValueError, match="EMA"):
        LibraryVQ(K, D, ema_decay=0.0)


def test_gumbel_anneals_its_temperature_and_eval_is_hard():
    q = GumbelQuantizer(K, D, tau_start=2.0, tau_end=0.5, anneal_steps=4)
    assert q.temperature().item() == pytest.approx(2.0)
    _train_steps(q, steps=2)
    assert q.temperature().item() == pytest.approx(1.0)  # geometric: halfway, sqrt(2 * 0.5)
    _train_steps(q, steps=5)
    assert q.temperature().item() == pytest.approx(0.5) and int(q.step) == 7
    q.eval()
    z = torch.randn(2, D, 4, 4)
    _, indices, info = q(z)
    assert torch.equal(indices, q.nearest(z)) and int(q.step) == 7
    assert info["temperature"].item() == pytest.approx(0.5)


def test_soft_temperature_is_learned():
    q = SoftQuantizer(K, D, tau=2.0).train()
    assert "log_tau" in dict(q.named_parameters())
    z_q, _, info = q(torch.randn(2, D, 4, 4))
    (z_q.square().sum() + info["loss"]).backward()
    assert q.log_tau.grad is not None and q.log_tau.grad != 0
    assert info["temperature"].item() == pytest.approx(2.0)


# --------------------------------------------------------------------------- in the model


@pytest.mark.parametrize(
    "name",
    [
        "vq-ema-kmeans-dead",
        "vq-rotation",
        "vq-sync",
        "vq-inplace",
        "vq-affine-statistics",
        "fsq",
        "gumbel",
        "soft",
        "soft-std",
        "soft-gamma-personal",
        "vqp-ema-kmeans-dead",
    ],  # fmt: skip
)
def test_model_codec_round_trip_is_exact(name):
    model = MMSlim(variant_config(BASE, name))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(4, 1, 32, 32)
    for _ in range(2):
        loss = (model(x)["x_hat"] - x).square().mean() + model(x)["vq_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        enc = model.encode(x)
        model.prior.update(enc["indices_hi"], enc["indices_lo"])
        expected = model(x)["x_hat"]
        packed = model.compress(x)
        assert torch.equal(model.decompress(**packed)["x_hat"], expected)


def test_resume_is_exact_with_stateful_quantizers(tmp_path):
    from mmslim.training.checkpoint import load_checkpoint
    from mmslim.training.fit import train

    fs = load_frames(SAMPLE)
    frames = fs.select(np.isin(fs.subject, fs.subjects()[:4]) & (fs.frame < 1))  # 4 frames
    config = variant_config(BASE, "gumbel", codebook_init="kmeans", dead_code_steps=1)
    assert config.quantizer == GumbelConfig(codebook_init="kmeans", dead_code_steps=1)
    recipe = TrainConfig.preset("cpu-small", epochs=2, batch_size=2)
    one_epoch = TrainConfig.from_dict({**recipe.to_dict(), "epochs": 1})
    straight = train("amplitude", frames, tmp_path / "a", config, recipe, progress=False)
    train("amplitude", frames, tmp_path / "b", config, one_epoch, progress=False)
    resumed = train(
        "amplitude", frames, tmp_path / "b", config, recipe, resume=True, progress=False
    )
    sa, sb = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert int(sa["model"]["hi.quantizer.step"]) == 6  # 6 training frames: 3 steps per epoch
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k


def test_bench_writes_table_and_plot(tmp_path):
    from mmslim.bench.quantizers import COLUMNS, run_quantizer_bench
    from mmslim.codec.maps import compress_maps
    from mmslim.files import read_csv
    from mmslim.training.checkpoint import load_checkpoint, load_model

    fs = load_frames(SAMPLE)
    frames = fs.select(np.isin(fs.subject, fs.subjects()[:4]) & (fs.frame < 1))  # 8 frames
    rows = run_quantizer_bench(
        frames, tmp_path, ["vq", "fsq"], epochs=1, base_config=BASE, progress=False
    )
    assert [r["variant"] for r in rows] == ["vq", "fsq"]
    for r in rows:  # each row reports its run: the last validation and the file of its model
        assert set(COLUMNS) <= set(r)
        state = load_checkpoint(tmp_path / r["variant"] / "amplitude.pt")
        last = state["history"][-1]
        for key in ("ssim", "psnr", "perplexity_hi", "perplexity_lo", "dead_hi", "dead_lo"):
            assert r[key] == last[f"val_{key}"], key
        model, _ = load_model(tmp_path / r["variant"] / "amplitude.pt")
        val = frames.of_subjects(state["split"]["val"]).amplitude
        blob = compress_maps(model, val, "amplitude", "ans")
        assert r["bits_per_element"] == 8 * len(blob) / val.size
        assert r["ratio_f32"] == pytest.approx(32 / r["bits_per_element"])
        assert r["quantizer_ms"] > 0
    assert (tmp_path / "quantizers.png").stat().st_size > 0
    assert [r["variant"] for r in read_csv(tmp_path / "quantizers.csv")] == ["vq", "fsq"]
    # resume keeps finished variants (no retraining) and trains only the new one
    trained = (tmp_path / "fsq" / "amplitude.pt").stat().st_mtime_ns
    again = run_quantizer_bench(
        frames, tmp_path, ["fsq", "vq-ema"], epochs=1, base_config=BASE, progress=False, resume=True
    )
    assert [r["variant"] for r in again] == ["fsq", "vq-ema"]
    assert again[0]["ssim"] == pytest.approx(rows[1]["ssim"])
    assert (tmp_path / "fsq" / "amplitude.pt").stat().st_mtime_ns == trained
    assert (tmp_path / "vq-ema" / "amplitude.pt").exists()


def test_bench_recipes_set_the_fields_they_name():
    from mmslim.bench.quantizers import recipe_configs

    model, train = recipe_configs("cpu-small", epochs=3, seed=2)
    assert model == ModelConfig.preset("cpu-small")
    assert train == TrainConfig.preset("cpu-small", epochs=3, seed=2)
    # ssim-v1: the cpu-small presets of the shipped bench results (mmslim/config.py at 44fdf2a)
    model, train = recipe_configs("ssim-v1", epochs=5, seed=1)
    sizes = {"hidden": 48, "res_hidden": 16, "n_res_layers": 2, "num_codes": 512, "code_dim": 32}
    assert {k: getattr(model, k) for k in sizes} == sizes
    assert model.mask_head == "reference"
    recipe = {"epochs": 5, "seed": 1, "batch_size": 16, "lr_hi": 1e-3, "lr_lo": 1e-3,
              "lr_mask": 5e-4, "lr_codebook_scale": 10.0, "objective": "ssim", "rate_weight": 0.0,
              "val_every": 1, "ssim_window": "box", "lost_share": 0.0}  # fmt: skip
    assert {k: getattr(train, k) for k in recipe} == recipe
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_configs("cpu-large")


def test_summarise_groups_seeds_per_branch_setting():
    from mmslim.bench.quantizers import SUMMARY, summarise
    from mmslim.viz.bench import plot_quality_vs_rate

    def row(variant, branches, ssim):
        return {"variant": variant, "branches": branches, **dict.fromkeys(SUMMARY, 1.0),
                "ssim": ssim}  # fmt: skip

    rows = [row("vq", "both", 0.5), row("fsq", "both", 0.6), row("vq", "both", 0.7),
            row("vq", "hi", 0.4)]  # fmt: skip
    summary = summarise(rows)
    assert [(r["branches"], r["variant"], r["n_seeds"]) for r in summary] == [
        ("both", "vq", 2), ("both", "fsq", 1), ("hi", "vq", 1)]  # fmt: skip
    assert summary[0]["ssim"] == pytest.approx(0.6)
    assert summary[0]["ssim_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary[1]["ssim_std"] == 0
    assert len(plot_quality_vs_rate(summary).axes) == 3  # all, the best, the legend
