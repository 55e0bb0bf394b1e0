"""LSQ fake quantization: the step-size gradient and its scale g against Esser et al.'s closed form.

LSQ (Esser et al. 2019, arXiv:1902.08153), eq. 3: for w_hat = round(clamp(v / s, Qn, Qp)) * s,
d w_hat / d s = round(v / s) - v / s inside the range, Qn below it, Qp above it; eq. 4 and
sec. 2.2: the step's gradient is multiplied by g = 1 / sqrt(N * Qp), N = weights sharing s.
"""

from __future__ import annotations

import math

import pytest
import torch

from compression.quantization.qat import LSQFakeQuant, grad_scale


def test_grad_scale_keeps_the_value_and_scales_the_gradient() -> None:
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0), requires_grad=True)
    upstream = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    for factor in (0.5, 1 / 3, 1 / math.sqrt(21)):
        y = grad_scale(x, factor)
        torch.testing.assert_close(y, x, rtol=torch.finfo(torch.float32).eps, atol=0.0)
        (grad,) = torch.autograd.grad(y, x, upstream)
        torch.testing.assert_close(grad, factor * upstream, rtol=1e-6, atol=0.0)


def test_grad_scale_forward_is_exactly_the_input() -> None:
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(grad_scale(x, 1 / 3), x)


def _lsq(w: torch.Tensor, bits: int, axis: int | None, scale: torch.Tensor) -> LSQFakeQuant:
    fq = LSQFakeQuant(w, bits, axis).to(w.dtype)  # float64 tests: exact sums to compare
    with torch.no_grad():
        fq.scale.copy_(scale.view_as(fq.scale))
    return fq


def test_lsq_step_gradient_by_hand() -> None:
    # One row of 4 weights, 2 bits: Qn = -2, Qp = 1, N = 4, g = 1 / sqrt(4 * 1) = 1/2; s = 0.5.
    # v / s = 0.6, -1.4, 3.8, -5.2 -> clamp -> 0.6, -1.4, 1, -2 -> round -> 1, -1, 1, -2,
    # so w_hat = 0.5, -0.5, 0.5, -1.0 and d w_hat / d s = 1 - 0.6, -1 + 1.4, Qp, Qn
    # = 0.4, 0.4, 1, -2. With loss = sum(c * w_hat), c = 1, 2, 3, 4:
    # dL/ds = 0.4 + 0.8 + 3 - 8 = -3.8, times g = -1.9; dL/dw = c inside the range, else 0 (STE).
    w = torch.tensor([[0.3, -0.7, 1.9, -2.6]], requires_grad=True)
    fq = _lsq(w.detach(), 2, 0, torch.tensor([0.5]))
    assert (fq.qn, fq.qp) == (-2, 1) and fq.grad_factor == 0.5
    w_hat = fq(w)
    torch.testing.assert_close(w_hat, torch.tensor([[0.5, -0.5, 0.5, -1.0]]), rtol=0, atol=0)
    (w_hat * torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    torch.testing.assert_close(fq.scale.grad, torch.tensor([[-1.9]]), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(w.grad, torch.tensor([[1.0, 2.0, 0.0, 0.0]]), rtol=0, atol=0)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize(
    "shape, axis", [((6, 5), 0), ((6, 5), None), ((4, 3, 3, 3), 0), ((3, 4, 3, 3), 1)]
)
def test_lsq_step_gradient_matches_the_closed_form(shape, axis, bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    w = torch.randn(shape, generator=gen, dtype=torch.float64)
    rows = 1 if axis is None else shape[axis]
    scale = (torch.rand(rows, generator=gen, dtype=torch.float64) + 0.5) * 3 / 2**bits
    fq = _lsq(w, bits, axis, scale)
    upstream = torch.randn(shape, generator=gen, dtype=torch.float64)
    (fq(w) * upstream).sum().backward()

    qn, qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    n_per_step = w.numel() // rows
    g = 1.0 / math.sqrt(n_per_step * qp)
    moved = w.unsqueeze(0) if axis is None else w.movedim(axis, 0)  # (rows, ...)
    s = scale.view(-1, *[1] * (moved.ndim - 1))
    v = moved / s
    assert ((v - qn).abs() > 1e-6).all() and ((v - qp).abs() > 1e-6).all()  # off the kinks
    d_what_d_s = torch.where(v <= qn, qn, torch.where(v >= qp, qp, torch.round(v) - v))
    up = upstream.unsqueeze(0) if axis is None else upstream.movedim(axis, 0)
    expected = g * (up * d_what_d_s).flatten(1).sum(1)  # (rows,)
    assert ((v < qn) | (v > qp)).any()  # both branches of eq. 3 are exercised
    assert fq.grad_factor == pytest.approx(g, rel=1e-12)
    torch.testing.assert_close(fq.scale.grad.flatten(), expected, rtol=1e-9, atol=1e-12)
    # The forward pass is LSQ's quantizer with the stored step, whatever g is.
    w_hat = torch.clamp(torch.round(v), qn, qp) * s
    w_hat = w_hat[0] if axis is None else w_hat.movedim(0, axis)
    torch.testing.assert_close(fq(w).detach(), w_hat, rtol=1e-12, atol=0.0)
