"""The link benchmark: lost-patch masks and the preview/loss rows."""

import pytest
import torch

from mmslim.bench.link import PATCH, link_bench, lost_patches
from mmslim.codec import fit_prior
from mmslim.data.dataset import RadarFrames
from mmslim.nn import MMSlim


@pytest.mark.parametrize("share", [0.0, 0.3, 0.5])
def test_lost_patches_cover_the_share_asked_for_in_whole_patches(share):
    mask = lost_patches((64, 56, 16), share, torch.Generator().manual_seed(3))
    assert mask.shape == (64, 56, 16) and mask.dtype == torch.bool
    assert float(mask.float().mean()) == pytest.approx(share, abs=0.03)
    blocks = mask.reshape(64, 56 // PATCH, PATCH, 16 // PATCH, PATCH)
    assert torch.equal(blocks.all(dim=(2, 4)), blocks.any(dim=(2, 4)))  # all or nothing


def test_link_bench_reports_a_small_preview_and_every_share(few_frames, tiny_config):
    frames = few_frames(2, 2)
    torch.manual_seed(0)
    model = MMSlim(tiny_config).eval()
    fit_prior(model, RadarFrames(frames), "amplitude")
    rows = link_bench(model, frames, shares=(0.0, 0.5))
    assert [r["case"] for r in rows] == [
        "preview (coarse grid only)",
        "0% of fine indices lost",
        "50% of fine indices lost",
    ]
    assert 0 < rows[0]["share_of_frame"] < 0.5  # the coarse grid is 1/17 of the indices
    assert all(0 <= r["cfar_f1"] <= 1 for r in rows)
