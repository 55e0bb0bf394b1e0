"""Training recipes of issue 13: DiffAugment, spectral norm, KL warm-up / free bits, EMA, curves."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genmodels.data import load_dataset
from genmodels.models import build_model
from genmodels.models.gan import diff_augment
from genmodels.train import TrainConfig, train_model

TINY_VAE = {"vae": {"channels": 4}, "rvae": {"hidden": 8}}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_diff_augment_is_one_translation_per_image_plus_a_cutout() -> None:
    # Unique positive pixel values: every kept output pixel names its source, so the offset
    # (source - destination) must be one (dy, dx) per image, within the 1/8-side padding (4 px).
    b, h = 32, 28
    x = (torch.arange(h * h, dtype=torch.float64) + 1).view(1, 1, h, h).repeat(b, 1, 1, 1)
    out = diff_augment(x, _gen(1))
    assert out.shape == x.shape and torch.equal(out, diff_augment(x, _gen(1)))
    offsets = set()
    for img in out[:, 0]:
        rows, cols = torch.nonzero(img, as_tuple=True)
        src = img[rows, cols].long() - 1
        dy, dx = src // h - rows, src % h - cols
        assert dy.unique().numel() == 1 and dx.unique().numel() == 1
        assert abs(int(dy[0])) <= 4 and abs(int(dx[0])) <= 4
        assert (img == 0).sum() <= 14 * 14 + 4 * h * 2  # cutout (half side) + shifted-in border
        offsets.add((int(dy[0]), int(dx[0])))
    assert len(offsets) > 5  # the shift is drawn per image
    grad_in = torch.rand(2, 1, h, h, requires_grad=True)
    diff_augment(grad_in, _gen()).sum().backward()  # differentiable: G learns through it
    assert grad_in.grad is not None and set(grad_in.grad.unique().tolist()) <= {0.0, 1.0}


def test_diff_augment_without_cutout_only_shifts_in_zero_borders() -> None:
    # Translation by (dy, dx) of an all-ones image keeps exactly (H - |dy|) * (W - |dx|) ones.
    x = torch.ones(16, 1, 28, 28)
    out = diff_augment(x, _gen(2), cut=0.0)
    for img in out[:, 0]:
        rows, cols = (img.sum(1) > 0).sum().item(), (img.sum(0) > 0).sum().item()
        assert img.sum().item() == rows * cols and min(rows, cols) >= 28 - 4
    with pytest.raises(ValueError, match="cutout"):
        build_model("gan", cutout=1.0)


def test_discriminator_layers_have_unit_spectral_norm() -> None:
    gan = build_model("gan").train()
    x = torch.rand(4, 1, 28, 28)
    for _ in range(30):  # power iterations run in training-mode forwards
        gan.discriminator(x)
    gan.eval()
    for layer in (gan.discriminator.conv1, gan.discriminator.conv2, gan.discriminator.fc):
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("family", sorted(TINY_VAE))
def test_training_loss_is_the_negative_elbo_at_beta_1_and_floors_kl_with_free_bits(family) -> None:
    model = build_model(family, latent_dim=6, **TINY_VAE[family]).eval()
    x = torch.rand(5, 1, 28, 28)
    loss, parts = model.training_loss(x, _gen(4))
    torch.testing.assert_close(loss, model.finetune_loss(x, _gen(4)), rtol=1e-6, atol=1e-4)
    # Free bits above every KL_d: the KL term is the constant beta * D * free_bits exactly.
    floored, parts_fb = model.training_loss(x, _gen(4), beta=0.5, free_bits=50.0)
    assert floored.item() == pytest.approx(parts_fb["recon"] + 0.5 * 6 * 50.0, rel=1e-6)
    assert parts_fb == parts
    warm, _ = model.training_loss(x, _gen(4), beta=0.0)
    assert warm.item() == pytest.approx(parts["recon"], rel=1e-6)
    with pytest.raises(ValueError, match="free_bits"):
        model.training_loss(x, _gen(4), free_bits=-1.0)


@pytest.fixture(scope="module")
def tiny_data():
    return load_dataset("mnist5k").subset(64, 16)


def test_gan_keeps_the_ema_of_its_generator_weights(tiny_data, tmp_path, monkeypatch) -> None:
    # Same seed = same iterates w1, w2; EMA after two steps is decay * w1 + (1 - decay) * w2
    # (the first update copies w1), for weights and BatchNorm statistics alike.
    base = TrainConfig(epochs=1, batch_size=16, lr=1e-3, latent_dim=4,
                       model_kwargs={"channels": 4, "disc_channels": 4})
    states = {}
    for name, steps, decay in (("w1", 1, 0.0), ("w2", 2, 0.0), ("ema", 2, 0.75)):
        monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / name))
        config = dataclasses.replace(base, max_steps=steps, ema_decay=decay)
        trained = train_model("gan", tiny_data, config, seed=5, progress=False)
        states[name] = trained.model.generator.state_dict()
    for key, value in states["ema"].items():
        if value.is_floating_point():
            expected = 0.75 * states["w1"][key] + 0.25 * states["w2"][key]
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(states["ema"]["fc.weight"], states["w2"]["fc.weight"])
    with pytest.raises(ValueError, match="ema_decay"):
        dataclasses.replace(base, ema_decay=1.0)


@pytest.mark.parametrize("family", ["gan", "vae", "rvae"])
def test_training_curve_has_one_point_per_epoch_and_is_cached(
    family, tiny_data, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    kwargs = {"gan": {"channels": 4, "disc_channels": 4}, **TINY_VAE}[family]
    # 64 images / batch 16 = 4 steps per epoch; KL weight beta = step / (2 epochs * 4 steps).
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-3, latent_dim=4, kl_warmup_epochs=2,
                         model_kwargs=kwargs)
    fresh = train_model(family, tiny_data, config, seed=0, progress=False)
    curve = fresh.info["curve"]
    assert [point["epoch"] for point in curve] == [0, 1, 2]
    assert fresh.info["final_loss"] == curve[-1]["loss"]
    expected_keys = {"epoch", "loss"} | ({"d_loss"} if family == "gan" else {"recon", "kl", "beta"})
    assert all(set(point) == expected_keys for point in curve)
    if family != "gan":
        # Mean beta per epoch: (1+2+3+4)/8, (5+6+7+8)/8, then 1.
        assert [p["beta"] for p in curve] == pytest.approx([10 / 32, 26 / 32, 1.0])
    cached = train_model(family, tiny_data, config, seed=0, progress=False)
    assert cached.info["cached"] is True and cached.info["curve"] == curve
