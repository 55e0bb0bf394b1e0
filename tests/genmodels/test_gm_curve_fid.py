"""FID-proxy per epoch in the training curve: the maths, the schedule, and weights left alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.metrics.quality import frechet_distance as bench_frechet_distance
from genmodels import curve_fid as cf
from genmodels.data import load_dataset
from genmodels.fit import fit
from genmodels.models import build_model
from genmodels.train import TrainConfig, train_model

TINY = {
    "gan": ({"channels": 4, "disc_channels": 4}, {"ema_decay": 0.9, "ema_start": 0.3}),
    "vae": ({"channels": 4}, {"kl_warmup_epochs": 1}),
    "rvae": ({"hidden": 8, "row_dropout": 0.3}, {"free_bits": 0.5}),
}


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def net(mnist5k):
    found = cf.shipped_net(mnist5k)
    assert found is not None  # mnist5k ships its feature net
    return found


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / d


def test_frechet_distance_matches_bench_and_its_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2, s1, s2 = rng.normal(size=6), rng.normal(size=6), _spd(rng, 6), _spd(rng, 6)
    assert cf.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        bench_frechet_distance(mu1, s1, mu2, s2), rel=1e-9)
    # Equal covariances: the squared gap of the means, exactly.
    assert cf.frechet_distance(mu1, s1, mu2, s1) == pytest.approx(
        float((mu1 - mu2) @ (mu1 - mu2)), abs=1e-8)


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [(5, [0, 1, 2, 3, 4]), (20, list(range(20))), (40, list(range(1, 40, 2))),
     (45, list(range(2, 45, 3))), (80, list(range(3, 80, 4))), (21, [*range(1, 21, 2), 20])],
)
def test_scored_epochs_take_every_kth_and_the_last(epochs, expected) -> None:
    assert cf.scored_epochs(epochs) == expected
    assert len(expected) <= cf.CURVE_FID_POINTS
    assert cf.scored_epochs(40, points=4) == [9, 19, 29, 39]  # a costly sampler's budget


def test_epoch_fid_scores_the_stated_sample_size_with_a_fixed_batch(mnist5k, net) -> None:
    hook = cf.EpochFid(net, mnist5k.test_x, epochs=40)
    drawn = []

    def test_images(n: int, generator: torch.Generator) -> torch.Tensor:
        drawn.append((n, torch.randint(0, 10**9, (1,), generator=generator).item()))
        return mnist5k.train_x[:n]

    assert hook(0, test_images) == {}  # epoch 0 is not scored when k = 2
    state = torch.get_rng_state()
    real = hook(1, test_images)["fid_proxy"]
    blank = hook(3, lambda n, g: torch.zeros(n, *mnist5k.image_shape))["fid_proxy"]
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert [n for n, _ in drawn] == [cf.CURVE_FID_SAMPLES]
    assert cf.CURVE_FID_SAMPLES == 500
    # Real digits against the test split: near the floor (~10 at 1,000; 500 train digits
    # measured 15); blank images are far away.
    assert real < 30 < 1000 < blank, (real, blank)
    again = []
    hook(39, lambda n, g: again.append(torch.randint(0, 10**9, (1,), generator=g).item())
         or mnist5k.train_x[:n])
    assert again == [drawn[0][1]]  # the same latent batch every scored epoch


@pytest.mark.parametrize("family", sorted(TINY))
def test_curve_tracking_leaves_the_trained_weights_bit_identical(
    family, mnist5k, tmp_path, monkeypatch
) -> None:
    model_kwargs, recipe = TINY[family]
    config = TrainConfig(epochs=3, batch_size=1000, lr=1e-3, latent_dim=4,
                         model_kwargs=model_kwargs, **recipe)
    runs = {}
    for tracked in (True, False):
        monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / str(tracked)))
        runs[tracked] = train_model(family, mnist5k, config, seed=3, progress=False,
                                    curve_fid=tracked)
    a, b = (runs[t].model.state_dict() for t in (True, False))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert runs[True].info["final_loss"] == runs[False].info["final_loss"]
    tracked = runs[True].info["curve"]
    assert [p["epoch"] for p in tracked] == [0, 1, 2]
    assert all(np.isfinite(p["fid_proxy"]) and p["fid_proxy"] > 0 for p in tracked)
    assert all("fid_proxy" not in p for p in runs[False].info["curve"])
    assert runs[True].info["curve_fid_samples"] == cf.CURVE_FID_SAMPLES
    assert "curve_fid_samples" not in runs[False].info
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "True"))
    cached = train_model(family, mnist5k, config, seed=3, progress=False)
    assert cached.info["cached"] and cached.info["curve"] == tracked
    assert cached.info["curve_fid_samples"] == cf.CURVE_FID_SAMPLES
    assert [{k: v for k, v in p.items() if k != "fid_proxy"} for p in tracked] == \
        runs[False].info["curve"]


def test_fid_proxy_falls_while_a_small_vae_learns(mnist5k, net) -> None:
    torch.manual_seed(0)
    model = build_model("vae", image_shape=mnist5k.image_shape, latent_dim=8, channels=8)
    config = TrainConfig(epochs=4, batch_size=32, lr=5e-3, latent_dim=8)

    def hooks(epochs: int) -> cf.EpochFid:
        return cf.EpochFid(net, mnist5k.test_x, epochs)

    _, curve = fit(model, mnist5k.train_x, config, seed=0, device="cpu", progress=False,
                   curve_metrics=hooks)
    fids = [p["fid_proxy"] for p in curve]
    # Measured on the reference machine: 1,099, 760, 561, 412.
    assert len(fids) == 4 and fids[-1] < 0.6 * fids[0] and min(fids) == fids[-1], fids



def test_ddpm_curve_is_scored_at_its_curve_steps_and_the_steps_come_back() -> None:
    # The ddpm's curve points sample at curve_steps DDIM steps (cheap), evaluation at its own;
    # a family without curve_steps samples unchanged.
    from genmodels.fit import _at_curve_steps

    ddpm = build_model("ddpm", image_shape=(1, 28, 28), channels=4, steps=5)
    seen = []
    sampler = _at_curve_steps(ddpm, lambda n, g: seen.append(ddpm.steps) or torch.zeros(n))
    sampler(2, torch.Generator())
    assert seen == [type(ddpm).curve_steps] and ddpm.steps == 5
    assert type(ddpm).curve_steps < 50 and type(ddpm).curve_fid_points < cf.CURVE_FID_POINTS
    gan_sample = build_model("gan", image_shape=(1, 28, 28), latent_dim=4).sample
    assert _at_curve_steps(build_model("gan", image_shape=(1, 28, 28), latent_dim=4),
                           gan_sample) is gan_sample
