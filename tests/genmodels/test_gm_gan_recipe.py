"""GAN recipe knobs: linear lr decay, late EMA start, hinge loss, R1 penalty, stable cache keys."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from genmodels import train as gt
from genmodels.cache import config_hash
from genmodels.data import load_dataset
from genmodels.fit import _linear_decay
from genmodels.models import build_model
from genmodels.train import DEFAULT_TRAIN, TrainConfig, train_model
from genmodels.train_config import KEY_OPTIONAL_FIELDS

TINY_GAN = {"channels": 4, "disc_channels": 4}


class AffineD(nn.Module):
    """D(x) = a * sum(x) + b: grad_x D = a at every pixel, so ||grad||^2 = a^2 * C*H*W."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a, self.b = nn.Parameter(torch.tensor(a)), nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x.flatten(1).sum(1) + self.b


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_linear_decay_is_flat_then_falls_to_one_step_above_zero() -> None:
    factor = _linear_decay(10, 0.5)
    assert [factor(t) for t in range(10)] == pytest.approx(
        [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2])
    assert [_linear_decay(4, 0.0)(t) for t in range(4)] == pytest.approx([1, 0.75, 0.5, 0.25])
    assert [_linear_decay(7, 1.0)(t) for t in range(7)] == [1.0] * 7  # 1.0 = constant


@pytest.mark.parametrize("loss", ["ns", "hinge"])
def test_gan_losses_have_their_closed_forms_on_a_constant_discriminator(loss) -> None:
    gan = build_model("gan", latent_dim=4, loss=loss, **TINY_GAN)
    gan.discriminator = AffineD(0.0, 0.7)  # D = 0.7 on every image
    x = torch.rand(6, 1, 28, 28)
    c = torch.tensor(0.7)
    d_expected = (torch.relu(1 - c) + torch.relu(1 + c) if loss == "hinge"
                  else nn.functional.softplus(-c) + nn.functional.softplus(c))
    g_expected = -c if loss == "hinge" else nn.functional.softplus(-c)
    torch.testing.assert_close(gan.discriminator_loss(x, _gen()), d_expected)
    torch.testing.assert_close(gan.finetune_loss(x, _gen()), g_expected)


def test_r1_penalty_adds_half_its_weight_times_the_squared_input_gradient() -> None:
    a = 0.01
    losses = {}
    for r1 in (0.0, 2.0):
        torch.manual_seed(0)  # the same generator, so the same fakes
        gan = build_model("gan", latent_dim=4, r1=r1, **TINY_GAN)
        gan.discriminator = AffineD(a, 0.1)
        losses[r1] = gan.discriminator_loss(torch.rand(5, 1, 28, 28, generator=_gen(1)), _gen())
    # Same draws, so the adversarial terms cancel: r1 / 2 * a^2 * 784 = a^2 * 784.
    torch.testing.assert_close(losses[2.0] - losses[0.0], torch.tensor(a * a * 784))
    grads = torch.autograd.grad(losses[2.0], gan.discriminator.a)[0]  # differentiable in D
    assert torch.isfinite(grads)


def test_bad_gan_knobs_are_refused_with_their_names() -> None:
    with pytest.raises(ValueError, match="loss"):
        build_model("gan", loss="wasserstein")
    with pytest.raises(ValueError, match="r1"):
        build_model("gan", r1=-1.0)
    base = DEFAULT_TRAIN["gan"]
    for field, value in (("lr_decay_start", 1.5), ("ema_start", 1.0), ("ema_start", -0.1)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(base, **{field: value})


def test_student_of_a_hinge_gan_keeps_its_loss_and_r1() -> None:
    gan = build_model("gan", latent_dim=4, loss="hinge", r1=0.5, **TINY_GAN)
    student = type(gan)(**{**gan.init_kwargs(), "width": 0.5})
    assert (student.loss, student.r1) == ("hinge", 0.5)


def test_new_fields_at_default_leave_older_checkpoint_keys_unchanged() -> None:
    data = load_dataset("mnist5k").subset(64, 16)
    for family in ("vae", "rvae"):
        config = DEFAULT_TRAIN[family]
        old = {k: v for k, v in dataclasses.asdict(config).items() if k not in KEY_OPTIONAL_FIELDS}
        expected = config_hash({
            "family": family, "width": 1.0, "dataset": data.name, "data": data.fingerprint,
            "config": old, "seed": 0, "code": gt.CODE_VERSION})
        assert gt.checkpoint_key(family, data, config, 0, 1.0) == expected
    base = DEFAULT_TRAIN["vae"]
    changed = dataclasses.replace(base, lr_decay_start=0.5)
    assert gt.checkpoint_key("vae", data, changed, 0, 1.0) != gt.checkpoint_key(
        "vae", data, base, 0, 1.0)


def test_ema_started_at_the_last_step_is_the_last_iterate(tmp_path, monkeypatch) -> None:
    # The EMA's first update copies the weights (and BatchNorm buffers): starting it at the last
    # of two steps keeps exactly the last iterate, whatever the decay.
    data = load_dataset("mnist5k").subset(64, 16)
    base = TrainConfig(epochs=1, batch_size=16, lr=1e-3, latent_dim=4, max_steps=2,
                       model_kwargs=TINY_GAN)
    states = {}
    for name, extra in (("last", {}), ("late", {"ema_decay": 0.75, "ema_start": 0.5}),
                        ("ema", {"ema_decay": 0.75})):
        monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / name))
        model = train_model("gan", data, dataclasses.replace(base, **extra), seed=1,
                            progress=False, curve_fid=False).model
        states[name] = model.generator.state_dict()
    assert all(torch.equal(states["late"][k], states["last"][k]) for k in states["last"])
    assert not torch.equal(states["ema"]["fc.weight"], states["last"]["fc.weight"])


def test_lr_decay_changes_training_only_after_its_start(tmp_path, monkeypatch) -> None:
    # Decay starting after the last step = constant lr, bit for bit; starting at 0 differs.
    data = load_dataset("mnist5k").subset(64, 16)
    base = TrainConfig(epochs=1, batch_size=16, lr=1e-3, latent_dim=4, max_steps=3,
                       model_kwargs=TINY_GAN)
    states = {}
    for name, start in (("const", 1.0), ("late", 0.99), ("decay", 0.0)):
        monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / name))
        config = dataclasses.replace(base, lr_decay_start=start)
        states[name] = train_model("gan", data, config, seed=2, progress=False,
                                   curve_fid=False).model.state_dict()
    # 0.99 * 3 steps floors to step 2: the last step (2) runs at factor 1 / 1 = 1.
    assert all(torch.equal(states["late"][k], states["const"][k]) for k in states["const"])
    assert any(not torch.equal(states["decay"][k], states["const"][k]) for k in states["const"])
