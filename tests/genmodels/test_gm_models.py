"""Reference models: shapes, ranges, the sampling contract, VAE identities, finetune gradients."""

from __future__ import annotations

import math

import pytest
import torch
from vae_closed_form import (
    HEADS,
    bce_log_lik,
    build_closed_form,
    gaussian_kl,
    log_px,
    log_ratio_variance,
    set_posterior,
)

from genmodels.models import MODELS, build_model
from genmodels.models.common import bernoulli_log_lik

SHAPES = [(1, 28, 28), (3, 32, 32)]
WIDTHS = [1.0, 0.5, 0.25]
VAES = sorted(n for n, cls in MODELS.items() if cls.is_vae)
TINY = {
    "gan": {"channels": 4, "disc_channels": 4}, "vae": {"channels": 4}, "rvae": {"hidden": 8},
    "ddpm": {"channels": 4, "steps": 4},
}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("family", sorted(MODELS))
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_shape_range_and_sample_contract(family, width, shape) -> None:
    model = build_model(family, image_shape=shape, width=width).eval()
    assert model.family == family and model.image_shape == shape and model.width == width
    z = model.latent(4, _gen())
    assert z.shape == (4, model.latent_dim)
    out = model(z)
    assert out.shape == (4, *shape) and out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(model.sample(4, _gen()), out)  # sample == forward(latent), same generator
    student = type(model)(**{**model.init_kwargs(), "width": width / 2})
    n_params = sum(p.numel() for p in model.deployable().parameters())
    assert sum(p.numel() for p in student.deployable().parameters()) < n_params


@pytest.mark.parametrize("family", sorted(MODELS))
def test_finetune_loss_reaches_deployable_params_only(family) -> None:
    model = build_model(family).train()
    x = torch.rand(8, 1, 28, 28)
    loss = model.finetune_loss(x, _gen())
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    deployable = {id(p) for p in model.deployable().parameters()}
    for name, p in model.named_parameters():
        if id(p) in deployable:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:  # GAN: the frozen discriminator
            assert p.grad is None, name
    if family == "gan":
        assert sum(1 for _ in model.discriminator.parameters()) > 0


def test_gan_discriminator_loss_trains_d_only_and_is_shared_by_students() -> None:
    gan = build_model("gan")
    gan.discriminator_loss(torch.rand(8, 1, 28, 28), _gen()).backward()
    assert all(p.grad is not None for p in gan.discriminator.parameters())
    assert all(p.grad is None for p in gan.generator.parameters())
    student = build_model("gan", width=0.25)
    student.discriminator.load_state_dict(gan.discriminator.state_dict())  # D ignores width


@pytest.mark.parametrize("family", VAES)
def test_log_weights_k1_is_the_single_sample_elbo(family) -> None:
    model = build_model(family, **TINY[family]).eval()
    x = torch.rand(5, 1, 28, 28)
    lw = model.log_weights(x, 1, _gen(3))
    assert lw.shape == (1, 5)
    torch.testing.assert_close(model.elbo(x, _gen(3), analytic_kl=False), lw[0], rtol=0, atol=0)
    # Analytic and sampled KL share z, so they differ by log p(z) - log q(z|x) + KL, whose
    # expectation is exactly 0: check it on 1,000 draws to 5 standard errors.
    xs = x[:1].expand(1000, -1, -1, -1)
    diff = model.log_weights(xs, 1, _gen(4))[0] - model.elbo(xs, _gen(4))
    assert abs(diff.mean().item()) < 5 * diff.std().item() / math.sqrt(1000)


def test_every_vae_family_has_a_closed_form() -> None:
    missing = sorted(set(VAES) - set(HEADS))
    assert VAES and not missing, f"add {missing} to tests/vae_closed_form.py HEADS"


@pytest.mark.parametrize("family", VAES)
def test_prior_posterior_and_z_free_decoder_give_log_px_for_every_k(family) -> None:
    # q(z|x) = p(z) and p(x|z) = p(x): every log weight is log p(x), so ELBO = IWAE_k = log p(x).
    model, logits = build_closed_form(family, torch.zeros(6), torch.zeros(6))
    x = torch.rand(5, 1, 28, 28, generator=_gen(1))
    expected = log_px(logits, x)  # (5,), about -600 nats: float32 sums carry ~5e-5 of error
    for k in (1, 7):
        lw = model.log_weights(x, k, _gen(k)).double()
        assert lw.shape == (k, 5)
        torch.testing.assert_close(lw, expected.expand(k, -1), rtol=1e-6, atol=1e-4)
        iwae = torch.logsumexp(lw, 0) - math.log(k)
        torch.testing.assert_close(iwae, expected, rtol=1e-6, atol=1e-4)
    for analytic in (True, False):
        elbo = model.elbo(x, _gen(2), analytic_kl=analytic).double()
        torch.testing.assert_close(elbo, expected, rtol=1e-6, atol=1e-4)
    bce = -bce_log_lik(logits, x)
    torch.testing.assert_close(model.recon_bce(x).double(), bce, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("family", VAES)
def test_elbo_is_log_px_minus_the_gaussian_kl(family) -> None:
    mu, logvar = torch.linspace(-1.0, 1.0, 6), torch.linspace(-0.8, 0.6, 6)
    model, logits = build_closed_form(family, mu, logvar)
    x = torch.rand(4, 1, 28, 28, generator=_gen(1))
    expected, kl = log_px(logits, x), gaussian_kl(mu, logvar)
    assert kl > 0.5  # large against the tolerances: a KL with a wrong sign or factor shows
    elbo = model.elbo(x, _gen(2)).double()  # analytic KL: exact
    torch.testing.assert_close(elbo, expected - kl, rtol=1e-6, atol=1e-4)
    bce = -bce_log_lik(logits, x)
    torch.testing.assert_close(model.recon_bce(x).double(), bce, rtol=1e-6, atol=1e-4)
    # Sampled weights: log w - log p(x) = log p(z) - log q(z|x), z ~ q, whose mean is -KL and
    # whose variance has a closed form; 4,000 draws, mean to 5 standard errors, variance to 15%
    # (its relative standard error is about sqrt(3 / 4000) = 2.7%).
    n, var = 4000, log_ratio_variance(mu, logvar)
    gap = model.log_weights(x[:1], n, _gen(3))[:, 0].double() - expected[0]
    assert abs(gap.mean().item() + kl) < 5 * math.sqrt(var / n)
    assert gap.var().item() == pytest.approx(var, rel=0.15)


@pytest.mark.parametrize("family", VAES)
def test_recon_bce_decodes_at_the_posterior_mean(family) -> None:
    # q's mean pinned at m and x = the model's own output at z = m: BCE(x, p(x|m)) is then the
    # binary entropy of x, the minimum over decoders (Gibbs), whatever q's variance; decoding any
    # other z (a sample, or 0) gives a larger value.
    model = build_model(family, **TINY[family]).eval()
    m = torch.randn(model.latent_dim, generator=_gen(5))
    x = model(m[None]).detach()  # (1, C, H, W) in (0, 1)
    entropy = -(torch.xlogy(x, x) + torch.xlogy(1 - x, 1 - x)).double().flatten(1).sum(1)
    for logvar in (-3.0, 0.0, 2.0):
        set_posterior(model, m, torch.full_like(m, logvar))
        torch.testing.assert_close(model.recon_bce(x).double(), entropy, rtol=1e-6, atol=1e-4)
    # Decoding a z one prior SD per dim away (a sample at logvar = 0 is that far) costs 100x the
    # tolerance above: the check tells the mean from a sample or from z = 0.
    set_posterior(model, m + 1.0, torch.zeros_like(m))
    assert (model.recon_bce(x).double() > entropy + 0.06).all()


def test_bernoulli_log_lik_closed_form() -> None:
    # Zero logits: p = 1/2 per pixel whatever x is, so log p(x|z) = -784 log 2.
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(
        bernoulli_log_lik(torch.zeros_like(x), x), torch.full((2,), -784 * math.log(2))
    )


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_rvae_decoder_is_causal_and_free_running_matches_teacher_forcing(cell) -> None:
    model = build_model("rvae", cell=cell, hidden=16).eval()
    z, x = torch.randn(2, model.latent_dim), torch.rand(2, 1, 28, 28)
    logits = model.decode(z, x)
    x2 = x.clone()
    x2[:, :, 10:] = torch.rand(2, 1, 18, 28)  # change rows >= 10
    logits2 = model.decode(z, x2)
    assert torch.equal(logits[:, :, :11], logits2[:, :, :11])  # row t sees only rows < t
    assert not torch.allclose(logits[:, :, 11:], logits2[:, :, 11:])
    free = model.decode(z)  # feeding its own probabilities back == teacher forcing with them
    torch.testing.assert_close(model.decode(z, torch.sigmoid(free)), free, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"family": "gan", "width": 0.0}, "width"),
        ({"family": "vae", "latent_dim": 0}, "latent_dim"),
        ({"family": "rvae", "cell": "rnn"}, "cell"),
        ({"family": "vae", "image_shape": (1, 30, 30)}, "divisible by 4"),
        ({"family": "flow"}, f"allowed: {', '.join(sorted(MODELS))}$"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_models_run_on_each_device(family, device) -> None:
    model = build_model(family, **TINY[family]).to(device)
    x = torch.rand(4, 1, 28, 28, device=device)
    model.finetune_loss(x, _gen()).backward()
    model.eval()
    out = model.sample(3, _gen())
    assert out.device.type == device and out.shape == (3, 1, 28, 28)
    if model.is_vae:
        assert (
            model.log_weights(x, 2, _gen()).shape == (2, 4)
            and model.elbo(x, _gen()).device.type == device
        )


def test_rvae_row_dropout_acts_only_in_training_mode() -> None:
    plain = build_model("rvae", hidden=8)
    dropped = build_model("rvae", hidden=8, row_dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    z, x = torch.randn(3, plain.latent_dim), torch.rand(3, 1, 28, 28)
    plain.eval(), dropped.eval()
    assert torch.equal(plain.decode(z, x), dropped.decode(z, x))
    dropped.train()
    assert not torch.equal(plain.decode(z, x), dropped.decode(z, x))
    assert dropped.init_kwargs()["row_dropout"] == 0.5
    with pytest.raises(ValueError, match="row_dropout"):
        build_model("rvae", row_dropout=1.0)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_pickle_round_trip_is_exact_and_leaves_the_rng_alone(family) -> None:
    # Pool and Dask workers receive trained models pickled; the GAN's spectrally normalised
    # discriminator (torch parametrizations) refuses plain pickling and is rebuilt from its state.
    import pickle

    torch.manual_seed(0)
    model = build_model(family).train()
    rng = torch.get_rng_state()
    copy_ = pickle.loads(pickle.dumps(model))
    assert torch.equal(torch.get_rng_state(), rng)
    assert copy_.training
    state, copied = model.state_dict(), copy_.state_dict()
    assert list(state) == list(copied)
    assert all(torch.equal(state[k], copied[k]) for k in state)
    z = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.eval()(z), copy_.eval()(z))
