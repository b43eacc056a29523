"""The `mmslim` command line, end to end on a tiny simulated set."""

import numpy as np
import pytest
import torch

from mmslim.cli.main import main
from mmslim.config import KINDS
from mmslim.data.dataset import load_frames


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three walkers x 1 sequence x 3 frames in the original folder layout."""
    out = tmp_path_factory.mktemp("sim") / "data"
    assert main(["simulate", "--out", str(out), "--subjects", "3", "--sequences", "1",
                 "--frames", "3", "--seed", "5"]) == 0  # fmt: skip
    return out


def test_simulate_writes_the_layout_and_it_loads(tiny):
    assert len(list((tiny / "amplitude").glob("*pc_ti_kinect_key*.npy"))) == 9
    frames = load_frames(tiny)
    assert frames.amplitude.shape == (9, 224, 64)
    assert frames.subjects() == ["subj00", "subj01", "subj02"]


def test_simulate_bundle_matches_folder(tiny, tmp_path):
    bundle = tmp_path / "s.npz"
    argv = ["simulate", "--out", str(bundle), "--subjects", "3", "--sequences", "1"]
    assert main([*argv, "--frames", "3", "--seed", "5"]) == 0
    a, b = load_frames(tiny), load_frames(bundle)
    np.testing.assert_allclose(b.amplitude, a.amplitude, atol=0.06)  # float16 in the bundle


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert torch.__version__ in out and "device" in out


def test_train_compress_inspect_decompress(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data", str(tiny), "--out", str(run), "--epochs", "1", "--batch-size", "4"]
    assert main(["train", "--stage", "amplitude", *common]) == 0
    argv = [
        "train",
        "--stage",
        "phase",
        *common,
        "--amplitude-checkpoint",
        str(run / "amplitude.pt"),
    ]
    assert main(argv) == 0
    for kind in ("amplitude", "phase"):
        mmsl, npy = tmp_path / f"{kind}.mmsl", tmp_path / f"{kind}.npy"
        assert (
            main(["compress", str(tiny), str(mmsl), "--checkpoint", str(run / f"{kind}.pt")]) == 0
        )
        assert main(["inspect", str(mmsl)]) == 0
        text = capsys.readouterr().out
        assert f"{kind}, ans" in text and "frames        9 of 224 x 64" in text
        bpe = float(text.split("bits/element  ")[1].split()[0])
        assert bpe == pytest.approx(mmsl.stat().st_size * 8 / (9 * 224 * 64), abs=5e-5)  # 4 d.p.
        assert (
            main(["decompress", str(mmsl), str(npy), "--checkpoint", str(run / f"{kind}.pt")]) == 0
        )
        assert np.load(npy).shape == (9, 224, 64)
    # a file decoded with the other stage's model is refused, with a message and exit code 1
    capsys.readouterr()
    wrong = ["decompress", str(tmp_path / "phase.mmsl"), str(tmp_path / "x.npy")]
    assert main([*wrong, "--checkpoint", str(run / "amplitude.pt")]) == 1
    assert "matching checkpoint" in capsys.readouterr().err


def test_errors_are_messages_not_tracebacks(tiny, tmp_path, capsys):
    argv = ["train", "--stage", "phase", "--data", str(tiny), "--out", str(tmp_path)]
    assert main(argv) == 1
    assert "--stage amplitude" in capsys.readouterr().err
    (tmp_path / "junk.mmsl").write_bytes(b"MMSL" + bytes(40))
    assert main(["inspect", str(tmp_path / "junk.mmsl")]) == 1
    assert "error" in capsys.readouterr().err
    assert main(["train", "--stage", "amplitude", "--data", str(tmp_path / "none"),
                 "--out", str(tmp_path)]) == 1  # fmt: skip
    assert "does not exist" in capsys.readouterr().err


def read_indices(data: bytes, model) -> np.ndarray:
    """The coarse indices of an .mmsl file (N, h, w)."""
    from mmslim.codec.maps import decompress_maps

    return decompress_maps(model, data)[1].indices_lo


def test_a_gated_sender_from_a_trained_model(tiny, tmp_path):
    from mmslim.nn.sending import GATE_CODE
    from mmslim.training.checkpoint import load_model

    run, out = tmp_path / "run", tmp_path / "gated" / "amplitude.pt"
    common = ["--data", str(tiny), "--out", str(run), "--epochs", "1", "--batch-size", "4"]
    assert main(["train", "--stage", "amplitude", *common, "--fine-gate", "0.5"]) == 0
    trained, _ = load_model(run / "amplitude.pt")
    assert trained.config.fine_gate == 0.5
    argv = ["prior", "--checkpoint", str(run / "amplitude.pt"), "--data", str(tiny)]
    assert main([*argv, "--fine-gate", "0.99", "--out", str(out)]) == 0
    gated, _ = load_model(out)
    assert gated.config.fine_gate == 0.99
    assert load_model(run / "amplitude.pt")[0].config.fine_gate == 0.5  # --out: left as it was
    weights = {k: v for k, v in trained.state_dict().items() if not k.startswith("prior.")}
    for name, value in weights.items():  # the same weights, another sender
        assert torch.equal(gated.state_dict()[name], value), name
    # the refit prior has seen the gated grids: nearly every fine index is the gate code
    counts = gated.prior.counts_hi
    assert counts[GATE_CODE] > 0.5 * counts.sum() > 0
    mmsl, npy = tmp_path / "g.mmsl", tmp_path / "g.npy"
    assert main(["compress", str(tiny), str(mmsl), "--checkpoint", str(out)]) == 0
    assert main(["decompress", str(mmsl), str(npy), "--checkpoint", str(out)]) == 0
    assert np.load(npy).shape == (9, 224, 64)
    # a few coarse codes: chosen on the training frames, kept with the gate, sent alone
    few = tmp_path / "few" / "amplitude.pt"
    assert main(["prior", "--checkpoint", str(out), "--data", str(tiny), "--coarse-codes", "3",
                 "--out", str(few)]) == 0  # fmt: skip
    sender, _ = load_model(few)
    assert len(sender.config.coarse_codes) == 3 and sender.config.fine_gate == 0.99
    assert main(["compress", str(tiny), str(mmsl), "--checkpoint", str(few)]) == 0
    assert set(np.unique(read_indices(mmsl.read_bytes(), sender))) <= set(
        sender.config.coarse_codes
    )
    assert main(["decompress", str(mmsl), str(npy), "--checkpoint", str(few)]) == 0
    assert (
        main(["prior", "--checkpoint", str(few), "--data", str(tiny), "--coarse-codes", "0"]) == 0
    )
    assert load_model(few)[0].config.coarse_codes == ()  # 0: every code again


def test_phase_with_its_detail_layer(sample_frames, tmp_path, capsys):
    from mmslim.codec.detail import refine_phase
    from mmslim.data.samples import sample_path

    amp_ckpt, phase_ckpt = (str(sample_path("pretrained", f"{k}.pt")) for k in KINDS)
    amp, phase = tmp_path / "amp.npy", tmp_path / "phase.npy"
    np.save(amp, sample_frames.amplitude[:6])
    np.save(phase, sample_frames.phase[:6])
    amp_file, phase_file = tmp_path / "amp.mmsl", tmp_path / "phase.mmsl"
    assert main(["compress", str(amp), str(amp_file), "--checkpoint", amp_ckpt]) == 0
    with_amp = ["--amplitude-file", str(amp_file), "--amplitude-checkpoint", amp_ckpt]
    assert main(["compress", str(phase), str(phase_file), "--checkpoint", phase_ckpt,
                 "--amplitude", str(amp), "--detail-bits", "4", *with_amp]) == 0  # fmt: skip
    assert "detail layer ->" in capsys.readouterr().out
    detail = tmp_path / "phase.mmsl.detail"
    plain, refined = tmp_path / "plain.npy", tmp_path / "refined.npy"
    assert main(["decompress", str(phase_file), str(plain), "--checkpoint", phase_ckpt]) == 0
    assert main(["decompress", str(phase_file), str(refined), "--checkpoint", phase_ckpt,
                 "--detail", str(detail), *with_amp]) == 0  # fmt: skip
    amp_hat = tmp_path / "amp_hat.npy"
    assert main(["decompress", str(amp_file), str(amp_hat), "--checkpoint", amp_ckpt]) == 0
    expected = refine_phase(np.load(plain), detail.read_bytes(), np.load(amp_hat))
    np.testing.assert_array_equal(np.load(refined), expected)
    assert (np.load(refined) != np.load(plain)).any()
    # without the amplitude, or for an amplitude model, the command says what is missing
    assert main(["decompress", str(phase_file), str(refined), "--checkpoint", phase_ckpt,
                 "--detail", str(detail)]) != 0  # fmt: skip
    assert "--amplitude-file" in capsys.readouterr().err
    # the phase layer beside an amplitude file is refused, naming the mismatch
    assert main(["decompress", str(amp_file), str(refined), "--checkpoint", amp_ckpt,
                 "--detail", str(detail)]) != 0  # fmt: skip
    assert "is a phase detail layer" in capsys.readouterr().err
    lone = tmp_path / "lone.mmsl"  # no amplitude file: refused before anything is written
    assert main(["compress", str(phase), str(lone), "--checkpoint", phase_ckpt,
                 "--amplitude", str(amp), "--detail-bits", "4"]) != 0  # fmt: skip
    assert "--amplitude-file" in capsys.readouterr().err and not lone.exists()


def test_amplitude_with_its_detail_layer(sample_frames, tmp_path, capsys):
    from mmslim.codec.detail import refine_amplitude
    from mmslim.codec.floor import restore_floor, seed_of
    from mmslim.data.samples import sample_path
    from mmslim.metrics.radar import amplitude_error_db

    ckpt = str(sample_path("pretrained", "amplitude.pt"))
    amp, amp_file = tmp_path / "amp.npy", tmp_path / "amp.mmsl"
    np.save(amp, sample_frames.amplitude[:6])
    assert main(["compress", str(amp), str(amp_file), "--checkpoint", ckpt,
                 "--detail-bits", "3"]) == 0  # fmt: skip
    assert "detail layer ->" in capsys.readouterr().out
    refused = tmp_path / "refused.mmsl"
    assert main(["compress", str(amp), str(refused), "--checkpoint", ckpt,
                 "--detail-bits", "9"]) != 0  # fmt: skip
    assert "give 1 to 8 bits" in capsys.readouterr().err and not refused.exists()
    detail = tmp_path / "amp.mmsl.detail"
    plain, refined, smooth = (tmp_path / f"{k}.npy" for k in ("plain", "refined", "smooth"))
    assert main(["decompress", str(amp_file), str(plain), "--checkpoint", ckpt]) == 0
    with_detail = ["--checkpoint", ckpt, "--detail", str(detail)]
    assert main(["decompress", str(amp_file), str(refined), *with_detail]) == 0
    expected = refine_amplitude(np.load(plain), detail.read_bytes())
    np.testing.assert_array_equal(np.load(refined), expected)
    orig = sample_frames.amplitude[:6]
    before = amplitude_error_db(orig, np.load(plain))["amp_mae_db_target"]
    after = amplitude_error_db(orig, np.load(refined))["amp_mae_db_target"]
    assert after < before
    # another floor is drawn on the refined map, not on the one the cells were chosen on
    assert main(["decompress", str(amp_file), str(smooth), *with_detail, "--floor", "smooth"]) == 0
    np.testing.assert_array_equal(
        np.load(smooth), restore_floor(expected, "smooth", seed_of(amp_file.read_bytes()))
    )


def test_amplitude_with_its_floor_layer_and_repair_list(sample_frames, tmp_path, capsys):
    from mmslim.codec.detail import refine_amplitude
    from mmslim.codec.floor_layer import refine_floor
    from mmslim.codec.repairs import apply_repairs
    from mmslim.data.samples import sample_path

    ckpt = str(sample_path("pretrained", "amplitude.pt"))
    amp, amp_file = tmp_path / "amp.npy", tmp_path / "amp.mmsl"
    np.save(amp, sample_frames.amplitude[:4])
    assert main(["compress", str(amp), str(amp_file), "--checkpoint", ckpt, "--detail-bits", "3",
                 "--floor-layer", "13", "--repairs"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "floor layer ->" in out and "repair list ->" in out
    for suffix, what in (
        ("floor", "floor layer"),
        ("repairs", "repair list"),
        ("detail", "detail layer"),
    ):
        assert main(["inspect", f"{amp_file}.{suffix}"]) == 0
        out = capsys.readouterr().out
        assert f"{what} v1" in out or f"{what} v2" in out
        assert "frames        4 of 224 x 64" in out
    refused = tmp_path / "refused.mmsl"
    for bad in ("0.1", "-2"):
        assert main(["compress", str(amp), str(refused), "--checkpoint", ckpt,
                     "--floor-layer", bad]) != 0  # fmt: skip
        assert "texture step of at least 0.5 dB" in capsys.readouterr().err
    assert main(["compress", str(amp), str(refused), "--checkpoint", ckpt,
                 "--exact-repairs"]) != 0  # fmt: skip
    assert "give --repairs too" in capsys.readouterr().err
    assert not refused.exists()
    exact = tmp_path / "exact.mmsl"  # the exact rule lists more cells, in the same format
    assert main(["compress", str(amp), str(exact), "--checkpoint", ckpt, "--detail-bits", "3",
                 "--floor-layer", "13", "--repairs", "--exact-repairs"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["inspect", f"{exact}.repairs"]) == 0
    assert "repair list v1" in capsys.readouterr().out
    size = lambda f: (tmp_path / f).stat().st_size  # noqa: E731
    assert size("exact.mmsl.repairs") > size("amp.mmsl.repairs")
    plain, both = tmp_path / "plain.npy", tmp_path / "both.npy"
    assert main(["decompress", str(amp_file), str(plain), "--checkpoint", ckpt]) == 0
    layers = ["--detail", f"{amp_file}.detail", "--floor-layer", f"{amp_file}.floor",
              "--repairs", f"{amp_file}.repairs"]  # fmt: skip
    assert main(["decompress", str(amp_file), str(both), "--checkpoint", ckpt, *layers]) == 0
    decoded = np.load(plain)
    expected = refine_floor(
        refine_amplitude(decoded, (tmp_path / "amp.mmsl.detail").read_bytes()),
        (tmp_path / "amp.mmsl.floor").read_bytes(), decoded,
    )  # fmt: skip
    expected = apply_repairs(expected, (tmp_path / "amp.mmsl.repairs").read_bytes())
    np.testing.assert_array_equal(np.load(both), expected)
    orig = sample_frames.amplitude[:4]
    assert ((np.load(both) - orig) ** 2).mean() < 0.7 * ((decoded - orig) ** 2).mean()
    # the layer draws the floor: another floor, or a layer given to the wrong file, is refused
    assert main(["decompress", str(amp_file), str(both), "--checkpoint", ckpt, *layers,
                 "--floor", "smooth"]) != 0  # fmt: skip
    assert "drop --floor smooth" in capsys.readouterr().err
    assert main(["decompress", str(amp_file), str(both), "--checkpoint", ckpt,
                 "--floor-layer", f"{amp_file}.detail"]) != 0  # fmt: skip
    assert "is not what --floor-layer takes" in capsys.readouterr().err
    assert main(["decompress", str(amp_file), str(both), "--checkpoint", ckpt,
                 "--repairs", f"{amp_file}.floor"]) != 0  # fmt: skip
    assert "is not what --repairs takes" in capsys.readouterr().err


def test_phase_detail_cells_chosen_on_the_amplitude_with_its_layers(sample_frames, tmp_path):
    from mmslim.codec.detail import refine_phase
    from mmslim.data.samples import sample_path

    amp_ckpt, phase_ckpt = (str(sample_path("pretrained", f"{k}.pt")) for k in KINDS)
    amp, phase = tmp_path / "amp.npy", tmp_path / "phase.npy"
    np.save(amp, sample_frames.amplitude[:4])
    np.save(phase, sample_frames.phase[:4])
    amp_file, phase_file = tmp_path / "amp.mmsl", tmp_path / "phase.mmsl"
    with_amp = ["--amplitude-file", str(amp_file), "--amplitude-checkpoint", amp_ckpt]
    # no layers beside the amplitude file yet: the flag says what is missing
    assert main(["compress", str(amp), str(amp_file), "--checkpoint", amp_ckpt]) == 0
    assert main(["compress", str(phase), str(phase_file), "--checkpoint", phase_ckpt,
                 "--amplitude", str(amp), "--detail-bits", "4", *with_amp,
                 "--amplitude-layers"]) != 0  # fmt: skip
    assert main(["compress", str(amp), str(amp_file), "--checkpoint", amp_ckpt, "--detail-bits",
                 "3", "--floor-layer", "0", "--repairs"]) == 0  # fmt: skip
    assert main(["compress", str(phase), str(phase_file), "--checkpoint", phase_ckpt,
                 "--amplitude", str(amp), "--detail-bits", "4", *with_amp,
                 "--amplitude-layers"]) == 0  # fmt: skip
    plain, refined, shown = (tmp_path / f"{k}.npy" for k in ("plain", "refined", "shown"))
    assert main(["decompress", str(phase_file), str(plain), "--checkpoint", phase_ckpt]) == 0
    detail = tmp_path / "phase.mmsl.detail"
    assert main(["decompress", str(phase_file), str(refined), "--checkpoint", phase_ckpt,
                 "--detail", str(detail), *with_amp, "--amplitude-layers"]) == 0  # fmt: skip
    layers = [f"--{flag}={amp_file}.{suffix}" for flag, suffix in
              (("detail", "detail"), ("floor-layer", "floor"), ("repairs", "repairs"))]  # fmt: skip
    assert main(["decompress", str(amp_file), str(shown), "--checkpoint", amp_ckpt, *layers]) == 0
    expected = refine_phase(np.load(plain), detail.read_bytes(), np.load(shown))
    np.testing.assert_array_equal(np.load(refined), expected)
    # without the flag the receiver selects other cells, and the layer says so
    assert main(["decompress", str(phase_file), str(refined), "--checkpoint", phase_ckpt,
                 "--detail", str(detail), *with_amp]) != 0  # fmt: skip
    # the flag without a phase detail layer means nothing, and is refused
    assert main(["decompress", str(phase_file), str(refined), "--checkpoint", phase_ckpt,
                 *with_amp, "--amplitude-layers"]) != 0  # fmt: skip
