"""What a thin, lossy link does to mmSlim: previews from the coarse grid, and lost fine indices.

- **Preview** (layered decoding): the coarse grid alone, ANS-coded as a segment of its own,
  decodes to a preview (:meth:`mmslim.nn.MMSlim.decode_preview`). Reported: its share of a
  frame's bytes and its radar metrics. The ``.mmsl`` format still codes both grids in one ANS
  stream, fine grid first, so a receiver cannot yet stop after the coarse bytes; the sizes here
  are those of a coarse-first layout.
- **Lost indices**: random square patches of the fine grid (2 x 2 indices, 8 x 8 map cells)
  are marked missing until a share of it is gone, and decoded with the most likely code
  (:meth:`mmslim.nn.MMSlim.decode_with_missing`). Reported: radar metrics against the share lost.

``mmslim bench link`` prints both tables.
"""

from __future__ import annotations

import numpy as np
import torch

from mmslim.codec.ans import ans_encode_segments, categorical_model
from mmslim.codec.maps import compress_maps, encode_maps
from mmslim.data.dataset import FrameSet, denormalize, normalize
from mmslim.metrics.radar import amplitude_metrics

PATCH = 2  # side of a lost patch, in fine-grid indices


def lost_patches(shape: tuple[int, int, int], share: float, seed: int = 0) -> torch.Tensor:
    """(B, h, w) bool, True on random PATCH x PATCH patches covering ``share`` of each grid."""
    b, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    ph, pw = -(-h // PATCH), -(-w // PATCH)
    keep = torch.rand(b, ph, pw, generator=gen) >= share  # (B, ph, pw)
    mask = ~keep.repeat_interleave(PATCH, 1).repeat_interleave(PATCH, 2)
    return mask[:, :h, :w]


@torch.no_grad()
def link_bench(model, frames: FrameSet, shares=(0.0, 0.1, 0.3, 0.5)) -> list[dict]:
    """Rows for the preview and for each share of lost fine indices (amplitude model)."""
    model.eval()
    maps = frames.amplitude
    x01, vmin, vmax = normalize(torch.from_numpy(maps))
    hi, lo = encode_maps(model, x01[:, None], None)
    hi, lo = torch.from_numpy(hi), torch.from_numpy(lo)
    frame_bytes = len(compress_maps(model, maps, "amplitude")) / len(maps)
    lo_model = categorical_model(model.prior.probs("lo"))
    preview_bytes = np.mean(
        [len(ans_encode_segments([(g.reshape(-1), lo_model)])) for g in lo.numpy()]
    )

    def physical(x_hat):
        return denormalize(x_hat[:, 0].clamp(0, 1), vmin, vmax).numpy()

    rows = []
    preview = physical(model.decode_preview(lo)["x_hat"])
    share_of_frame = preview_bytes / frame_bytes
    rows.append({"case": "preview (coarse grid only)", "bytes_per_frame": preview_bytes,
                 "share_of_frame": share_of_frame, **_metrics(maps, preview)})  # fmt: skip
    for share in shares:
        missing = lost_patches(tuple(hi.shape), share)
        recon = physical(model.decode_with_missing(hi, lo, missing)["x_hat"])
        rows.append({"case": f"{share:.0%} of fine indices lost", "bytes_per_frame": frame_bytes,
                     "share_of_frame": 1.0, **_metrics(maps, recon)})  # fmt: skip
    return rows


def _metrics(orig: np.ndarray, recon: np.ndarray) -> dict:
    m = amplitude_metrics(orig, recon)
    keys = ("cfar_f1", "cfar_precision", "cfar_recall", "amp_mae_db_target")
    return {k: m[k] for k in keys}


__all__ = ["PATCH", "link_bench", "lost_patches"]
