"""vector-quantize-pytorch's ``VectorQuantize`` behind mmSlim's quantizer interface.

The quantizer family ``"vqp"`` (:mod:`mmslim.nn.quantizers.zoo`) wraps ``VectorQuantize`` from
`vector-quantize-pytorch <https://github.com/lucidrains/vector-quantize-pytorch>`_ (pinned at
1.32.0 in ``pyproject.toml``), the most widely used open implementation of the VQ codebook
fixes. It is here as a reference: if our variant and the library's version of the same recipe
train alike, a difference between recipes comes from the idea, not from our code.

Why only this one is wrapped, and the rest is our own:

- The VQ fixes (EMA, k-means initialisation, dead codes, rotation trick, affine codebook) are
  the subject of notebooks 02 and 09; a newcomer should be able to read them in a few lines each,
  which the library's general module (multi-head, distributed, masking, a dozen more options)
  does not allow. Ours also keep the VQ-VAE paper's codebook loss and the reference's uniform
  initialisation as the default, which the library does not offer (it learns codebooks by EMA).
- Our FSQ is the library's ``FSQ`` formula line for line (the tests check that both give the
  same codes and indices), in 100 lines without the library's options we would not use.
- The library's Gumbel option (``stochastic_sample_codes``) samples codes with Gumbel noise
  at a fixed temperature, with an optional straight-through relaxation; the annealed
  Gumbel-softmax of Jang et al. and the learned-temperature soft quantizer we compare are not
  among its options.

The fields of :class:`~mmslim.config.LibraryVQConfig` map to the library's arguments; the library
always learns its codebook by EMA:

================================  ================================================
``ema_decay`` (in (0, 1))         ``decay``
``codebook_init`` uniform/kmeans  the library's own random initialisation / ``kmeans_init``
``dead_code``                     ``threshold_ema_dead_code=2`` (a code whose EMA usage
                                  count falls below 2 is re-seeded: a different rule
                                  from ours, which counts unused steps)
``gradient`` ste/rotation         ``rotation_trick`` off/on
(no affine option)                see below
``ModelConfig.beta``              ``commitment_weight``
================================  ================================================

The library's ``affine_param`` is not offered: with it, in 1.32.0, ``get_output_from_indices``
returns the raw codewords while ``forward`` returns the affine-mapped ones (they differed by up to
1.8 in a test with random latents), so a receiver could not rebuild what the decoder saw.

The library draws its random numbers (initialisation, re-seeding) from torch's global generator,
so a resumed run is not bit-identical to an uninterrupted one, unlike with our quantizers.
"""

from __future__ import annotations

import torch

from mmslim.nn.quantizers.interface import Quantizer, usage_stats

LIBRARY = "vector-quantize-pytorch"


def _import_library():
    try:
        from vector_quantize_pytorch import VectorQuantize
    except ImportError as err:  # pragma: no cover - the project's install has it
        raise ImportError(
            f"the 'vqp' quantizer wraps {LIBRARY}, which is not installed: "
            f"pip install {LIBRARY}==1.32.0 (it is among mmslim's dependencies: pip install -e .)"
        ) from err
    return VectorQuantize


class LibraryVQ(Quantizer):
    """``vector_quantize_pytorch.VectorQuantize`` with mmSlim's ``forward``/``lookup`` contract.

    Args:
        num_codes: K. code_dim: D.
        beta: commitment weight.
        ema_decay: EMA decay of the codebook (the library has no codebook-loss mode like ours).
        kmeans_init, dead_code: k-means initialisation; EMA-count dead-code expiry (threshold 2).
        rotation_trick: the library's ``rotation_trick``.

    Shapes: ``forward`` (B, D, h, w) -> z_q (B, D, h, w), indices (B, h, w) int64, info with
    ``loss`` (the commitment term), ``perplexity``, ``counts`` (K,), ``dead_share``.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        beta: float = 0.25,
        *,
        ema_decay: float = 0.99,
        kmeans_init: bool = False,
        dead_code: bool = False,
        rotation_trick: bool = False,
    ):
        super().__init__()
        if not 0 < ema_decay < 1:
            raise ValueError(
                f"the library's VQ learns its codebook by EMA: ema_decay must be in (0, 1), "
                f"got {ema_decay} (0.99 is the usual choice)"
            )
        self.num_codes, self.code_dim = num_codes, code_dim
        self.vq = _import_library()(
            dim=code_dim,
            codebook_size=num_codes,
            decay=ema_decay,
            commitment_weight=beta,
            kmeans_init=kmeans_init,
            threshold_ema_dead_code=2 if dead_code else 0,
            rotation_trick=rotation_trick,
            straight_through=False,
            accept_image_fmap=True,
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if z.dim() != 4 or z.shape[1] != self.code_dim:
            raise ValueError(
                f"expected z of shape (B, {self.code_dim}, h, w), got {tuple(z.shape)}"
            )
        z_q, indices, loss = self.vq(z.float())  # in eval mode z_q is exactly lookup(indices)
        indices = indices.long()  # (B, h, w)
        return z_q, indices, {"loss": loss.sum(), **usage_stats(indices, self.num_codes)}

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) int64 -> (B, D, h, w): the library's codebook rows, channels first."""
        return self.vq.get_output_from_indices(indices)

    def extra_repr(self) -> str:
        return f"{LIBRARY}, num_codes={self.num_codes}, code_dim={self.code_dim}"


__all__ = ["LIBRARY", "LibraryVQ"]
