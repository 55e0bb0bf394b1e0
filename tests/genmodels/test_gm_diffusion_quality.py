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

# Training the ddpm at its real budget takes ~800 CPU s (1,250 measured on a loaded machine)
# before 50-step sampling: too long for every CI run while the target is not reached yet.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.environ.get("GENBENCH_LONG_TESTS"),
    reason="trains the ddpm at its full budget (~15 CPU min): set GENBENCH_LONG_TESTS=1")]
N_SAMPLES = 1000


# Not reached yet (measured on the loaded 2-core machine, seed 0, train 1,250 CPU s): FID-proxy
# 70.8 at 50 steps (20: 77.3, 10: 92.6), "1" drawn 4.4% (< 5%: 9 classes present), confidence
# 0.816. Kept as the target, not loosened (strict=False: float training differs across CPUs).
@pytest.mark.xfail(reason="issue 17 ddpm target not reached: FID-proxy 70.8, 9 digits present",
                   strict=False)
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
