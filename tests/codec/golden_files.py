"""Golden ``.mmsl`` files: the file format and the entropy coders pinned byte for byte.

``tests/codec/golden/`` holds a tiny model (``ModelConfig.preset("tiny")``, seed 0, its codebooks
set to latent vectors of the golden maps so that the indices vary, and its prior fitted on
them) as a checkpoint, one file per coding mode (3 amplitude frames of 64 x 64 cropped
from the shipped sample) plus an HMAC-tagged ANS file whose sequence numbers wrap, and
``expected.npz`` with what they decode to. ``test_golden.py`` decodes them in CI, so a change to
the format, to the coders or to the ``constriction`` version that would break files already
written fails a test instead of passing silently.

It also holds the layers sent beside a file, for the same frames, each with what it decodes to
in ``NAME_expected.npz``: a phase detail layer (:mod:`mmslim.codec.detail`, format version 2,
``detail.mmsd``; the amplitude that chooses its cells is the golden maps themselves; the same
layer as version 1 wrote it, ``detail_v1.mmsd``, kept as it was written), an amplitude detail
layer (``detail_amplitude.mmsd``), a floor layer with texture (:mod:`mmslim.codec.floor_layer`,
``floor.mmsf``) and a repair list (:mod:`mmslim.codec.repairs`, ``repairs.mmsr``), the last
three against :func:`golden_decoded_amplitude`.

Regenerate only on purpose (a new format version), then commit the folder::

    PYTHONPATH=. python -m tests.codec.golden_files          # the .mmsl files and the model
    PYTHONPATH=. python -m tests.codec.golden_files detail   # the detail layers
    PYTHONPATH=. python -m tests.codec.golden_files floor    # the floor layer
    PYTHONPATH=. python -m tests.codec.golden_files repairs  # the repair list
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmslim.codec.detail import decode_detail, encode_detail
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.config import ModelConfig
from mmslim.data.dataset import load_frames, normalize
from mmslim.data.samples import sample_path
from mmslim.nn import MMSlim
from mmslim.training.checkpoint import save_checkpoint

GOLDEN = Path(__file__).parent / "golden"
KEY = bytes(range(100, 132))  # the key of the tagged file (32 bytes; for tests only)
FRAME_SHAPE = (64, 64)  # crops keep the files small; the format is the same at 224 x 64
# name -> (mode, HMAC key, first sequence number)
CASES = {
    "fixed": ("fixed", None, 0),
    "huffman": ("huffman", None, 7),
    "ans": ("ans", None, 0),
    "ans-tagged": ("ans", KEY, 65534),  # sequence numbers wrap: 65534, 65535, 0
}


@torch.no_grad()
def golden_model(maps: np.ndarray) -> MMSlim:
    """The tiny model, seed 0, with codebooks drawn from the latents of ``maps`` (N, H, W) (a
    freshly initialised codebook maps every vector to one code) and the prior fitted on them."""
    torch.manual_seed(0)
    model = MMSlim(ModelConfig.preset("tiny")).eval()
    x = normalize(torch.from_numpy(maps))[0][:, None]  # (N, 1, H, W)
    _, x_hi, x_lo = model.split(x)
    rng = np.random.default_rng(0)
    for branch, part in ((model.hi, x_hi), (model.lo, x_lo)):
        z = branch.latents(part).permute(0, 2, 3, 1).reshape(-1, model.config.code_dim)  # (n, D)
        rows = rng.choice(len(z), size=model.config.num_codes)  # (K,) with repeats if n < K
        noise = torch.from_numpy(rng.normal(0.0, 1e-3, (len(rows), z.shape[1])).astype("f4"))
        branch.quantizer.codebook.weight.copy_(z[rows] + noise)
    indices = model.encode(x)
    model.prior.update(indices["indices_hi"], indices["indices_lo"])
    return model


def golden_maps(kind: str = "amplitude") -> np.ndarray:
    """(3, 64, 64) amplitude in dB (or phase in rad): the first frames of the sample, rows
    80..143 (the walker)."""
    frames = load_frames(sample_path("sample.npz"))
    return getattr(frames, kind)[:3, 80:144, :64].copy()


DETAIL_BITS = 4  # bits per cell of the golden detail layer


def golden_decoded_amplitude() -> np.ndarray:
    """A stand-in for decoded amplitude that every platform computes alike: the golden maps
    rounded to 4 dB steps (dB, float32)."""
    return (np.round(golden_maps() / 4) * 4).astype(np.float32)


def regenerate_detail(folder: Path = GOLDEN) -> None:
    """Write ``detail.mmsd`` (phase) and ``detail_amplitude.mmsd`` with their expected cells and
    values (``detail_expected.npz``, ``detail_amplitude_expected.npz``) into ``folder``.
    (``detail_v1.mmsd``, the same phase layer in version 1, is kept as it was written.)"""
    amplitude, phase = golden_maps(), golden_maps("phase")
    layers = {
        "detail": (encode_detail(phase, amplitude, DETAIL_BITS), amplitude),
        "detail_amplitude": (encode_detail(amplitude, golden_decoded_amplitude(), DETAIL_BITS,
                                           kind="amplitude"), golden_decoded_amplitude()),
    }  # fmt: skip
    for name, (data, decoded) in layers.items():
        (folder / f"{name}.mmsd").write_bytes(data)
        cells, values = decode_detail(data, decoded)
        np.savez_compressed(folder / f"{name}_expected.npz", cells=cells, values=values)


FLOOR_TEXTURE_STEP = 6.0  # dB, the golden floor layer's texture step
FLOOR_GRID = (4, 2)


def regenerate_floor(folder: Path = GOLDEN) -> None:
    """Write ``floor.mmsf`` (a floor layer with texture, against
    :func:`golden_decoded_amplitude`) and what it decodes to (``floor_expected.npz``)."""
    from mmslim.codec.floor_layer import decode_floor, encode_floor

    decoded = golden_decoded_amplitude()
    data = encode_floor(golden_maps(), decoded, FLOOR_TEXTURE_STEP, grid=FLOOR_GRID)
    (folder / "floor.mmsf").write_bytes(data)
    cells, values = decode_floor(data, decoded)
    np.savez_compressed(folder / "floor_expected.npz", cells=cells, values=values)


def regenerate_repairs(folder: Path = GOLDEN) -> None:
    """Write ``repairs.mmsr`` (a repair list against :func:`golden_decoded_amplitude`) and what it
    decodes to (``repairs_expected.npz``)."""
    from mmslim.codec.repairs import decode_repairs, encode_repairs

    decoded = golden_decoded_amplitude()
    data = encode_repairs(golden_maps(), decoded)
    (folder / "repairs.mmsr").write_bytes(data)
    cells, values = decode_repairs(data, decoded)
    np.savez_compressed(folder / "repairs_expected.npz", cells=cells, values=values)


def regenerate(folder: Path = GOLDEN) -> None:
    """Write the checkpoint, the ``.mmsl`` files and ``expected.npz`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    maps = golden_maps()
    model = golden_model(maps)
    save_checkpoint(
        {"stage": "amplitude", "model_config": model.config.to_dict(), "model": model.state_dict()},
        folder / "model.pt",
    )
    expected = {"fingerprint": np.frombuffer(model.fingerprint(), np.uint8)}
    for name, (mode, key, first) in CASES.items():
        data = compress_maps(model, maps, "amplitude", mode, key=key, first_sequence=first)
        (folder / f"{name}.mmsl").write_bytes(data)
        decoded_maps, decoded = decompress_maps(model, data, frame_shape=FRAME_SHAPE, key=key)
        expected.update(
            indices_hi=decoded.indices_hi, indices_lo=decoded.indices_lo, side=decoded.side
        )
        expected["maps"] = decoded_maps
    np.savez_compressed(folder / "expected.npz", **expected)


if __name__ == "__main__":
    import sys

    {"detail": regenerate_detail, "floor": regenerate_floor, "repairs": regenerate_repairs}.get(
        sys.argv[1] if sys.argv[1:] else "", regenerate
    )()
    print(f"wrote to {GOLDEN}: {sorted(p.name for p in GOLDEN.iterdir())}")
