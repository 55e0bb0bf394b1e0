"""ConvTranspose2d rewritten as stride-1 Conv2d per output phase + pixel shuffle (exact, same MACs).

Why: ONNX Runtime's CPU provider has no int8 ConvTranspose kernel (QDQ ConvTranspose stays fp32
after its QDQ fusion, measured with onnxruntime 1.32), and ConvTranspose carries ~90% of the
GAN's and VAE's MACs. The sub-pixel decomposition (Shi et al. 2016, arXiv:1609.05158; Odena et
al. 2016, "Deconvolution and checkerboard artifacts") writes a stride-s transposed convolution as
s*s ordinary convolutions, one per output phase (r_h, r_w), whose outputs interleave:

    y[s*m + r] = sum_t x[m + q_r - t] * w[k0_r + s*t],  k0_r = (r + p) mod s,
                 q_r = (r + p - k0_r) / s,  t = 0 .. ceil((k - k0_r) / s) - 1      (per axis)

It is the same sum of the same products (floating-point order aside), and the MACs are those of
the transposed convolution when s divides k. Conv runs on QLinearConv int8 kernels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def phase_taps(kernel: int, stride: int, padding: int, phase: int) -> tuple[list[int], int]:
    """Kernel indices of one output phase in correlation order, and the left padding of x.

    Correlation order: tap u multiplies x[m - pad + u]; the indices run w[k0 + s*(T-1-u)].
    """
    k0 = (phase + padding) % stride
    q = (phase + padding - k0) // stride
    taps = len(range(k0, kernel, stride))
    return [k0 + stride * (taps - 1 - u) for u in range(taps)], taps - 1 - q


def supports(module: nn.ConvTranspose2d) -> bool:
    """Decomposable into equal-sized phases: groups 1, dilation 1, no output padding, s | k and
    s | (k - 2p) (then every phase has out/s outputs, out = (L - 1)s - 2p + k)."""
    (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
    return (module.groups == 1 and module.dilation == (1, 1) and module.output_padding == (0, 0)
            and kh % sh == 0 and kw % sw == 0 and (kh - 2 * ph) % sh == 0
            and (kw - 2 * pw) % sw == 0)


class SubPixelConvTranspose2d(nn.Module):
    """Drop-in, exact replacement of a ConvTranspose2d that `supports` accepts."""

    def __init__(self, convt: nn.ConvTranspose2d) -> None:
        super().__init__()
        if not supports(convt):
            raise ValueError(f"cannot decompose {convt}: needs groups=1, dilation=1, "
                             "output_padding=0 and the stride dividing k and k - 2*padding")
        (kh, kw), (self.sh, self.sw) = convt.kernel_size, convt.stride
        ph, pw = convt.padding
        weight = convt.weight.detach()  # (Cin, Cout, kh, kw)
        self.out_channels = convt.out_channels
        self.pads: list[tuple[int, int]] = []
        kernels = []
        for rh in range(self.sh):
            rows, top = phase_taps(kh, self.sh, ph, rh)
            for rw in range(self.sw):
                cols, left = phase_taps(kw, self.sw, pw, rw)
                sub = weight[:, :, rows][:, :, :, cols]  # (Cin, Cout, Th, Tw)
                kernels.append(sub.transpose(0, 1).contiguous())  # Conv2d layout (Cout, Cin, ..)
                self.pads.append((top, left))
        self.convs = nn.ModuleList()
        for kernel in kernels:
            conv = nn.Conv2d(convt.in_channels, self.out_channels, tuple(kernel.shape[2:]),
                             bias=convt.bias is not None)
            conv.weight.data.copy_(kernel)
            if convt.bias is not None:
                conv.bias.data.copy_(convt.bias.detach())
            self.convs.append(conv.to(weight.device))
        self.padding = (ph, pw)
        self.kernel = (kh, kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        out_h = (h - 1) * self.sh - 2 * self.padding[0] + self.kernel[0]
        out_w = (w - 1) * self.sw - 2 * self.padding[1] + self.kernel[1]
        mh, mw = out_h // self.sh, out_w // self.sw  # outputs per phase (equal: s | k)
        phases = []
        for conv, (top, left) in zip(self.convs, self.pads, strict=True):
            th, tw = conv.kernel_size
            # Pad (or crop, when negative) so that the valid correlation yields mh x mw outputs.
            xp = F.pad(x, (left, mw + tw - 1 - left - w, top, mh + th - 1 - top - h))
            phases.append(conv(xp))  # (B, Cout, mh, mw)
        stacked = torch.stack(phases, dim=2)  # (B, Cout, sh*sw, mh, mw), phase = rh*sw + rw
        return F.pixel_shuffle(stacked.flatten(1, 2), self.sh) if self.sh == self.sw else (
            stacked.view(x.shape[0], self.out_channels, self.sh, self.sw, mh, mw)
            .permute(0, 1, 4, 2, 5, 3).reshape(x.shape[0], self.out_channels, out_h, out_w))


def replace_conv_transposes(module: nn.Module) -> list[str]:
    """Swap every supported nn.ConvTranspose2d in `module` (in place) for its sub-pixel form;
    returns the names replaced."""
    replaced = []
    for name, child in list(module.named_modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, nn.ConvTranspose2d) and supports(sub):
                setattr(child, attr, SubPixelConvTranspose2d(sub))
                replaced.append(f"{name}.{attr}" if name else attr)
    return replaced
