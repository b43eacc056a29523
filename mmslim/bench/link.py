"""What a thin, lossy link does to mmSlim: previews from the coarse grid, and lost fine indices.

- **Preview** (layered decoding): an ANS frame starts with the coarse grid's stream
  (:mod:`mmslim.codec.frames`), which alone decodes to a preview
  (:meth:`mmslim.codec.frames.FrameCoder.decode_coarse`, then
  :meth:`mmslim.nn.MMSlim.decode_preview`). Reported: the bytes a receiver needs for it (the
  length field and the coarse stream of the real frame strings), their share of the frame, and
  the preview's radar metrics.
- **Lost indices**: random square patches of the fine grid (2 x 2 indices, 8 x 8 map cells)
  are marked missing until a share of it is gone, and decoded with the most likely code
  (:meth:`mmslim.nn.MMSlim.decode_with_missing`). Reported: radar metrics against the share lost.

``mmslim bench link`` prints both tables.
"""

from __future__ import annotations

import numpy as np
import torch

from mmslim.codec.frames import LO_WORDS, FrameCoder
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.data.arrays import denormalize, normalize
from mmslim.data.dataset import FrameSet
from mmslim.metrics.radar import amplitude_metrics
from mmslim.nn.sending import lost_patches

PATCH = 2  # side of a lost patch, in fine-grid indices (mmslim.nn.sending.lost_patches)


@torch.no_grad()
def link_bench(model, frames: FrameSet, shares=(0.0, 0.1, 0.3, 0.5)) -> list[dict]:
    """Rows for the preview and for each share of lost fine indices (amplitude model)."""
    model.eval()
    maps = frames.amplitude
    _, vmin, vmax = normalize(torch.from_numpy(maps))
    data = compress_maps(model, maps, "amplitude")  # what the sender sends, detections included
    frame_bytes = len(data) / len(maps)
    _, decoded = decompress_maps(model, data)
    hi = torch.from_numpy(decoded.indices_hi.astype(np.int64))  # (N, H/4, W/4)
    lo = torch.from_numpy(decoded.indices_lo.astype(np.int64))  # (N, H/16, W/16)
    coder = FrameCoder("ans", model.prior)
    strings = [coder.encode(h, c) for h, c in zip(hi.numpy(), lo.numpy(), strict=True)]
    firsts = [s[: LO_WORDS.size + 4 * LO_WORDS.unpack_from(s)[0]] for s in strings]
    preview_bytes = np.mean([len(f) for f in firsts])  # what the receiver needs of each frame
    lo = torch.from_numpy(np.stack([coder.decode_coarse(f, lo.shape[1:]) for f in firsts]))

    def physical(x_hat):
        return denormalize(x_hat[:, 0].clamp(0, 1), vmin, vmax).numpy()

    rows = []
    preview = physical(model.decode_preview(lo)["x_hat"])
    share_of_frame = preview_bytes / frame_bytes
    rows.append({"case": "preview (coarse grid only)", "bytes_per_frame": preview_bytes,
                 "share_of_frame": share_of_frame, **_metrics(maps, preview)})  # fmt: skip
    for share in shares:
        missing = lost_patches(tuple(hi.shape), share, torch.Generator().manual_seed(0))
        recon = physical(model.decode_with_missing(hi, lo, missing)["x_hat"])
        rows.append({"case": f"{share:.0%} of fine indices lost", "bytes_per_frame": frame_bytes,
                     "share_of_frame": 1.0, **_metrics(maps, recon)})  # fmt: skip
    return rows


def _metrics(orig: np.ndarray, recon: np.ndarray) -> dict:
    m = amplitude_metrics(orig, recon)
    keys = ("cfar_f1", "cfar_precision", "cfar_recall", "amp_mae_db_target")
    return {k: m[k] for k in keys}


__all__ = ["PATCH", "link_bench", "lost_patches"]
