"""Convolutional building blocks of the two VQ-VAE branches (the README draws where they sit).

Layer recipes follow the reference release; its defects do not carry over: every residual layer
is its own module with its own weights, and no ReLU works in place.

Shapes for the 224 x 64 frames of the paper (any H, W divisible by 16 work the same way):

    EncoderHi: (B, 1, 224, 64) -> (B, h, 56, 16)      DecoderHi: (B, D, 56, 16) -> (B, 1, 224, 64)
    EncoderLo: (B, 1, 224, 64) -> (B, h, 14, 4)       DecoderLo: (B, D, 14, 4)  -> (B, 1, 224, 64)

Size arithmetic: a conv 4x4, stride 2, padding 1 halves even sizes ((n + 2 - 4) / 2 + 1 = n / 2),
a conv 5x5, stride 2, padding 2 also halves them (floor((n + 4 - 5) / 2) + 1 = n / 2), and a
transposed conv 4x4, stride 2, padding 1 doubles them ((n - 1) * 2 - 2 + 4 = 2n).

For inference only, :func:`fold_batchnorm` returns a copy of any of these (or of MaskNet) with
every BatchNorm folded into the convolution before it (Ioffe and Szegedy 2015: in eval mode BN
is an affine map per channel, so it merges into that conv's weights and bias),
:func:`transposed_as_conv` one in which every stride-1 transposed conv is the equivalent plain
conv (which inference runtimes run in their fastest layouts), and :func:`one_output_as_taps`
one in which a conv with a single output channel is a 1 x 1 conv and shifted sums
(:class:`TapSum`). Training keeps the modules as they are.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _down4x4(c_in: int, c_out: int) -> nn.Conv2d:
    """Conv 4x4, stride 2, padding 1: halves H and W."""
    return nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1)


def _up4x4(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    """Transposed conv 4x4, stride 2, padding 1: doubles H and W."""
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)


class ResidualLayer(nn.Module):
    """x + conv1x1(ReLU(conv3x3(ReLU(x)))), both convs without bias.

    Args:
        channels: h, channels in and out.
        res_channels: res_h, bottleneck channels.

    Shapes: (B, h, H, W) -> (B, h, H, W).
    """

    def __init__(self, channels: int, res_channels: int):
        super().__init__()
        self.conv3 = nn.Conv2d(channels, res_channels, kernel_size=3, padding=1, bias=False)
        self.conv1 = nn.Conv2d(res_channels, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Out-of-place ReLUs: the reference's in-place ReLU modified x, which the sum needs.
        return x + self.conv1(F.relu(self.conv3(F.relu(x))))


class ResidualStack(nn.Module):
    """``n_layers`` residual layers, each with its own weights, followed by a ReLU.

    Shapes: (B, h, H, W) -> (B, h, H, W).
    """

    def __init__(self, channels: int, res_channels: int, n_layers: int):
        super().__init__()
        # Separate instances: the reference repeated one layer object, so all shared weights.
        self.layers = nn.ModuleList(ResidualLayer(channels, res_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return F.relu(x)


class EncoderHi(nn.Module):
    """Fine encoder, downsampling by 4: two strided 4x4 convs, a 3x3 conv, a residual stack.

    Shapes: (B, 1, H, W) -> (B, h, H/4, W/4), e.g. (B, 1, 224, 64) -> (B, h, 56, 16).
    """

    downsample = 4

    def __init__(self, hidden: int, res_hidden: int, n_res_layers: int):
        super().__init__()
        self.net = nn.Sequential(
            _down4x4(1, hidden // 2),  # (B, h/2, H/2, W/2)
            nn.BatchNorm2d(hidden // 2),
            nn.ReLU(),
            _down4x4(hidden // 2, hidden),  # (B, h, H/4, W/4)
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1),
            ResidualStack(hidden, res_hidden, n_res_layers),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EncoderLo(nn.Module):
    """Coarse encoder, downsampling by 16: four strided 5x5 convs, a residual stack.

    Channels 1 -> h/4 -> h/2 -> h -> h, with BatchNorm and ReLU between the convs.

    Shapes: (B, 1, H, W) -> (B, h, H/16, W/16), e.g. (B, 1, 224, 64) -> (B, h, 14, 4).
    """

    downsample = 16

    def __init__(self, hidden: int, res_hidden: int, n_res_layers: int):
        super().__init__()
        channels = [1, hidden // 4, hidden // 2, hidden, hidden]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=5, stride=2, padding=2))
            if i < 3:  # BN and ReLU between the convs, not after the last one
                layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
        layers.append(ResidualStack(hidden, res_hidden, n_res_layers))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DecoderHi(nn.Module):
    """Fine decoder, upsampling by 4: a 3x3 transposed conv, a residual stack, two 4x4 ones.

    Shapes: (B, D, H/4, W/4) -> (B, 1, H, W), e.g. (B, D, 56, 16) -> (B, 1, 224, 64).
    The output has no final activation (as in the reference).
    """

    upsample = 4

    def __init__(self, code_dim: int, hidden: int, res_hidden: int, n_res_layers: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(code_dim, hidden, kernel_size=3, padding=1),  # (B, h, H/4, W/4)
            ResidualStack(hidden, res_hidden, n_res_layers),
            _up4x4(hidden, hidden // 2),  # (B, h/2, H/2, W/2)
            nn.ReLU(),
            _up4x4(hidden // 2, 1),  # (B, 1, H, W)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DecoderLo(nn.Module):
    """Coarse decoder, upsampling by 16: four 4x4 transposed convs around a residual stack.

    Channels D -> h, (residual stack), h -> h/2, h/2 -> 1, 1 -> 1, BatchNorm and ReLU after the
    first two. Shapes: (B, D, H/16, W/16) -> (B, 1, H, W), e.g. (B, D, 14, 4) -> (B, 1, 224, 64).
    The output has no final activation (as in the reference).
    """

    upsample = 16

    def __init__(self, code_dim: int, hidden: int, res_hidden: int, n_res_layers: int):
        super().__init__()
        self.net = nn.Sequential(
            _up4x4(code_dim, hidden),  # (B, h, H/8, W/8)
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            ResidualStack(hidden, res_hidden, n_res_layers),
            _up4x4(hidden, hidden // 2),  # (B, h/2, H/4, W/4)
            nn.BatchNorm2d(hidden // 2),
            nn.ReLU(),
            _up4x4(hidden // 2, 1),  # (B, 1, H/2, W/2)
            _up4x4(1, 1),  # (B, 1, H, W)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` in which every ``Conv2d`` or ``ConvTranspose2d`` directly
    followed by a ``BatchNorm2d`` inside an ``nn.Sequential`` (at any depth) is replaced by one
    conv with the BN's running statistics and affine map folded into its weights and bias.

    The copy computes the eval-mode function of ``module`` up to float rounding (about 1e-7
    relative), one pass over the activations fewer per BN. ``module`` itself is not changed, so
    training is unaffected; a BN that does not follow a conv is kept as it is.

    Shapes: those of ``module``.
    """
    folded = copy.deepcopy(module).eval()
    for seq in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        layers: list[nn.Module] = []
        for layer in seq:
            prev = layers[-1] if layers else None
            if isinstance(layer, nn.BatchNorm2d) and isinstance(
                prev, (nn.Conv2d, nn.ConvTranspose2d)
            ):
                transpose = isinstance(prev, nn.ConvTranspose2d)
                layers[-1] = fuse_conv_bn_eval(prev, layer, transpose=transpose)
            else:
                layers.append(layer)
        seq._modules.clear()  # rebuild in place: the parent keeps its reference to ``seq``
        for i, layer in enumerate(layers):
            seq.add_module(str(i), layer)
    return folded


def transposed_as_conv(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` in which every stride-1 ``ConvTranspose2d`` (no groups,
    dilation or output padding) is replaced by the ``Conv2d`` that computes the same map: in/out
    channels swapped, the kernel flipped, padding ``k - 1 - p``. Inference runtimes run plain
    convs in their fastest layouts (ONNX Runtime: about twice as fast for DecoderHi's first
    layer). Equal up to float rounding (the sums run in another order). Strided transposed convs
    are kept: their sub-pixel form (one conv, then depth-to-space) measured slower in ONNX
    Runtime because of the interleaving. Shapes: those of ``module``.
    """
    converted = copy.deepcopy(module).eval()
    for parent in list(converted.modules()):
        for name, child in list(parent.named_children()):
            if not _plain_stride1_transposed(child):
                continue
            k, p = child.kernel_size, child.padding
            conv = nn.Conv2d(child.in_channels, child.out_channels, k,
                             padding=(k[0] - 1 - p[0], k[1] - 1 - p[1]),
                             bias=child.bias is not None)  # fmt: skip
            with torch.no_grad():
                conv.weight.copy_(child.weight.transpose(0, 1).flip(2, 3))  # (out, in, kh, kw)
                if child.bias is not None:
                    conv.bias.copy_(child.bias)
            setattr(parent, name, conv.to(child.weight).eval())
    return converted


class TapSum(nn.Module):
    """A k x k, stride-1, zero-padded conv with **one** output channel, for inference: a 1 x 1
    conv to k * k tap channels (tap (i, j) holds ``w[:, i, j] . x``), then the sum of each tap
    map shifted into place, plus the bias. ONNX Runtime runs a conv with one output channel in
    its blocked channel layout at a fraction of its speed (MaskNet's last conv took 30 % of the
    sender's time); this form runs MaskNet twice as fast there, and a little faster under
    PyTorch. Equal up to float rounding (at most 3e-7 on MaskNet's mask, measured).

    Shapes: (B, C, H, W) -> (B, 1, H', W'), as the conv it replaces.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        (kh, kw), (ph, pw) = conv.kernel_size, conv.padding
        self.kernel, self.padding = (kh, kw), (ph, pw)
        self.taps = nn.Conv2d(conv.in_channels, kh * kw, 1, bias=False)
        with torch.no_grad():  # (1, C, kh, kw) -> (kh * kw, C, 1, 1), tap (i, j) at i * kw + j
            taps = conv.weight[0].permute(1, 2, 0).reshape(kh * kw, conv.in_channels, 1, 1)
            self.taps.weight.copy_(taps)
        bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(1)
        self.register_buffer("bias", bias.to(conv.weight))  # (1,)
        self.to(conv.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (ph, pw) = self.kernel, self.padding
        t = F.pad(self.taps(x), (pw, pw, ph, ph))  # (B, kh*kw, H + 2ph, W + 2pw)
        h, w = t.shape[-2] - kh + 1, t.shape[-1] - kw + 1  # the conv's output size
        out = self.bias.view(1, 1, 1, 1)
        for i in range(kh):
            for j in range(kw):
                k = i * kw + j
                out = out + t[:, k : k + 1, i : i + h, j : j + w]
        return out


def one_output_as_taps(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` in which every stride-1 ``Conv2d`` with one output
    channel (no groups, dilation or padding mode other than zeros) is a :class:`TapSum`.
    Shapes: those of ``module``."""
    converted = copy.deepcopy(module).eval()
    for parent in list(converted.modules()):
        for name, child in list(parent.named_children()):
            if (
                type(child) is nn.Conv2d
                and child.out_channels == 1
                and child.stride == (1, 1)
                and child.dilation == (1, 1)
                and child.groups == 1
                and child.padding_mode == "zeros"
                and isinstance(child.padding, tuple)
            ):
                setattr(parent, name, TapSum(child).eval())
    return converted


def _plain_stride1_transposed(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.ConvTranspose2d)
        and m.stride == (1, 1)
        and m.dilation == (1, 1)
        and m.groups == 1
        and m.output_padding == (0, 0)
        and all(p < k for p, k in zip(m.padding, m.kernel_size))
        and m.padding_mode == "zeros"
    )


__all__ = [
    "DecoderHi",
    "DecoderLo",
    "EncoderHi",
    "EncoderLo",
    "ResidualLayer",
    "ResidualStack",
    "TapSum",
    "fold_batchnorm",
    "one_output_as_taps",
    "transposed_as_conv",
]
