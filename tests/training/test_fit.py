"""Two-stage training, checkpoints, resume, and the refusals."""

import numpy as np
import pytest
import torch

from mmslim.config import ModelConfig, TrainConfig
from mmslim.data.dataset import RadarFrames, load_frames
from mmslim.data.samples import sample_path
from mmslim.metrics.image import ssim
from mmslim.nn import MMSlim
from mmslim.nn.losses import range_penalty, stage_loss
from mmslim.training.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from mmslim.training.fit import train

SAMPLE = sample_path("sample.npz")
TINY = ModelConfig.preset("tiny")


def _recipe(**kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 8, "lr_hi": 2e-3, "lr_lo": 2e-3, "lr_mask": 1e-3}
    return TrainConfig.preset("cpu-small", **{**base, **kw})


@pytest.fixture(scope="module")
def frames():
    """Four walkers, a few frames each, from the shipped sample."""
    fs = load_frames(SAMPLE)
    keep = np.isin(fs.subject, fs.subjects()[:4]) & (fs.frame < 4)
    return fs.select(keep)


@pytest.fixture(scope="module")
def amp_run(frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("amp")
    return train("amplitude", frames, out, TINY, _recipe(), progress=False)


def test_loss_falls_over_a_few_dozen_steps(frames):
    torch.manual_seed(0)
    model = MMSlim(TINY)
    x = RadarFrames(frames).tensors("amplitude")[0][:8]  # (8, 1, 224, 64)
    opt = torch.optim.Adam(model.parameters(), 2e-3, amsgrad=True)
    losses = []
    for _ in range(40):
        loss = stage_loss(x, model(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])


def test_loss_sees_the_sign_of_the_reconstruction(frames):
    x = RadarFrames(frames).tensors("amplitude")[0][:4]  # (4, 1, 224, 64) in [0, 1]
    zero = torch.zeros(())
    assert ssim(x, -x, window="box") > 0.5  # SSIM alone barely tells a map from its negative
    assert stage_loss(x, {"x_hat": x, "vq_loss": zero}) < 1e-4
    negated = float(stage_loss(x, {"x_hat": -x, "vq_loss": zero}))
    assert negated == pytest.approx(float(1 - ssim(x, -x, window="box") + x.mean()), rel=1e-5)
    assert float(range_penalty(x)) == 0
    assert float(range_penalty(x + 2)) == pytest.approx(float(1 + x.mean()), rel=1e-5)


def test_amplitude_run_writes_checkpoint_and_history(amp_run):
    state = load_checkpoint(amp_run.checkpoint, stage="amplitude")
    assert state["epoch"] == 2 and len(state["history"]) == 2
    row = state["history"][-1]
    for key in ("val_ssim", "val_psnr", "val_ssim_hi", "val_perplexity_lo", "val_mask_mean"):
        assert np.isfinite(row[key])
    assert 0 < row["val_mask_mean"] < 1
    assert (amp_run.checkpoint.parent / "history_amplitude.csv").read_text().count("\n") == 3
    assert not set(state["split"]["train"]) & set(state["split"]["val"])


def test_checkpoint_reload_gives_identical_outputs(amp_run, frames):
    x = RadarFrames(frames).tensors("amplitude")[0][:4]
    model, _ = load_model(amp_run.checkpoint)
    with torch.no_grad():
        a = amp_run.model.cpu()(x)["x_hat"]
        b = model(x)["x_hat"]
    assert torch.equal(a, b)


def test_phase_stage_keeps_masknet_frozen(amp_run, frames, tmp_path):
    result = train(
        "phase",
        frames,
        tmp_path,
        TINY,
        _recipe(epochs=1),
        amplitude_checkpoint=amp_run.checkpoint,
        progress=False,
    )
    before = load_checkpoint(amp_run.checkpoint)["model"]
    after = load_checkpoint(result.checkpoint, stage="phase")["model"]
    mask_keys = [k for k in before if k.startswith("mask_net.")]
    assert mask_keys
    for k in mask_keys:  # weights and BatchNorm running statistics alike
        assert torch.equal(before[k], after[k]), k
    assert not torch.equal(
        before["hi.decoder." + _first_key(after, "hi.decoder.")],
        after["hi.decoder." + _first_key(after, "hi.decoder.")],
    )


def _first_key(state, prefix):
    return next(k[len(prefix) :] for k in state if k.startswith(prefix) and "weight" in k)


def test_resume_matches_an_uninterrupted_run(frames, tmp_path):
    straight = train("amplitude", frames, tmp_path / "a", TINY, _recipe(epochs=3), progress=False)
    train("amplitude", frames, tmp_path / "b", TINY, _recipe(epochs=1), progress=False)
    resumed = train(
        "amplitude", frames, tmp_path / "b", TINY, _recipe(epochs=3), resume=True, progress=False
    )
    sa = load_checkpoint(straight.checkpoint)
    sb = load_checkpoint(resumed.checkpoint)
    assert sb["epoch"] == 3
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert [r["train_loss"] for r in sa["history"]] == [r["train_loss"] for r in sb["history"]]


# --------------------------------------------------------------------------- refusals


def test_phase_without_amplitude_checkpoint_says_what_to_run(frames, tmp_path):
    with pytest.raises(CheckpointError, match="--stage amplitude"):
        train("phase", frames, tmp_path, TINY, _recipe(), progress=False)


def test_phase_with_mismatched_config_is_refused(amp_run, frames, tmp_path):
    other = ModelConfig(hidden=8, res_hidden=8, n_res_layers=1, num_codes=64, code_dim=8)
    with pytest.raises(CheckpointError, match="does not match"):
        train(
            "phase",
            frames,
            tmp_path,
            other,
            _recipe(),
            amplitude_checkpoint=amp_run.checkpoint,
            progress=False,
        )


def test_phase_checkpoint_is_not_an_amplitude_one(amp_run, frames, tmp_path):
    with pytest.raises(CheckpointError, match="'amplitude'-stage checkpoint"):
        load_checkpoint(amp_run.checkpoint, stage="phase")


def test_existing_run_is_not_overwritten_silently(amp_run, frames):
    with pytest.raises(CheckpointError, match="already exists.*--resume"):
        train("amplitude", frames, amp_run.checkpoint.parent, TINY, _recipe(), progress=False)


def test_missing_truncated_and_foreign_checkpoints(amp_run, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "none.pt")
    data = amp_run.checkpoint.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an mmslim checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    save_checkpoint({"stage": "amplitude"}, tmp_path / "c.pt")
    save_checkpoint({"stage": "amplitude", "epoch": 2}, tmp_path / "c.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert load_checkpoint(tmp_path / "c.pt")["epoch"] == 2
