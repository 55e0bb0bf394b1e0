"""Uniform k-bit quantization maths: codes, scales and zero points, MSE clipping search, SQNR."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MIN_BITS, MAX_BITS = 2, 8
SCHEMES = ("affine", "symmetric")
GRANULARITIES = ("tensor", "channel", "group")
ROUNDINGS = ("naive", "minmax", "mse")
# Clip ratios searched by rounding="mse": 1.0 is in the grid, so MSE clipping is never worse
# than min-max on the tensor it was fitted to.
MSE_RATIOS = torch.linspace(0.5, 1.0, 51)


def check_bits(bits: int) -> None:
    if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer in {MIN_BITS}..{MAX_BITS}; got {bits!r}")


@dataclass(frozen=True)
class QuantizedWeight:
    """k-bit codes of one weight tensor with their scales and zero points.

    `codes` (uint8, the tensor's shape) run 0..2^bits-1 for both schemes; the symmetric scheme
    is the affine one with the zero point pinned at 2^(bits-1), so w_hat = (codes - zp) * scale
    everywhere. `scale`/`zero_point` have shape (rows, groups): rows are the output channels
    moved to the front along `axis` (one row when axis is None = per tensor), groups split the
    flattened rest in blocks of `group_size` (one group when group_size is None).
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor
    bits: int
    axis: int | None
    group_size: int | None
    scheme: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    def dequantize(self) -> torch.Tensor:
        return dequantize(self)

    def packed_bytes(self) -> int:
        """ceil(numel * bits / 8) code bytes + fp32 scales (+ one uint8 zero point per scale
        for the affine scheme; the symmetric zero point is implicit)."""
        code_bytes = math.ceil(self.codes.numel() * self.bits / 8)
        zp_bytes = self.zero_point.numel() if self.scheme == "affine" else 0
        return code_bytes + 4 * self.scale.numel() + zp_bytes


def to_groups(w: torch.Tensor, axis: int | None, group_size: int | None) -> torch.Tensor:
    """(rows, groups, group_size) view of w: rows = w.shape[axis] (1 if axis is None); the rest
    is flattened and cut in groups, the last group zero-padded (0 is exact, so padding changes
    neither the range, which always includes 0, nor the error)."""
    rows = 1 if axis is None else w.shape[axis]
    flat = w.reshape(1, -1) if axis is None else w.movedim(axis, 0).reshape(rows, -1)
    cols = flat.shape[1]
    size = cols if group_size is None else min(group_size, cols)
    groups = math.ceil(cols / size)
    return F.pad(flat, (0, groups * size - cols)).reshape(rows, groups, size)


def from_groups(g: torch.Tensor, shape: tuple[int, ...], axis: int | None) -> torch.Tensor:
    """Inverse of `to_groups`: crop the padding and restore `shape`."""
    numel = math.prod(shape)
    if axis is None:
        return g.reshape(-1)[:numel].reshape(shape)
    moved = (shape[axis], *shape[:axis], *shape[axis + 1:])
    return g.reshape(shape[axis], -1)[:, : numel // shape[axis]].reshape(moved).movedim(0, axis)


def qparams(lo: torch.Tensor, hi: torch.Tensor, bits: int, scheme: str
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point of the range [lo, hi] (extended to include 0).

    affine:    s = (hi - lo) / (2^b - 1),  zp = clamp(round(-lo / s), 0, 2^b - 1): 0 is exact.
    symmetric: s = max(|lo|, |hi|) / (2^(b-1) - 1), zp = 2^(b-1) (codes -2^(b-1)..2^(b-1)-1
               shifted to 0..2^b-1; the lowest code is only reached by clamping).
    An all-zero group gets s = 1 (any s represents it exactly).
    """
    lo, hi = lo.clamp(max=0.0), hi.clamp(min=0.0)
    qmax = 2**bits - 1
    if scheme == "affine":
        scale = (hi - lo) / qmax
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero_point = torch.round(-lo / scale).clamp(0, qmax)
    else:
        scale = torch.maximum(-lo, hi) / (2 ** (bits - 1) - 1)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero_point = torch.full_like(scale, 2 ** (bits - 1))
    return scale, zero_point


def _codes(g: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int
           ) -> torch.Tensor:
    """q = clamp(round(w / s) + zp, 0, 2^b - 1) on grouped w (rows, groups, size)."""
    return (torch.round(g / scale[..., None]) + zero_point[..., None]).clamp(0, 2**bits - 1)


def quantize_codes(
    w: torch.Tensor,
    bits: int,
    scheme: str = "affine",
    axis: int | None = 0,
    group_size: int | None = None,
    clip_ratio: float | torch.Tensor = 1.0,
) -> QuantizedWeight:
    """Uniform quantization of w (Jacob et al., arXiv:1712.05877) on the clipped range
    [r * min(w, 0), r * max(w, 0)] per row/group, r = clip_ratio (scalar or (rows, groups)).

    Within the clipping range |w - w_hat| <= s / 2; outside it the codes saturate.
    """
    check_bits(bits)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}; got {scheme!r}")
    w = w.detach().float()
    g = to_groups(w, axis, group_size)
    lo, hi = g.amin(dim=2) * clip_ratio, g.amax(dim=2) * clip_ratio
    scale, zero_point = qparams(lo, hi, bits, scheme)
    codes = from_groups(_codes(g, scale, zero_point, bits), tuple(w.shape), axis)
    return QuantizedWeight(codes.to(torch.uint8), scale, zero_point.to(torch.uint8), bits, axis,
                           group_size, scheme)


def dequantize(qw: QuantizedWeight) -> torch.Tensor:
    """w_hat = (q - zp) * s, broadcast per row/group; fp32 in the original shape."""
    g = to_groups(qw.codes.float(), qw.axis, qw.group_size)
    g = (g - qw.zero_point.float()[..., None]) * qw.scale[..., None]
    return from_groups(g, qw.shape, qw.axis)


def mse_clip_ratio(
    w: torch.Tensor,
    bits: int,
    scheme: str = "affine",
    axis: int | None = 0,
    group_size: int | None = None,
    ratios: torch.Tensor = MSE_RATIOS,
) -> torch.Tensor:
    """argmin_r ||w - Q_r(w)||^2 per row/group over a grid of clip ratios r (the MSE-optimal
    clipping of e.g. Banner et al., arXiv:1810.05723, found by search). Returns (rows, groups).
    Ties keep the larger ratio, so r = 1 (min-max) wins unless clipping strictly helps."""
    g = to_groups(w.detach().float(), axis, group_size)
    lo, hi = g.amin(dim=2), g.amax(dim=2)
    best_err = torch.full(lo.shape, float("inf"))
    best = torch.ones(lo.shape)
    for r in sorted(ratios.tolist(), reverse=True):
        scale, zero_point = qparams(lo * r, hi * r, bits, scheme)
        w_hat = (_codes(g, scale, zero_point, bits) - zero_point[..., None]) * scale[..., None]
        err = (g - w_hat).pow(2).sum(dim=2)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, torch.full_like(best, r), best)
    return best


def quantize_weight(
    w: torch.Tensor,
    bits: int,
    scheme: str,
    granularity: str,
    rounding: str,
    channel_axis: int = 0,
    group_size: int = 64,
) -> QuantizedWeight:
    """Quantize one weight tensor by a PTQ recipe.

    rounding="naive": the seed's range choice (per-tensor min-max) with correct arithmetic. The
      seed used delta = (max - min) / 2^b, i.e. 2^b + 1 levels for 2^b codes (the top one
      overflows, off by a level), and added `min` back after rounding, so its grid was shifted
      and 0 was not representable; here s = (max - min) / (2^b - 1) with a zero point.
    rounding="minmax": min-max at the chosen granularity. rounding="mse": clip ratio per
      row/group from `mse_clip_ratio`.
    granularity: "tensor" (one scale), "channel" (one per output channel along `channel_axis`),
      "group" (blocks of `group_size` along the flattened input axis of each output channel).
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}; got {granularity!r}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}; got {rounding!r}")
    axis = None if granularity == "tensor" else channel_axis
    size = group_size if granularity == "group" else None
    ratio: float | torch.Tensor = 1.0
    if rounding == "mse":
        ratio = mse_clip_ratio(w, bits, scheme, axis, size)
    return quantize_codes(w, bits, scheme, axis, size, ratio)


def sqnr_db(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """SQNR = 10 log10(||x||^2 / ||x - x_hat||^2) in dB (inf if exact)."""
    signal = reference.double().pow(2).sum()
    noise = (reference.double() - approx.double()).pow(2).sum()
    return float("inf") if noise == 0 else float(10 * torch.log10(signal / noise))
