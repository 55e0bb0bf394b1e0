"""The ddpm family: schedules, DDIM closed forms, the sampling contract and the UNet hooks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genmodels.models import build_model
from genmodels.models.diffusion import (
    NUM_TIMESTEPS,
    cosine_alphas_bar,
    ddim_step,
    ddim_timesteps,
    linear_alphas_bar,
    min_snr_weight,
)
from genmodels.models.unet import timestep_embedding


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tiny(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return build_model("ddpm", **{"channels": 4, "steps": 4, **kwargs}).eval()


class Oracle(nn.Module):
    """The exact noise predictor of a point mass at `x_star` (in [-1, 1]):
    eps(x_t, t) = (x_t - sqrt(a_t) x*) / sqrt(1 - a_t)."""

    def __init__(self, x_star: torch.Tensor, alphas_bar: torch.Tensor) -> None:
        super().__init__()
        self.x_star, self.alphas_bar = x_star, alphas_bar.double()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_bar[t].view(-1, 1, 1, 1)
        return ((x.double() - a.sqrt() * self.x_star) / (1 - a).sqrt()).float()


class Zero(nn.Module):
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_cosine_schedule_is_the_closed_form_ratio_of_f() -> None:
    # Telescoping product: alpha_bar_t = f(t) / f(0) wherever beta_t is not clipped at 0.999.
    ab = cosine_alphas_bar(NUM_TIMESTEPS).numpy()
    t = np.arange(1, NUM_TIMESTEPS + 1) / NUM_TIMESTEPS
    f = lambda s: np.cos((s + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    np.testing.assert_allclose(ab[:-1], f(t[:-1]) / f(0.0), rtol=1e-9)
    assert ab[-1] == pytest.approx(ab[-2] * 1e-3, rel=1e-9)  # the last beta is clipped
    assert np.all(np.diff(ab) < 0) and 0.9999 < ab[0] < 1.0


def test_linear_schedule_matches_ho_et_al() -> None:
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(linear_alphas_bar(1000).numpy(), np.cumprod(1 - betas), rtol=1e-12)
    assert linear_alphas_bar(1000)[-1].item() == pytest.approx(4.04e-5, rel=0.01)


def test_ddim_timesteps_trailing_spacing() -> None:
    ts = ddim_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 19
    assert all(a - b == 20 for a, b in zip(ts, ts[1:], strict=False))
    assert ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    assert ddim_timesteps(1000, 1) == [999]
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="steps"):
            ddim_timesteps(1000, bad)


def test_ddim_step_with_the_true_noise_moves_along_the_forward_marginal() -> None:
    # x_t = sqrt(a) x0 + sqrt(1 - a) eps with the true eps: the update lands exactly on
    # sqrt(a') x0 + sqrt(1 - a') eps, and on x0 itself when a' = 1.
    gen = _gen(1)
    x0 = torch.rand(3, 1, 4, 4, generator=gen, dtype=torch.float64) * 2 - 1
    eps = torch.randn(3, 1, 4, 4, generator=gen, dtype=torch.float64)
    a, a_prev = 0.3, 0.8
    x_t = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
    expected = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    torch.testing.assert_close(ddim_step(x_t, eps, a, a_prev), expected)
    torch.testing.assert_close(ddim_step(x_t, eps, a, 1.0), x0)


@pytest.mark.parametrize("steps", [2, 5, 20])
def test_sampling_with_the_oracle_of_a_point_mass_returns_that_point(steps) -> None:
    # (steps = 1 starts and ends at t = 999, where sqrt(alpha_bar) = 5e-5 amplifies float32
    # rounding of x_t - eps 20,000-fold: the point is then only recovered to ~1e-3.)
    model = _tiny()
    x_star = torch.rand(1, 1, 28, 28, generator=_gen(2), dtype=torch.float64) * 2 - 1
    model.unet = Oracle(x_star, model.alphas_bar)
    out = model.ddim_sample(model.latent(3, _gen(3)), steps)
    torch.testing.assert_close(out.double(), ((x_star + 1) / 2).expand(3, -1, -1, -1), atol=1e-4,
                               rtol=0)


def test_finetune_loss_is_zero_for_the_oracle_and_about_one_for_a_zero_predictor() -> None:
    model = _tiny()
    x = torch.rand(1, 1, 28, 28, generator=_gen(4)).expand(8, -1, -1, -1)
    model.unet = Oracle(2 * x[:1].double() - 1, model.alphas_bar)
    assert model.finetune_loss(x, _gen(5)).item() < 1e-5
    model.unet = Zero()  # loss = mean eps^2 ~ chi2(n) / n
    loss = model.finetune_loss(x, _gen(5)).item()
    assert abs(loss - 1.0) < 5 * math.sqrt(2 / x.numel())


def test_min_snr_weight_closed_form() -> None:
    # SNR = a / (1 - a): a = 0.5 -> SNR 1 (<= gamma: weight 1); a = 0.95 -> SNR 19 -> 5 / 19.
    w = min_snr_weight(torch.tensor([0.5, 0.95, 5 / 6]), 5.0)
    assert torch.allclose(w, torch.tensor([1.0, 5 / 19, 1.0]))


def test_min_snr_loss_weights_each_image_by_its_noise_level() -> None:
    x = torch.rand(8, 1, 28, 28, generator=_gen(4))
    plain, weighted = _tiny(), _tiny(min_snr_gamma=5.0)
    plain.unet, weighted.unet = Zero(), Zero()  # loss of image i: l_i = mean eps_i^2
    g = _gen(6)  # the draws finetune_loss makes from _gen(6): t, then eps
    t = torch.randint(0, NUM_TIMESTEPS, (8,), generator=g)
    per_image = torch.randn(x.shape, generator=g).pow(2).mean(dim=(1, 2, 3))
    w = min_snr_weight(plain.alphas_bar[t], 5.0)
    assert (w < 1).any()  # some images are down-weighted, so the two losses differ
    assert torch.allclose(weighted.finetune_loss(x, _gen(6)), (w * per_image).mean())
    assert torch.allclose(plain.finetune_loss(x, _gen(6)), per_image.mean())
    assert weighted.init_kwargs()["min_snr_gamma"] == 5.0
    with pytest.raises(ValueError, match="min_snr_gamma"):
        build_model("ddpm", min_snr_gamma=-1.0)


def test_sampler_calls_the_unet_once_per_step_at_the_ddim_timesteps() -> None:
    model = _tiny(steps=7)
    seen: list[list[int]] = []
    handle = model.unet.register_forward_pre_hook(lambda m, args: seen.append(args[1].tolist()))
    model.sample(2, _gen())
    handle.remove()
    assert [s[0] for s in seen] == model.ddim_timesteps(7) and all(len(set(s)) == 1 for s in seen)


def test_sampling_is_deterministic_and_batch_independent() -> None:
    model = _tiny()
    z = model.latent(6, _gen(6))
    out = model(z)
    assert torch.equal(model(z), out) and torch.equal(model.sample(6, _gen(6)), out)
    torch.testing.assert_close(model(z[:2]), out[:2], atol=1e-5, rtol=0)  # GroupNorm: per sample


def test_latent_is_the_noise_image_and_students_keep_the_step_count() -> None:
    model = build_model("ddpm", image_shape=(3, 32, 32), latent_dim=8, steps=12)
    assert model.latent_dim == 3 * 32 * 32  # the passed latent_dim is not the noise's size
    student = type(model)(**{**model.init_kwargs(), "width": 0.5})
    assert student.steps == 12 and student.latent_dim == model.latent_dim
    n = lambda m: sum(p.numel() for p in m.deployable().parameters())  # noqa: E731
    assert n(student) < n(model)
    assert model.deployable() is model.unet
    assert all(k.startswith("unet.") for k in model.state_dict())  # schedule not in checkpoints


def test_timestep_embedding_closed_form() -> None:
    emb = timestep_embedding(torch.tensor([0, 7]), 6)
    torch.testing.assert_close(emb[0], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    freqs = torch.tensor([1.0, 10000 ** (-1 / 3), 10000 ** (-2 / 3)])
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(7 * freqs), torch.sin(7 * freqs)]))


def test_matching_output_shares_the_noise_level_through_z() -> None:
    model = _tiny()
    x = torch.rand(2048, 1, 28, 28, generator=_gen(7))
    z = model.latent(2048, _gen(8))
    seen = []
    handle = model.unet.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    with torch.no_grad():
        out = model.matching_output(z, x)
    handle.remove()
    assert out.shape == x.shape and torch.equal(model.matching_output(z, x), out)
    t = seen[0].double()
    # t = floor(Phi(z_0) T) is uniform on 0..T-1: mean (T-1)/2, sd T/sqrt(12), to 5 s.e.
    assert abs(t.mean().item() - 499.5) < 5 * 1000 / math.sqrt(12 * 2048)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"schedule": "sigmoid"}, "schedule"), ({"steps": 0}, "steps"), ({"channels": 0}, "channels"),
     ({"image_shape": (1, 30, 30)}, "divisible by 4")],
)
def test_bad_arguments_raise_value_error(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        build_model("ddpm", **kwargs)
