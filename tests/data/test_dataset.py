"""The loader: both sources, normalisation round trip, subject-disjoint split, bad input."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mmslim.data.dataset import (
    DataError,
    FrameSet,
    RadarFrames,
    denormalize,
    load_frames,
    normalize,
    save_bundle,
    split_subjects,
)
from mmslim.data.layout import frame_filename, parse_frame_filename
from mmslim.data.samples import sample_path

SAMPLE = sample_path("sample.npz")


def _write_folder(root: Path, n_subjects=3, n_frames=2, shape=(224, 64), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for kind in ("amplitude", "phase"):
        (root / kind).mkdir(parents=True, exist_ok=True)
    for s in range(n_subjects):
        for f in range(n_frames):
            name = frame_filename(s, 0, f)
            np.save(root / "amplitude" / name, rng.normal(-60, 10, shape).astype(np.float32))
            np.save(root / "phase" / name, rng.uniform(-np.pi, np.pi, shape).astype(np.float32))
    return root


def test_folder_layout_loads_with_names(tmp_path):
    frames = load_frames(_write_folder(tmp_path))
    assert frames.amplitude.shape == (6, 224, 64)
    assert frames.phase.dtype == np.float32
    assert frames.subjects() == ["subj00", "subj01", "subj02"]
    assert sorted(set(frames.frame.tolist())) == [0, 1]


def test_filename_round_trip_and_foreign_names():
    p = parse_frame_filename(frame_filename(7, 3, 12))
    assert (p.subject, p.sequence, p.frame) == ("subj07", "seq03", 12)
    q = parse_frame_filename("walkerA_pc_ti_kinect_key_0031.npy")
    assert (q.subject, q.frame) == ("walkerA", 31)
    with pytest.raises(ValueError, match="not a frame file"):
        parse_frame_filename("notes.npy")


def test_normalisation_round_trip_with_kept_range():
    rng = np.random.default_rng(1)
    x = rng.normal(-50, 12, (5, 224, 64)).astype(np.float32)
    x01, lo, hi = normalize(x)
    assert x01.min() == 0 and x01.max() == 1
    np.testing.assert_allclose(denormalize(x01, lo, hi), x, atol=1e-4)
    t01, tlo, thi = normalize(torch.from_numpy(x))
    np.testing.assert_allclose(t01.numpy(), x01, atol=1e-6)
    np.testing.assert_allclose(tlo.numpy(), lo)


def test_dataset_items_are_normalised_and_carry_their_range(tmp_path):
    frames = load_frames(_write_folder(tmp_path))
    ds = RadarFrames(frames)
    item = ds[3]
    assert item["amplitude"].shape == (1, 224, 64)
    assert float(item["amplitude"].min()) == 0.0 and float(item["amplitude"].max()) == 1.0
    back = denormalize(item["amplitude"][0], item["amp_range"][0], item["amp_range"][1])
    np.testing.assert_allclose(back.numpy(), frames.amplitude[3], atol=1e-4)


def test_split_is_subject_disjoint_and_covers_everyone():
    subjects = [f"subj{i:02d}" for i in range(12)]
    train, val = split_subjects(subjects, 0.25, seed=3)
    assert not set(train) & set(val)
    assert sorted(train + val) == subjects
    assert len(val) == 3
    assert split_subjects(subjects, 0.25, seed=3) == (train, val)
    with pytest.raises(DataError, match="at least 2"):
        split_subjects(["only"], 0.25)


def test_subject_filter_keeps_only_those_subjects(tmp_path):
    frames = load_frames(_write_folder(tmp_path, n_subjects=4))
    train, val = split_subjects(frames.subjects(), 0.25)
    ds = RadarFrames(frames, val)
    assert set(ds.frames.subject.tolist()) == set(val)


def test_bundle_round_trip(tmp_path):
    frames = load_frames(_write_folder(tmp_path / "f"))
    save_bundle(frames, tmp_path / "b.npz")
    again = load_frames(tmp_path / "b.npz")
    np.testing.assert_allclose(again.amplitude, frames.amplitude, atol=0.05)  # float16
    assert again.subject.tolist() == frames.subject.tolist()


@pytest.mark.skipif(not SAMPLE.exists(), reason="data_samples/sample.npz not built")
def test_shipped_sample_loads_and_splits():
    frames = load_frames(SAMPLE)
    train, val = split_subjects(frames.subjects())
    assert len(frames) >= 100 and len(val) >= 2
    assert np.isfinite(frames.amplitude).all()


# --------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist.*mmslim simulate"):
        load_frames(tmp_path / "nowhere")


def test_empty_folder(tmp_path):
    (tmp_path / "amplitude").mkdir()
    (tmp_path / "phase").mkdir()
    with pytest.raises(DataError, match="hold no .npy files"):
        load_frames(tmp_path)


def test_missing_phase_folder(tmp_path):
    (tmp_path / "amplitude").mkdir()
    with pytest.raises(DataError, match="no phase/ folder"):
        load_frames(tmp_path)


def test_folders_that_do_not_pair_up(tmp_path):
    root = _write_folder(tmp_path)
    (root / "phase" / frame_filename(0, 0, 1)).unlink()
    with pytest.raises(DataError, match="do not pair up.*1 file\\(s\\) only in amplitude"):
        load_frames(root)


def test_wrong_shape_names_the_shape_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"shape \(200, 64\), expected \(224, 64\)"):
        load_frames(_write_folder(tmp_path, shape=(200, 64)))
    frames = load_frames(tmp_path, expected_shape=None)
    assert frames.amplitude.shape[1:] == (200, 64)


def test_mixed_shapes_name_the_file(tmp_path):
    root = _write_folder(tmp_path)
    bad = root / "phase" / frame_filename(1, 0, 0)
    np.save(bad, np.zeros((224, 32), np.float32))
    with pytest.raises(DataError, match=frame_filename(1, 0, 0)):
        load_frames(root)


def test_nan_frame_is_named(tmp_path):
    root = _write_folder(tmp_path)
    x = np.load(root / "amplitude" / frame_filename(2, 0, 1))
    x[5, 5] = np.nan
    np.save(root / "amplitude" / frame_filename(2, 0, 1), x)
    with pytest.raises(DataError, match="subject subj02, seq00, frame 1.*NaN or inf"):
        load_frames(root)


def test_constant_frame_is_refused(tmp_path):
    root = _write_folder(tmp_path)
    np.save(root / "phase" / frame_filename(0, 0, 0), np.ones((224, 64), np.float32))
    with pytest.raises(DataError, match="constant \\(max == min\\)"):
        load_frames(root)


def test_corrupt_npy_and_bundle(tmp_path):
    root = _write_folder(tmp_path / "d")
    (root / "amplitude" / frame_filename(0, 0, 0)).write_bytes(b"not numpy")
    with pytest.raises(DataError, match="not a readable .npy"):
        load_frames(root)
    (tmp_path / "x.npz").write_bytes(b"PK garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_frames(tmp_path / "x.npz")


def test_bundle_missing_arrays(tmp_path):
    np.savez(tmp_path / "b.npz", amplitude=np.zeros((1, 224, 64)))
    with pytest.raises(DataError, match="lacks arrays"):
        load_frames(tmp_path / "b.npz")


def test_frameset_select():
    fs = FrameSet(
        np.zeros((3, 4, 4)),
        np.zeros((3, 4, 4)),
        np.array(["a", "b", "a"]),
        np.array(["q"] * 3),
        np.arange(3),
    )
    assert fs.of_subjects(["a"]).frame.tolist() == [0, 2]
