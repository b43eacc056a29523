"""Checkpoint I/O: what is written, what is read back, and every refusal with its fix."""

from __future__ import annotations

import re
import threading
from fractions import Fraction

import pytest
import torch

from mmslim import __version__
from mmslim.config import ModelConfig
from mmslim.nn import MMSlim
from mmslim.training.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
    slim_checkpoint,
)

TINY = ModelConfig.preset("tiny")


def model_state(config: ModelConfig = TINY, seed: int = 0, fitted: bool = True) -> dict:
    """A checkpoint's contents for an untrained model with a fitted prior (random counts)."""
    torch.manual_seed(seed)
    model = MMSlim(config)
    if fitted:
        g = torch.Generator().manual_seed(seed)
        counts = torch.randint(1, 50, (2, config.num_codes), generator=g)
        model.prior.set_counts(counts[0], counts[1])
    return {"stage": "amplitude", "model_config": config.to_dict(), "model": model.state_dict()}


def test_saved_checkpoint_is_tagged_and_reads_back(tmp_path):
    state = model_state()
    save_checkpoint(
        {**state, "epoch": 3, "history": [{"epoch": 3, "loss": 0.5}]}, tmp_path / "c.pt"
    )
    back = load_checkpoint(tmp_path / "c.pt", stage="amplitude")
    assert back["format"] == FORMAT and back["version"] == __version__
    assert back["epoch"] == 3 and back["history"] == [{"epoch": 3, "loss": 0.5}]
    assert back["model"].keys() == state["model"].keys()
    assert all(torch.equal(back["model"][k], v) for k, v in state["model"].items())


def test_load_model_gives_the_same_model_in_eval_mode(tmp_path):
    state = model_state(seed=3)
    save_checkpoint(state, tmp_path / "c.pt")
    model, back = load_model(tmp_path / "c.pt")
    assert not model.training and back["stage"] == "amplitude"
    original = MMSlim(TINY)
    original.load_state_dict(state["model"])
    original.eval()
    x = torch.rand(2, 1, 224, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x)["x_hat"], original(x)["x_hat"])
    assert model.prior.is_fitted
    assert torch.equal(model.prior.counts_hi, state["model"]["prior.counts_hi"])
    assert model.fingerprint() == original.fingerprint()


def test_prior_of_a_checkpoint_written_before_it_was_a_buffer(tmp_path):
    state = model_state(seed=4)
    weights = {k: v for k, v in state["model"].items() if not k.startswith("prior.")}
    legacy = {"counts_hi": state["model"]["prior.counts_hi"] + 1,
              "counts_lo": state["model"]["prior.counts_lo"] + 2}  # fmt: skip
    save_checkpoint({**state, "model": weights, "prior": legacy}, tmp_path / "old.pt")
    model, _ = load_model(tmp_path / "old.pt")
    assert model.prior.is_fitted
    assert torch.equal(model.prior.counts_hi, legacy["counts_hi"])
    assert torch.equal(model.prior.counts_lo, legacy["counts_lo"])
    # Both: the buffers in the weights are the newer, and they win.
    save_checkpoint({**state, "prior": legacy}, tmp_path / "both.pt")
    model, _ = load_model(tmp_path / "both.pt")
    assert torch.equal(model.prior.counts_hi, state["model"]["prior.counts_hi"])
    # No prior at all: the model loads with its unfitted (uniform) prior.
    save_checkpoint({**state, "model": weights}, tmp_path / "none.pt")
    model, _ = load_model(tmp_path / "none.pt")
    assert not model.prior.is_fitted
    assert torch.equal(model.prior.counts_hi, torch.ones(TINY.num_codes, dtype=torch.int64))


def test_weights_that_do_not_fit_their_config_are_refused(tmp_path):
    state = model_state()
    other = ModelConfig.preset("tiny", hidden=8)
    save_checkpoint({**state, "model_config": other.to_dict()}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="weights do not fit the model its config describes"):
        load_model(tmp_path / "c.pt")


def test_a_checkpoint_without_a_model_config_is_refused_by_name(tmp_path):
    save_checkpoint({"stage": "amplitude", "model": {}}, tmp_path / "c.pt")
    message = (
        rf"^{re.escape(str(tmp_path / 'c.pt'))} is an mmslim checkpoint without a usable model "
        r"\(KeyError: 'model_config'\); use a checkpoint written by `mmslim train`\.$"
    )
    with pytest.raises(CheckpointError, match=message):
        load_model(tmp_path / "c.pt")


def test_wrong_stage_is_refused_with_both_stages_named(tmp_path):
    save_checkpoint(model_state(), tmp_path / "amp.pt")
    with pytest.raises(CheckpointError, match="is a 'amplitude'-stage checkpoint; a 'phase' one"):
        load_checkpoint(tmp_path / "amp.pt", stage="phase")
    with pytest.raises(CheckpointError, match="'amplitude'-stage checkpoint; a 'phase' one"):
        load_model(tmp_path / "amp.pt", stage="phase")


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*none\.pt; train one with "
                       r"`mmslim train --stage amplitude"):  # fmt: skip
        load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="--stage phase .* --amplitude-checkpoint FILE"):
        load_checkpoint(tmp_path / "none.pt", stage="phase")


def test_folders_empty_files_and_pickles_are_refused_with_what_to_do(tmp_path):
    def refused(path, message, stage=None):
        with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
            load_checkpoint(path, stage)

    refused(tmp_path, f"{tmp_path} is a folder; pass the checkpoint file in it (e.g. "
            f"{tmp_path}/amplitude.pt).")  # fmt: skip
    none = tmp_path / "none.pt"
    train = f"no checkpoint at {none}; train one with `mmslim train --stage"
    refused(none, f"{train} amplitude --data DATA --out DIR`.", "amplitude")
    refused(none, f"{train} phase ... --amplitude-checkpoint FILE`.", "phase")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    refused(empty, f"{empty} is empty (0 bytes): an interrupted copy or a failed download. Copy "
            "it again or train again.")  # fmt: skip
    opcode = tmp_path / "opcode.pt"
    opcode.write_bytes(b"\x80\x02P0\n.")  # a pickle opcode that torch never allows
    refused(opcode, f"{opcode} is not a PyTorch checkpoint, or a damaged one; re-copy it or train "
            "again.")  # fmt: skip
    objects = tmp_path / "objects.pt"
    torch.save({"format": FORMAT, "stage": "amplitude", "share": Fraction(1, 3)}, objects)
    refused(objects, f"{objects} holds pickled Python objects besides tensors, which mmslim "
            "refuses to load (unpickling can run arbitrary code). Use a checkpoint written by "
            "`mmslim train`.")  # fmt: skip


def test_load_model_puts_the_model_on_the_device_asked_for(tmp_path):
    save_checkpoint(model_state(), tmp_path / "c.pt")
    model, _ = load_model(tmp_path / "c.pt", device="meta")  # a device every build has
    assert {p.device.type for p in model.parameters()} == {"meta"} and not model.training


def test_truncated_and_foreign_files_are_refused(tmp_path):
    """An unreadable file is refused with the loader's own error, whitespace collapsed and cut
    at 120 characters, or "no details" where it has none."""
    save_checkpoint(model_state(), tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError) as error:  # what the loader says about it
        torch.load(cut, weights_only=True)
    assert len(str(error.value)) > 120
    detail = " ".join(str(error.value).split())[:120]
    tail = (
        "It may be truncated by an interrupted copy or not a PyTorch file; re-copy it or train "
        "again."
    )
    message = f"{cut} could not be read as a checkpoint (RuntimeError: {detail}). {tail}"
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        load_checkpoint(cut)
    legacy = tmp_path / "legacy.pt"  # the pre-zip format, cut: an EOFError without a message
    torch.save({"weights": torch.zeros(3)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:40])
    message = f"{legacy} could not be read as a checkpoint (EOFError: no details). {tail}"
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        load_checkpoint(legacy)
    foreign = tmp_path / "foreign.pt"
    message = (
        f"{foreign} is a PyTorch file but not an mmslim checkpoint (no format tag). Use a file "
        "written by `mmslim train`."
    )
    for contents in ({"weights": torch.zeros(3)}, [1, 2, 3]):
        torch.save(contents, foreign)
        with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
            load_checkpoint(foreign)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    save_checkpoint({"stage": "amplitude"}, tmp_path / "c.pt")
    save_checkpoint({"stage": "amplitude", "epoch": 2}, tmp_path / "c.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert load_checkpoint(tmp_path / "c.pt")["epoch"] == 2


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    save_checkpoint({"stage": "amplitude", "epoch": 1}, tmp_path / "c.pt")
    with pytest.raises(TypeError, match="pickle"):  # a lock cannot be saved
        save_checkpoint(
            {"stage": "amplitude", "epoch": 2, "bad": threading.Lock()}, tmp_path / "c.pt"
        )
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert load_checkpoint(tmp_path / "c.pt")["epoch"] == 1


def test_a_slimmed_checkpoint_keeps_the_model_and_drops_the_optimiser(tmp_path):
    state = model_state(seed=4)
    model = MMSlim(TINY)
    model.load_state_dict(state["model"])
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 224, 64))["x_hat"].sum().backward()
    optimizer.step()  # some optimiser state to drop
    full = {**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": {"best": 1.0}, "epoch": 2, "history": [{"epoch": 2}]}  # fmt: skip
    save_checkpoint(full, tmp_path / "full.pt")
    slim_checkpoint(tmp_path / "full.pt", tmp_path / "slim.pt")
    back = load_checkpoint(tmp_path / "slim.pt")
    assert "optimizer" not in back and "scheduler" not in back
    assert back["epoch"] == 2 and back["history"] == [{"epoch": 2}]
    assert (tmp_path / "slim.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    a, _ = load_model(tmp_path / "full.pt")
    b, _ = load_model(tmp_path / "slim.pt")
    assert a.fingerprint() == b.fingerprint()  # the same weights and prior: files interchange


def test_a_slimmed_checkpoint_names_the_version_that_wrote_it(tmp_path):
    """Slimming rewrites the file, so it carries this mmslim's version, not the original's."""
    save_checkpoint({"stage": "phase", "version": "0.0.1", "optimizer": {}}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["version"] == "0.0.1"
    slim_checkpoint(tmp_path / "old.pt", tmp_path / "slim.pt")
    back = load_checkpoint(tmp_path / "slim.pt", stage="phase")
    assert back == {"format": FORMAT, "version": __version__, "stage": "phase"}
