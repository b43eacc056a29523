"""The rate-distortion benchmark: classical codecs, ablation models, and the bench end to end."""

import csv
import math

import numpy as np
import pytest
import torch

from mmslim.bench import ablations, baselines, methods, rd
from mmslim.cli.main import main
from mmslim.codec.maps import compress_maps, decompress_maps, fit_prior
from mmslim.codec.rate import rate_report
from mmslim.config import ModelConfig
from mmslim.data.dataset import RadarFrames, load_frames
from mmslim.data.samples import sample_path
from mmslim.nn import MMSlim
from mmslim.training.checkpoint import save_checkpoint

SAMPLE = sample_path("sample.npz")
TINY = ModelConfig.preset("tiny")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the bench uses: on a busy 2-core machine two threads run 30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def frames():
    fs = load_frames(SAMPLE)
    return fs.select(np.isin(fs.subject, fs.subjects()[:3]) & (fs.frame < 2))  # 12 frames


def tiny_model(config, frames, stage="amplitude"):
    torch.manual_seed(0)
    model = MMSlim(config).eval()
    fit_prior(model, RadarFrames(frames), stage)
    return model


# --- classical codecs --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(baselines.CODECS))
def test_every_codec_rate_comes_from_its_bytes(name, frames):
    codec = baselines.CODECS[name]
    maps = frames.amplitude[:3]  # (3, 224, 64) dB
    setting = codec.settings[len(codec.settings) // 2]
    data = baselines.compress(codec, setting, maps)
    strings, side = data.strings, data.side
    assert (data.codec, data.shape) == (codec, (224, 64)) and data.setting == setting
    assert np.array_equal(side, np.stack([maps.min((1, 2)), maps.max((1, 2))], 1))
    # The container costs what mmSlim's does: 44-byte header + CRC, and per frame a 2-byte
    # sequence number, 8 bytes side info and a 4-byte length; the rest is the codec's strings.
    assert len(data) == 48 + 3 * (2 + 8 + 4) + sum(len(s) for s in strings)
    method = methods.classical_methods([codec])[0]
    row = rd.run_method(method, "amplitude", frames.select(slice(0, 3)))
    assert row["bits_per_element"] == 8 * row["bytes"] / maps.size
    recon = baselines.decompress(data)
    assert recon.shape == maps.shape and recon.dtype == np.float32
    assert (recon >= side[:, :1, None] - 1e-3).all() and (recon <= side[:, 1:, None] + 1e-3).all()


def test_error_bounded_codecs_keep_their_bound(frames):
    maps = frames.amplitude[:2]
    span = (maps.max((1, 2)) - maps.min((1, 2)))[:, None, None]
    for codec, bound in ((baselines.CODECS["sz3"], 0.01), (baselines.CODECS["zfp"], 0.01)):
        recon = baselines.decompress(baselines.compress(codec, bound, maps))
        assert (np.abs(recon - maps) / span).max() <= bound * 1.001


def test_finer_settings_cost_more_bits(frames):
    for codec in baselines.CODECS.values():
        sizes = [len(baselines.compress(codec, s, frames.amplitude[:2])) for s in codec.settings]
        assert sizes[-1] > sizes[0], codec.name


def test_classical_files_pay_what_an_mmsl_file_of_as_many_frames_pays(frames, tiny_config):
    from mmslim.codec import compress_maps
    from mmslim.nn import MMSlim

    data = compress_maps(MMSlim(tiny_config).eval(), frames.amplitude[:2], "amplitude", "fixed")
    from mmslim.codec.container import file_bytes, read_header

    payload = sum(read_header(data).frame_bytes)  # the two frame strings

    assert file_bytes(payload, 2) == len(data)


# --- ablation models ---------------------------------------------------------------------------


def test_matched_codebook_spends_mmslims_index_bits():
    k = ablations.matched_num_codes(512)
    assert k == 756
    assert 896 * math.log2(k) == pytest.approx(952 * 9, rel=1e-3)


@pytest.mark.parametrize("mask", ["fixed", "none"])
def test_ablation_round_trips_exactly(mask, frames):
    model = tiny_model(ModelConfig.from_dict({**TINY.to_dict(), "mask": mask}), frames)
    x = RadarFrames(frames).tensors("amplitude")[0][:4]  # (4, 1, 224, 64)
    with torch.no_grad():
        out = model(x)
        sent = model.encode(x)
        received = model.decode_indices(sent["indices_hi"], sent["indices_lo"])
        packed = model.compress(x)
        unpacked = model.decompress(packed["strings"], packed["shape"])
    assert torch.equal(received["x_hat"], out["x_hat"])
    assert torch.equal(unpacked["x_hat"], out["x_hat"])
    expected_mask = 0.5 if mask == "fixed" else 1.0
    assert torch.equal(out["mask"], torch.full_like(x, expected_mask))
    if mask == "none":
        assert not sent["indices_lo"].any() and not out["x_hat_lo"].any()
        assert torch.equal(out["x_hat"], out["x_hat_hi"])


def test_single_vqvae_pays_almost_nothing_for_the_coarse_grid(frames):
    model = tiny_model(ModelConfig.from_dict({**TINY.to_dict(), "mask": "none"}), frames)
    data = compress_maps(model, frames.amplitude, "amplitude")
    maps, decoded = decompress_maps(model, data)
    assert maps.shape == frames.amplitude.shape and not decoded.indices_lo.any()
    lo_bits = model.prior.cross_entropy_bits(decoded.indices_lo, "lo")
    # Add-one smoothing over 12 frames' 672 zeros: -log2(673 / 736) = 0.13 bit per coarse index
    # (0.04 with the sample's 360 training frames), against log2(64) = 6 for a used grid.
    assert lo_bits / decoded.indices_lo.size < 0.15
    assert rate_report(data, maps.size).file_bytes == len(data)


def test_unknown_mask_mode():
    with pytest.raises(ValueError, match="mask"):
        MMSlim(ModelConfig(mask="sometimes"))


def test_train_ablations_writes_slim_checkpoints(tmp_path, frames):
    small = frames.select(frames.frame < 1)  # 3 subjects, 6 frames
    folders = ablations.train_ablations(small, tmp_path, epochs=1, device="cpu", progress=False)
    assert set(folders) == set(ablations.ABLATIONS)
    for name, folder in folders.items():
        state = torch.load(folder / "amplitude.pt", weights_only=True)
        assert "optimizer" not in state and bool(state["model"]["prior.fitted"])
        assert state["model_config"]["mask"] == ("fixed" if name == "fixed-mask" else "none")
    matched = torch.load(folders["single-vqvae-matched"] / "amplitude.pt", weights_only=True)
    assert matched["model_config"]["num_codes"] == ablations.matched_num_codes(512)


# --- end to end --------------------------------------------------------------------------------


def write_checkpoints(folder, config, frames, val):
    for stage in rd.KINDS:
        model = tiny_model(config, frames, stage)
        state = {
            "stage": stage,
            "model_config": config.to_dict(),
            "model": model.state_dict(),
            "split": {"train": [], "val": val},
        }
        save_checkpoint(state, folder / f"{stage}.pt")


def test_bench_runs_end_to_end(tmp_path, frames, capsys):
    val = frames.subjects()[:1]
    write_checkpoints(tmp_path / "mmslim", TINY, frames, val)
    fixed = ModelConfig.from_dict({**TINY.to_dict(), "mask": "fixed"})
    write_checkpoints(tmp_path / "ablations" / "fixed-mask", fixed, frames, val)
    out = tmp_path / "out"
    args = [
        "bench",
        "rd",
        "--data",
        str(SAMPLE),
        "--checkpoint",
        str(tmp_path / "mmslim" / "phase.pt"),
    ]
    args += ["--out", str(out), "--frames", "3", "--ablations", str(tmp_path / "ablations")]
    args += ["--scenario", "held-out"]
    assert main(args) == 0
    assert "at mmSlim's rates" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {
        "rd.csv",
        "rd_at_rate.csv",
        "rd_held-out_amplitude.png",
        "rd_held-out_phase.png",
        "reference.csv",
    }
    with open(out / "rd.csv") as f:
        rows = list(csv.DictReader(f))
    n_settings = sum(len(c.settings) for c in baselines.CODECS.values())
    # per kind: mmSlim, one ablation, every setting; amplitude also mmSlim's other two floors,
    # mmSlim with the detail layer at each of its bit depths (phase twice: cells chosen on the
    # decoded amplitude, and on the amplitude with its layers), and with each set of layers
    details = len(methods.DETAIL_BITS["amplitude"]) + 2 * len(methods.DETAIL_BITS["phase"])
    assert len(rows) == 2 * (2 + n_settings) + 2 + details + len(methods.LAYERS)
    for row in rows:
        assert int(row["frames"]) == 3
        assert float(row["bits_per_element"]) == pytest.approx(
            8 * int(row["bytes"]) / (3 * 224 * 64)
        )
        assert {"enc_fps", "dec_fps"} <= set(row)  # timings: `mmslim bench` prints them
    amp = [r for r in rows if r["kind"] == "amplitude"]
    assert {"cfar_f1", "amp_mae_db_target", "peak_err_range", "walker_extent_err_mps"} <= set(
        amp[0]
    )
    assert {r["scenario"] for r in rows} == {"held-out"}
    lossless_ish = [r for r in amp if r["setting"] == "bits=8"][0]
    assert float(lossless_ish["ssim"]) > 0.99 and float(lossless_ish["cfar_f1"]) > 0.9
    # phase: the near-lossless setting errs far less on the targets than an untrained mmSlim
    phase = {(r["codec"], r["setting"]): r for r in rows if r["kind"] == "phase"}
    untrained = [r for (codec, s), r in phase.items() if codec == "mmslim" and "detail" not in s]
    untrained = untrained[0]
    near_lossless = [r for (_, setting), r in phase.items() if setting == "bits=8"][0]
    assert float(near_lossless["phase_err_target"]) < 0.05
    assert float(untrained["phase_err_target"]) > 10 * float(near_lossless["phase_err_target"])
    # the detail layer costs bytes beside the phase file, the more the more bits per cell (what
    # it gains needs a trained amplitude model to find the targets: tests/codec/test_detail.py)
    for on_layers in (False, True):  # cells chosen on the decoded amplitude, or with its layers
        detailed = [
            r
            for (_, s), r in phase.items()
            if "detail=" in s and ("cells on amplitude" in s) == on_layers
        ]
        sizes = [int(r["bytes"]) for r in detailed]
        assert len(sizes) == 3 and sizes == sorted(sizes) and sizes[0] > int(untrained["bytes"])


def test_a_second_scenario_is_measured_on_its_own_frames(tmp_path, tiny_config, frames):
    val = frames.subjects()[:1]
    write_checkpoints(tmp_path / "mmslim", tiny_config, frames, val)
    sparse = [baselines.CODECS["sparse"]]
    rows = rd.run_rd(
        checkpoint=tmp_path / "mmslim" / "amplitude.pt", kinds=("amplitude",), codecs=sparse,
        scenarios=("lab77",), plot=False, ablations=tmp_path / "none",
    )  # fmt: skip
    assert {r["scenario"] for r in rows} == {"lab77"}
    floors = ["mmslim", "mmslim floor=smooth", "mmslim floor=noise"]
    details = ["mmslim"] * len(methods.DETAIL_BITS["amplitude"])  # with the amplitude detail layer
    layers = ["mmslim"] * len(methods.LAYERS)  # and with floor layers and repair lists
    sparse_rows = ["sparse"] * len(sparse[0].settings)
    assert [r["codec"] for r in rows] == floors + details + layers + sparse_rows
    assert [r["setting"].split()[-1] for r in rows[3:6]] == ["detail=2b@43dB", "detail=3b@43dB",
                                                             "detail=4b@43dB"]  # fmt: skip
    layered = rows[6 : 6 + len(methods.LAYERS)]
    assert [r["setting"].split("floor=none")[-1] for r in layered] == [
        " detail=3b@43dB floor-layer=level",
        " detail=3b@43dB floor-layer=texture 16 dB",
        " detail=3b@43dB floor-layer=texture 13 dB",
        " repairs",
        " repairs exact",
        " detail=3b@43dB floor-layer=level repairs",
        " detail=3b@43dB floor-layer=level repairs(bench detector only)",
        " detail=3b@43dB floor-layer=level repairs exact",
        " detail=3b@43dB floor-layer=texture 13 dB repairs",
    ]
    # each layer costs bytes beside the file
    assert all(r["bytes"] > rows[0]["bytes"] for r in layered)
    lab = rd.scenario_frames("lab77")
    assert lab.amplitude.shape[1:] == (256, 64)  # the other radar's 256 chirps
    assert all(r["bits_per_element"] == 8 * r["bytes"] / lab.amplitude.size for r in rows)


def test_sparse_list_keeps_the_cells_it_promises(frames):
    codec = baselines.CODECS["sparse"]
    maps = frames.amplitude[:4]  # dB
    recon = baselines.decompress(baselines.compress(codec, 40.0, maps))
    kept = maps >= maps.max(axis=(1, 2), keepdims=True) - 40.0
    assert np.abs(recon - maps)[kept].max() <= 1.0 + 1e-3  # values in 2 dB steps
    assert np.ptp(recon[0][~kept[0]]) > 0  # the floor level varies from range bin to bin
    for column in range(maps.shape[2]):  # one level per range bin for every dropped cell
        dropped = recon[0][~kept[0][:, column], column]
        assert np.ptp(dropped) == 0 if dropped.size else True
