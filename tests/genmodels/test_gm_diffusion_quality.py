"""Quality floor of the DEFAULT_TRAIN ddpm on mnist5k (slow: the real training budget).

Issue 17's target, scored like test_gm_quality.py: the shipped feature net, 1,000 samples drawn
with seed 1 from the model trained with seed 0, 50 DDIM steps."""

from __future__ import annotations

import os

import pytest
import torch

from bench.metrics.classes import class_statistics
from bench.metrics.quality import fid_proxy
from genmodels.data import load_dataset
from genmodels.train import DEFAULT_TRAIN, train_model
from genmodels.yardstick import load_feature_net

# Training the ddpm at its real budget takes ~750 CPU s before 50-step sampling: too long for
# every CI run (the nightly workflow runs it).
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.environ.get("GENBENCH_LONG_TESTS"),
    reason="trains the ddpm at its full budget (~15 CPU min): set GENBENCH_LONG_TESTS=1")]
N_SAMPLES = 1000


# Issue 17's target. Measured with the evaluator's latents (seed 0, 747 CPU s of training):
# FID-proxy 49.3 [41.8, 56.9] at 50 steps, every digit 6.5% to 15.9%. The first recipe (lr 1e-3,
# no Min-SNR weighting) missed it: 70.8, "1" drawn 4.4%.
@torch.no_grad()
def test_ddpm_at_50_steps_has_fid_proxy_at_most_60_and_draws_every_digit() -> None:
    data = load_dataset("mnist5k")
    net = load_feature_net(data, progress=False)[0]
    model = train_model("ddpm", data, DEFAULT_TRAIN["ddpm"], seed=0, progress=False).model
    assert model.steps == 50
    x = model.sample(N_SAMPLES, torch.Generator().manual_seed(1))
    fid = fid_proxy(net.features(x).double().numpy(), net.features(data.test_x).double().numpy())
    stats = class_statistics(net(x).double().numpy())
    assert fid <= 60, fid
    assert stats["classes_present"] == 10, stats["class_fractions"]
