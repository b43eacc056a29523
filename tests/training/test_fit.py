"""Two-stage training: what each stage trains and freezes, the history and prior it writes, an
exact resume through a learning-rate plateau, and the refusals. Checkpoint I/O itself is in
``test_checkpoint.py``, validation metrics in ``test_evaluate.py``."""

import dataclasses

import numpy as np
import pytest
import torch

from mmslim.config import ModelConfig, TrainConfig, VQConfig
from mmslim.data.dataset import RadarFrames, load_frames
from mmslim.data.samples import sample_path
from mmslim.metrics.image import ssim
from mmslim.nn import MMSlim
from mmslim.nn.losses import range_penalty, stage_loss
from mmslim.training.checkpoint import CheckpointError, load_checkpoint, load_model
from mmslim.training.evaluate import evaluate
from mmslim.training.fit import param_groups, train

SAMPLE = sample_path("sample.npz")
TINY = ModelConfig.preset("tiny")
# The two-stage runs: k-means codebooks and batches of 2 (12 steps an epoch), so that even these
# short runs send several codes and the priors of different maps differ (with the reference's
# +-1/K initialisation every frame maps to one code, and any two priors are equal).
SPREAD = ModelConfig.preset("tiny", quantizer=VQConfig(codebook_init="kmeans"))


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
    return train("amplitude", frames, out, SPREAD, _recipe(batch_size=2), progress=False)


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


@pytest.fixture(scope="module")
def phase_run(amp_run, frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("phase")
    return train(
        "phase",
        frames,
        out,
        SPREAD,
        _recipe(epochs=1, batch_size=2),
        amplitude_checkpoint=amp_run.checkpoint,
        progress=False,
    )


def test_amplitude_run_writes_checkpoint_and_history(amp_run, frames):
    state = load_checkpoint(amp_run.checkpoint, stage="amplitude")
    assert state["epoch"] == 2 and [r["epoch"] for r in state["history"]] == [1, 2]
    assert (amp_run.checkpoint.parent / "history_amplitude.csv").read_text().count("\n") == 3
    split = state["split"]
    assert not set(split["train"]) & set(split["val"])
    assert sorted(split["train"] + split["val"]) == frames.subjects()
    # The last row's validation metrics are evaluate()'s on the validation split, for the model
    # as saved (the prior fitted after the last epoch changes no weight).
    model, _ = load_model(amp_run.checkpoint)
    recipe = _recipe(batch_size=2)  # amp_run's: the same batches give the same float sums
    metrics = evaluate(model, RadarFrames(frames, split["val"]), "amplitude", recipe, 2)
    assert {f"val_{k}": v for k, v in metrics.items()}.items() <= state["history"][-1].items()
    assert state["history"][-1]["lr_hi"] == _recipe().lr_hi


def test_checkpoint_reload_gives_identical_outputs(amp_run, frames):
    x = RadarFrames(frames).tensors("amplitude")[0][:4]
    model, _ = load_model(amp_run.checkpoint)
    with torch.no_grad():
        a = amp_run.model.cpu()(x)["x_hat"]
        b = model(x)["x_hat"]
    assert torch.equal(a, b)


def _fitted_counts(model, frames, subjects, stage):
    """Index counts (+1) of ``model`` over ``subjects``' frames of ``stage``, the mask computed
    from their amplitude maps: the prior as fit_prior should have made it."""
    data = RadarFrames(frames, subjects)
    with torch.no_grad():
        sent = model.eval().encode(data.tensors(stage)[0], data.tensors("amplitude")[0])
    k = model.config.num_codes
    return [torch.bincount(sent[f"indices_{b}"].reshape(-1), minlength=k) + 1 for b in ("hi", "lo")]


@pytest.mark.parametrize("stage", ["amplitude", "phase"])
def test_prior_is_fitted_on_the_training_split_of_the_stage(amp_run, phase_run, frames, stage):
    run = {"amplitude": amp_run, "phase": phase_run}[stage]
    model, state = load_model(run.checkpoint, stage)
    split = state["split"]
    expected = _fitted_counts(model, frames, split["train"], stage)
    assert bool(state["model"]["prior.fitted"])
    assert torch.equal(model.prior.counts_hi, expected[0])
    assert torch.equal(model.prior.counts_lo, expected[1])
    # the counts that a prior fitted on the wrong maps or split would have differ
    other_stage = "phase" if stage == "amplitude" else "amplitude"
    for wrong in (
        _fitted_counts(model, frames, split["train"], other_stage),
        _fitted_counts(model, frames, split["val"], stage),
    ):
        assert not (torch.equal(wrong[0], expected[0]) and torch.equal(wrong[1], expected[1]))


def test_phase_stage_keeps_masknet_frozen(amp_run, phase_run):
    before = load_checkpoint(amp_run.checkpoint)["model"]
    after = load_checkpoint(phase_run.checkpoint, stage="phase")["model"]
    mask_keys = [k for k in before if k.startswith("mask_net.")]
    assert mask_keys
    for k in mask_keys:  # weights and BatchNorm running statistics alike
        assert torch.equal(before[k], after[k]), k
    for k in after:  # both branches trained anew
        if k.startswith(("hi.decoder.", "lo.decoder.")) and k.endswith("weight"):
            assert not torch.equal(before[k], after[k]), k
    # frozen, not only left out of the optimiser: no gradient is computed for it
    for name, p in phase_run.model.mask_net.named_parameters():
        assert not p.requires_grad and p.grad is None, name


def test_param_groups_per_stage():
    model = MMSlim(TINY)
    recipe = _recipe(lr_codebook_scale=10.0)
    for stage, names in (("amplitude", ["hi", "hi_codes", "lo", "lo_codes", "mask"]),
                         ("phase", ["hi", "hi_codes", "lo", "lo_codes"])):  # fmt: skip
        groups = param_groups(model, recipe, stage)
        assert [g["name"] for g in groups] == names
        lrs = {g["name"]: g["lr"] for g in groups}
        assert lrs["hi"] == recipe.lr_hi and lrs["lo"] == recipe.lr_lo
        assert lrs["hi_codes"] == 10 * recipe.lr_hi and lrs["lo_codes"] == 10 * recipe.lr_lo
        grouped = [id(p) for g in groups for p in g["params"]]
        assert len(grouped) == len(set(grouped))  # no parameter twice
        expected = [p for n, p in model.named_parameters() if stage == "amplitude" or
                    not n.startswith("mask_net.")]  # fmt: skip
        assert set(grouped) == {id(p) for p in expected}
    assert param_groups(model, recipe, "amplitude")[-1]["lr"] == recipe.lr_mask


def _same(a, b, where="state"):
    """Assert two nested state dicts are equal: tensors bit for bit, the rest with ==."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_resume_through_a_plateau_matches_an_uninterrupted_run(frames, tmp_path):
    """Patience 0 and a learning rate too small to beat the validation loss: the rate halves
    after every epoch but the first. A run stopped after epoch 1 and resumed must halve it at
    the same epochs (the scheduler's state is saved), and end with the same weights, optimiser
    and scheduler state as a run that was never stopped."""
    lr = {"lr_hi": 1e-5, "lr_lo": 1e-5, "lr_mask": 1e-5, "plateau_patience": 0, "val_every": 1,
          "objective": "ssim"}  # fmt: skip
    straight = train("amplitude", frames, tmp_path / "a", TINY, _recipe(epochs=3, **lr),
                     progress=False)  # fmt: skip
    train("amplitude", frames, tmp_path / "b", TINY, _recipe(epochs=1, **lr), progress=False)
    resumed = train("amplitude", frames, tmp_path / "b", TINY, _recipe(epochs=3, **lr),
                    resume=True, progress=False)  # fmt: skip
    rates = [[r[k] for r in straight.history] for k in ("lr_hi", "lr_mask", "lr_lo_codes")]
    assert rates[0][:2] == [1e-5, 5e-6]  # the plateau this test is about, after the resume point
    sa, sb = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert sb["epoch"] == 3
    for a, b in zip(sa["history"], sb["history"]):
        timing = ("seconds", "samples_per_s")  # wall-clock figures differ from run to run
        assert {k: v for k, v in a.items() if k not in timing} == {
            k: v for k, v in b.items() if k not in timing
        }
    _same(sa["model"], sb["model"], "model")
    _same(sa["optimizer"], sb["optimizer"], "optimizer")
    _same(sa["scheduler"], sb["scheduler"], "scheduler")
    assert [[r[k] for r in resumed.history] for k in ("lr_hi", "lr_mask", "lr_lo_codes")] == rates


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


def test_existing_run_is_not_overwritten_silently(amp_run, frames):
    with pytest.raises(CheckpointError, match="already exists.*--resume"):
        train("amplitude", frames, amp_run.checkpoint.parent, SPREAD, _recipe(), progress=False)


def test_resume_with_another_model_config_is_refused(amp_run, frames):
    with pytest.raises(CheckpointError, match="trained with another model config"):
        train("amplitude", frames, amp_run.checkpoint.parent, TINY, _recipe(), resume=True,
              progress=False)  # fmt: skip


def test_unknown_stage_names_the_stages(frames, tmp_path):
    with pytest.raises(ValueError, match=r"stage must be one of \('amplitude', 'phase'\)"):
        train("doppler", frames, tmp_path, TINY, _recipe(), progress=False)


def test_init_starts_from_a_checkpoints_weights_with_a_fresh_recipe(amp_run, frames, tmp_path):
    """With every learning rate 0, a fine-tuning run keeps the weights it started from (the
    EMA codebooks and BatchNorm statistics still move: they are not learned by gradient)."""
    still = _recipe(epochs=1, batch_size=2, lr_hi=0.0, lr_lo=0.0, lr_mask=0.0)
    tuned = train("amplitude", frames, tmp_path / "ft", SPREAD, still, init=amp_run.checkpoint,
                  progress=False)  # fmt: skip
    start = load_checkpoint(amp_run.checkpoint)["model"]
    for name, p in tuned.model.named_parameters():
        if "codebook" not in name:
            assert torch.equal(p.detach(), start[name]), name
    assert [r["epoch"] for r in tuned.history] == [1]  # a new run, not a resumed one
    fresh = train("amplitude", frames, tmp_path / "fresh", SPREAD, still, progress=False)
    name = next(n for n, _ in fresh.model.named_parameters() if "codebook" not in n)
    assert not torch.equal(dict(fresh.model.named_parameters())[name].detach(), start[name])


def test_init_from_weights_of_another_shape_is_refused(amp_run, frames, tmp_path):
    other = ModelConfig.preset("tiny", code_dim=4)
    with pytest.raises(CheckpointError, match="--init .* do not fit this model config"):
        train("amplitude", frames, tmp_path, other, _recipe(), init=amp_run.checkpoint,
              progress=False)  # fmt: skip


def test_phase_takes_no_sender_rules_from_the_amplitude_stage(amp_run, frames, tmp_path):
    from mmslim.training.checkpoint import save_checkpoint

    state = load_checkpoint(amp_run.checkpoint, stage="amplitude")
    model, _ = load_model(amp_run.checkpoint)
    sender = model.with_fine_gate(0.5, detections=True).with_coarse_codes((1, 2, 3))
    state = {**state, "model_config": sender.config.to_dict(), "model": sender.state_dict()}
    amp = save_checkpoint(state, tmp_path / "sender" / "amplitude.pt")
    gated = dataclasses.replace(SPREAD, fine_gate=0.5)  # the gate trains, so it must match
    run = train("phase", frames, tmp_path / "phase", gated, _recipe(epochs=1, batch_size=2),
                amplitude_checkpoint=amp, progress=False)  # fmt: skip
    phase, _ = load_model(run.checkpoint)
    # the amplitude's coarse codes index its own codebook; the detections rule is its sender's
    assert phase.config.coarse_codes == () and not phase.config.gate_detections
    assert phase.config.fine_gate == 0.5
